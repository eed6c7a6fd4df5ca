//go:build linux

package report

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	golden "github.com/eksir/eksir/internal/golden"
	"github.com/eksir/eksir/internal/labtest"
)

// The browser tests render the page in headless Chromium (Debian package
// chromium; `make test` installs it when missing, as it does the lab's
// other host tools) with the network cut off: every request goes to a
// proxy the test runs, which answers none and records each one. A report
// must not cause any.

// chromiumBinary returns the browser to run, or skips (fails with CI=true).
func chromiumBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("headless Chromium: skipped with -short (make unit); make test runs it")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// Debian's launcher script loads extensions and sets API keys;
		// the browser it starts is /usr/lib/chromium/chromium, run bare.
		if p == "/usr/bin/chromium" {
			if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
				return "/usr/lib/chromium/chromium"
			}
		}
		return p
	}
	labtest.SkipOrFail(t, "headless Chromium not found; install it: apt-get install chromium (make host-tools does)")
	return ""
}

// deadProxy accepts connections, records each request line and answers
// nothing, so the browser can reach no network.
type deadProxy struct {
	ln       net.Listener
	mu       sync.Mutex
	requests []string
}

func startDeadProxy(t *testing.T) *deadProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &deadProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				p.mu.Lock()
				p.requests = append(p.requests, strings.TrimSpace(line))
				p.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// browserOwnHosts are the endpoints Chromium calls by itself whatever page
// it shows (component updates, network time, sign-in, optimization hints),
// even with background networking disabled. Requests to them are the
// browser's, not the page's; anything else is the page's.
var browserOwnHosts = map[string]bool{
	"clients2.google.com":                 true,
	"update.googleapis.com":               true,
	"accounts.google.com":                 true,
	"optimizationguide-pa.googleapis.com": true,
}

var requestHostRE = regexp.MustCompile(`^[A-Z]+ (?:[a-z]+://)?([^/:\s]+)`)

// pageRequests returns the requests the page made.
func (p *deadProxy) pageRequests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.requests {
		m := requestHostRE.FindStringSubmatch(r)
		if m == nil || !browserOwnHosts[m[1]] {
			out = append(out, r)
		}
	}
	return out
}

// runChromium runs one headless Chromium command on file and returns its
// standard output. The whole process group is killed at the timeout.
func runChromium(t *testing.T, bin string, proxy *deadProxy, file string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
		"--proxy-server=http://" + proxy.ln.Addr().String(),
		// Without this, loopback would bypass the proxy.
		"--proxy-bypass-list=<-loopback>",
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+file)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("chromium %v timed out", args)
		}
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.Bytes(), 2000))
	}
	return stdout.Bytes()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// The proxy must see a page's external loads, or the checks below that it
// saw none would prove nothing.
func TestBrowserSeesExternalLoads(t *testing.T) {
	bin := chromiumBinary(t)
	proxy := startDeadProxy(t)
	page := filepath.Join(t.TempDir(), "leaky.html")
	leaky := `<!DOCTYPE html><html lang="en"><head><title>leaky</title>` +
		`<link rel="stylesheet" href="http://styles.eksir-canary.test/a.css"></head>` +
		`<body><img alt="" src="http://images.eksir-canary.test/a.png"></body></html>`
	if err := os.WriteFile(page, []byte(leaky), 0o600); err != nil {
		t.Fatal(err)
	}
	runChromium(t, bin, proxy, page, "--dump-dom")
	got := strings.Join(proxy.pageRequests(), "\n")
	for _, host := range []string{"styles.eksir-canary.test", "images.eksir-canary.test"} {
		if !strings.Contains(got, host) {
			t.Errorf("the proxy saw no request for %s; it saw:\n%s", host, got)
		}
	}
}

func TestBrowserRendersReport(t *testing.T) {
	bin := chromiumBinary(t)
	for _, tc := range []struct {
		name     string
		report   *Report
		minPages int
		shot     string // where -update writes the screenshot
	}{
		{name: "small", report: smallReport(), minPages: 1},
		{name: "1000 pods", report: syntheticReport(1000, 100), minPages: 2},
		{name: "lab run", report: labRunReport(t), minPages: 2, shot: filepath.Join("..", "docs", "report-screenshot.png")},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInBrowser(t, bin, tc.report, tc.minPages, tc.shot) })
	}
}

// checkInBrowser renders r in Chromium to a DOM dump, a PNG and a PDF and
// checks each. It takes any *Report, so a lab run's report can be checked
// the same way.
func checkInBrowser(t *testing.T, bin string, r *Report, minPages int, shotPath string) {
	proxy := startDeadProxy(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, render(t, r), 0o600); err != nil {
		t.Fatal(err)
	}

	dom, err := html.Parse(bytes.NewReader(runChromium(t, bin, proxy, page, "--dump-dom")))
	if err != nil {
		t.Fatalf("parse the DOM: %v", err)
	}
	checkDOM(t, dom, r)

	shot := filepath.Join(dir, "report.png")
	runChromium(t, bin, proxy, page, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
	checkScreenshot(t, shot)
	if golden.Updating() && shotPath != "" {
		// The docs get the top of the page, small enough for a README.
		top := filepath.Join(dir, "top.png")
		runChromium(t, bin, proxy, page, "--screenshot="+top, "--window-size=1200,1500", "--hide-scrollbars")
		writeScreenshot(t, top, shotPath)
	}

	pdf := filepath.Join(dir, "report.pdf")
	runChromium(t, bin, proxy, page, "--print-to-pdf="+pdf, "--no-pdf-header-footer")
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if n := pdfPages(b); n < minPages {
		t.Errorf("the PDF has %d pages, want at least %d", n, minPages)
	} else {
		t.Logf("PDF: %d pages, %d bytes", n, len(b))
	}

	if reqs := proxy.pageRequests(); len(reqs) > 0 {
		t.Errorf("the page made %d requests:\n%s", len(reqs), strings.Join(reqs, "\n"))
	}
}

func checkDOM(t *testing.T, dom *html.Node, r *Report) {
	t.Helper()
	var title string
	var evidenceTables int
	var text strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
			text.WriteByte('\n')
		}
		if n.Type == html.ElementNode {
			switch {
			case n.DataAtom == atom.Title && n.Parent != nil && n.Parent.DataAtom == atom.Head:
				title = nodeText(n)
			case n.DataAtom == atom.Table && attr(n, "class") == "evidence":
				evidenceTables++
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(dom)
	if want := newHTMLView(r).Title; title != want {
		t.Errorf("DOM title %q, want %q", title, want)
	}
	all := text.String()
	for _, target := range r.Summary.Targets {
		if !strings.Contains(all, target.Name) {
			t.Errorf("target %s %s is not in the DOM", target.Kind, target.Name)
		}
	}
	if want := len(newHTMLView(r).EvidenceGroups); evidenceTables != want {
		t.Errorf("%d evidence tables in the DOM, want %d", evidenceTables, want)
	}
	for _, it := range []Item{r.Evidence[0], r.Evidence[len(r.Evidence)-1]} {
		if !strings.Contains(all, it.SHA256) {
			t.Errorf("the evidence table in the DOM lacks the hash of %s", it.Path)
		}
	}
}

// The page follows the reader's colour scheme: Chromium told to prefer dark
// draws it on a dark background, by default on a light one.
func TestBrowserDarkAndLight(t *testing.T) {
	bin := chromiumBinary(t)
	proxy := startDeadProxy(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, render(t, tamperedReport()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		dark  bool
	}{
		{"light", nil, false},
		// Blink's preferred colour scheme setting: 0 is dark.
		{"dark", []string{"--blink-settings=preferredColorScheme=0"}, true},
	} {
		shot := filepath.Join(dir, tc.name+".png")
		runChromium(t, bin, proxy, page, append(tc.flags, "--screenshot="+shot, "--window-size=800,600")...)
		bg := backgroundOf(t, shot)
		if l := relLuminance(bg); (l < 0.2) != tc.dark {
			t.Errorf("%s: background %v has luminance %.2f", tc.name, bg, l)
		}
	}
	if reqs := proxy.pageRequests(); len(reqs) > 0 {
		t.Errorf("the page made %d requests:\n%s", len(reqs), strings.Join(reqs, "\n"))
	}
}

// backgroundOf returns the screenshot's most common colour.
func backgroundOf(t *testing.T, path string) color.RGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	var bg color.RGBA
	for c, n := range counts {
		if n > counts[bg] {
			bg = c
		}
	}
	return bg
}

func relLuminance(c color.RGBA) float64 {
	return luminance(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
}

// checkScreenshot checks the PNG is a page and not a blank: many colours,
// and a fair share of pixels that are not the background.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode the screenshot: %v", err)
	}
	colours := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			colours[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	background := 0
	for _, n := range colours {
		background = max(background, n)
	}
	total := b.Dx() * b.Dy()
	share := float64(total-background) / float64(total)
	t.Logf("screenshot %v: %d colours, %.1f%% not background", b.Size(), len(colours), share*100)
	if len(colours) < 32 || share < 0.03 {
		t.Errorf("the screenshot looks blank: %d colours, %.2f%% of pixels not background", len(colours), share*100)
	}
}

// writeScreenshot copies a screenshot into docs, refusing one over 300 KiB.
func writeScreenshot(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 300<<10 {
		t.Fatalf("the screenshot is %d bytes, over 300 KiB", len(b))
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pdfPages counts page objects ("/Type /Page", not "/Type /Pages").
func pdfPages(pdf []byte) int {
	return len(pdfPageRE.FindAll(pdf, -1))
}

var pdfPageRE = regexp.MustCompile(`/Type\s*/Page(?:[^A-Za-z0-9]|$)`)
