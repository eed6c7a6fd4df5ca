package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/eksir/eksir/evidence"
	golden "github.com/eksir/eksir/internal/golden"
)

// smallReport is a hand-made model of a small pod-compromise run with one
// of everything the page shows: an approval, a retried and resumed step, a
// failed step, a containment still in place and one released, an item not
// collected, a credential with its blast radius, a snapshot, a memory
// image, and a drill with its trend. Its text holds characters HTML must
// escape.
func smallReport() *Report {
	const actor = "alice@ir-ws1"
	const key = "SHA256:7Hq0mZ3cJ2x1pA9e4vN8bK5tW6rY0uI3oL2sD1fG4hQ"
	return &Report{
		APIVersion: APIVersion, Kind: Kind,
		GeneratedAt: "2026-11-30T12:00:00Z", GeneratedBy: "eksir v0.15.0",
		Source:    Source{Kind: SourceArchive, Path: "INC-7.tar", Incident: "INC-7", ArchiveSHA256: fakeHash("INC-7.tar")},
		Integrity: Integrity{Status: IntegrityVerified, SignerKeyID: key, Pinned: true, Checks: []Check{{Name: "payload-manifest", Status: "ok", Path: "manifest-sha256.txt"}, {Name: "signature", Status: "ok", Path: "metadata/signature.dsse.json"}, {Name: "archive-sha256", Status: "warn", Path: "INC-7.tar.sha256", Detail: "no sidecar hash file; cannot compare the archive's hash"}}},
		Summary: Summary{
			Incident: "INC-7",
			Runs: []Run{{Playbook: "pod-compromise", File: "builtin:pod-compromise", SHA256: fakeHash("pb"), Inputs: map[string]string{"pod": "shop/cart-5d9f", "allow_unenforced": "false"}, Drill: true, Actor: actor,
				Started: "2026-11-30T10:00:00.100000000Z", Ended: "2026-11-30T10:04:10.000000000Z", Outcome: "partial"}},
			Targets:    []Target{{Kind: "pod", Name: "shop/cart-5d9f"}, {Kind: "node", Name: "ip-10-0-1-17.eu-west-1.compute.internal"}, {Kind: "iam-role", Name: "arn:aws:iam::111122223333:role/cart"}},
			Clusters:   []string{"arn:aws:eks:eu-west-1:111122223333:cluster/shop"},
			Accounts:   []string{"111122223333"},
			Identities: []string{actor, "arn:aws:sts::111122223333:assumed-role/IR/alice"},
			Started:    "2026-11-30T10:00:00.100000000Z", Ended: "2026-11-30T10:04:10.000000000Z", SealedAt: "2026-11-30T10:10:00Z",
			Steps: 5, StepsFailed: 1, Items: 4, NotCollected: 1, StillContained: 1,
		},
		Containment: []Containment{
			{Target: "pod/shop/cart-5d9f", Step: "isolate", Action: "isolate.pod-network", State: ContainApplied, Verified: false, AppliedAt: "2026-11-30T10:02:00Z", Warnings: []string{"no NetworkPolicy engine enforces the quarantine on ip-10-0-1-17"}, StillInPlace: true},
			{Target: "node/ip-10-0-1-17.eu-west-1.compute.internal", Step: "cordon", Action: "isolate.cordon-node", State: ContainReleased, Verified: true, AppliedAt: "2026-11-30T10:02:30Z", ReleasedAt: "2026-11-30T11:00:00Z", Warnings: []string{}},
		},
		Timeline: []Step{
			{ID: "volatile", Target: "pod/shop/cart-5d9f", Action: "collect.volatile", Kind: "collect", Status: "succeeded", Started: "2026-11-30T10:00:01Z", Finished: "2026-11-30T10:00:41Z", DurationMS: 40000, Attempts: 1, Warnings: []string{}, Items: []string{"pods/shop/cart-5d9f/volatile/processes.json"}},
			{ID: "logs", Target: "pod/shop/cart-5d9f", Action: "collect.pod-logs", Kind: "collect", Status: "succeeded", Started: "2026-11-30T10:00:41Z", Finished: "2026-11-30T10:01:30Z", DurationMS: 49000, Attempts: 2, Resumed: true, Warnings: []string{"container <sidecar> & friends: log rotated during the read"}, Items: []string{"pods/shop/cart-5d9f/logs/app.log"}},
			{ID: "checkpoint", Target: "pod/shop/cart-5d9f", Action: "collect.checkpoint", Kind: "collect", Status: "failed", Started: "2026-11-30T10:01:30Z", Finished: "2026-11-30T10:01:35Z", DurationMS: 5000, Attempts: 1, Error: "kubelet: ContainerCheckpoint feature gate is off", Warnings: []string{}, Items: []string{}},
			{ID: "isolate", Target: "pod/shop/cart-5d9f", Action: "isolate.pod-network", Kind: "contain", Status: "succeeded", Started: "2026-11-30T10:01:50Z", Finished: "2026-11-30T10:02:00Z", DurationMS: 10000, Attempts: 1, Approval: &Approval{How: "prompt", By: actor, At: "2026-11-30T10:01:49Z"}, Warnings: []string{"no NetworkPolicy engine enforces the quarantine on ip-10-0-1-17"}, Items: []string{}},
			{ID: "cordon", Target: "node/ip-10-0-1-17.eu-west-1.compute.internal", Action: "isolate.cordon-node", Kind: "contain", Status: "succeeded", Started: "2026-11-30T10:02:00Z", Finished: "2026-11-30T10:02:30Z", DurationMS: 30000, Attempts: 1, Warnings: []string{}, Items: []string{}},
		},
		Evidence: []Item{
			{Path: "pods/shop/cart-5d9f/volatile/processes.json", Group: "shop/cart-5d9f", Source: "cluster shop, pod shop/cart-5d9f, node ip-10-0-1-17", Method: "node-collector", Size: 18234, SHA256: fakeHash("processes"), AcquiredAt: "2026-11-30T10:00:40.512000000Z", By: actor + " as kubernetes-admin", Tool: "eksir v0.15.0"},
			{Path: "pods/shop/cart-5d9f/logs/app.log", Group: "shop/cart-5d9f", Source: "cluster shop, pod shop/cart-5d9f, node ip-10-0-1-17, container app", Method: "pod-logs", Size: 734003, SHA256: fakeHash("app.log"), AcquiredAt: "2026-11-30T10:01:29.003000000Z", By: actor + " as kubernetes-admin", Tool: "eksir v0.15.0"},
			{Path: "nodes/ip-10-0-1-17/journal/kubelet.journal", Group: "node/ip-10-0-1-17.eu-west-1.compute.internal", Source: "cluster shop, node ip-10-0-1-17", Method: "node-collector", Size: 8388608, SHA256: fakeHash("kubelet"), AcquiredAt: "2026-11-30T10:02:10Z", By: actor + " as kubernetes-admin", Tool: "eksir v0.15.0"},
			{Path: "aws/memory/i-0abc.lime", Group: "instance/i-0abc", Source: "instance i-0abc", Method: "ssm-avml", Size: 4294967296, SHA256: fakeHash("mem"), AcquiredAt: "2026-11-30T10:03:00Z", By: actor + " as arn:aws:sts::111122223333:assumed-role/IR/alice", Tool: "eksir v0.15.0"},
		},
		NotCollected: []Item{{Path: "pods/shop/cart-5d9f/checkpoint.tar", Group: "shop/cart-5d9f", Source: "cluster shop, pod shop/cart-5d9f", Method: "kubelet-checkpoint", AcquiredAt: "2026-11-30T10:01:35Z", By: actor, Tool: "eksir v0.15.0", Reason: "the kubelet's ContainerCheckpoint feature gate is off"}},
		Credentials:  []Credential{{Step: "revoke-irsa", Action: "revoke.irsa-role", Kind: "iam-role", Credential: "arn:aws:iam::111122223333:role/cart", State: ContainApplied, RevokedAt: "2026-11-30T10:03:30Z", BlastRadius: []string{"shop/cart-7b2c", "shop/cart-worker-0"}}},
		Snapshots:    []Snapshot{{SnapshotID: "snap-0123456789abcdef0", VolumeID: "vol-0fedcba9876543210", Instance: "i-0abc", Pod: "shop/cart-5d9f", State: "completed", SizeGiB: 20, Encrypted: true, KMSKeyID: "alias/aws/ebs", Started: "2026-11-30T10:02:40Z", Completed: "2026-11-30T10:05:00Z", Descriptor: "aws/snapshots/snap-0123456789abcdef0.json", DescriptorSHA256: fakeHash("snapdesc")}},
		MemoryImages: []MemoryImage{{Path: "aws/memory/i-0abc.lime", Target: "instance/i-0abc", Method: "ssm-avml", Size: 4294967296, SHA256: fakeHash("mem"), SourceSHA256: fakeHash("mem")}},
		Custody: []CustodyEntry{
			{Seq: 1, Time: "2026-11-30T10:00:00.100000000Z", Actor: actor, Action: "playbook.run-start", KeyID: key, What: "pod-compromise", File: "metadata/custody.jsonl", OK: true},
			{Seq: 2, Time: "2026-11-30T10:00:40.512000000Z", Actor: actor, Action: "acquired", KeyID: key, What: "pods/shop/cart-5d9f/volatile/processes.json", File: "metadata/custody.jsonl", OK: true},
			{Seq: 3, Time: "2026-11-30T10:10:00Z", Actor: actor, Action: "sealed", KeyID: key, What: "INC-7.tar", File: "metadata/custody.jsonl", OK: true},
		},
		Verify: []Instruction{
			{Title: "With standard tools", Commands: []string{"mkdir INC-7 && tar -xf INC-7.tar -C INC-7", "cd INC-7/* && sha256sum -c manifest-sha256.txt && sha256sum -c tagmanifest-sha256.txt"}, Note: "Check the DSSE signature with openssl as docs/verify-bag.sh does."},
			{Title: "With eksir", Commands: []string{"eksir-verify INC-7.tar --pubkey alice.pub"}},
		},
		Release: []Instruction{{Title: "Release the quarantine of shop/cart-5d9f", Commands: []string{"eksir release --incident INC-7 --step isolate"}}},
		Drill: &Drill{Playbook: "pod-compromise", TimeToContainMS: 120000, TimeToSealedEvidenceMS: 600000, StepsFailed: 1, Completeness: 0.8, CompletenessDetail: "checkpoint of shop/cart-5d9f",
			Trend:       []DrillPoint{{Incident: "DRILL-1", Started: "2026-10-01T10:00:00Z", TimeToContainMS: 300000, StepsFailed: 2, Completeness: 0.6}, {Incident: "DRILL-2", Started: "2026-11-01T10:00:00Z", TimeToContainMS: 180000, Completeness: 0.8, Problem: "custody record 7: signature does not verify"}, {Incident: "DRILL-3", Started: "2026-11-15T10:00:00Z", StepsFailed: 3, Completeness: 0.4}, {Incident: "INC-7", Started: "2026-11-30T10:00:00Z", TimeToContainMS: 120000, StepsFailed: 1, Completeness: 0.8}},
			TrendUnread: []string{"DRILL-0: read metadata/custody.jsonl: is a directory"}},
	}
}

// tamperedReport is smallReport made from an archive that failed
// verification.
func tamperedReport() *Report {
	r := smallReport()
	r.Integrity.Status = IntegrityTampered
	r.Integrity.Checks = append(r.Integrity.Checks, Check{Name: "payload-hash", Status: "fail", Path: "data/pods/shop/cart-5d9f/logs/app.log", Detail: "sha256 differs from manifest-sha256.txt"})
	r.Custody[2].OK, r.Custody[2].Problem = false, "signature does not verify"
	return r
}

func render(t testing.TB, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := RenderHTML(&b, r); err != nil {
		t.Fatalf("RenderHTML: %v", err)
	}
	return b.Bytes()
}

// htmlProblems checks a rendered page against the rules of issue 15: it
// parses, loads nothing from outside itself, holds every item's hash, its
// SVGs are well-formed XML with a title and a description, it has one h1
// and no skipped heading level, and every table has header cells with a
// scope.
func htmlProblems(page []byte, r *Report) []string {
	var problems []string
	addf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	var headings []int
	var text strings.Builder
	var walk func(n *html.Node, inStyle bool)
	walk = func(n *html.Node, inStyle bool) {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data)
			text.WriteByte('\n') // cells are separate words
			if inStyle && loadsCSS(n.Data) {
				addf("<style> loads something: %.80q", n.Data)
			}
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Link, atom.Img, atom.Iframe, atom.Object, atom.Embed, atom.Audio, atom.Video, atom.Source, atom.Base, atom.Image:
				addf("<%s> element", n.Data)
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				headings = append(headings, int(n.Data[1]-'0'))
			case atom.Table:
				if !hasHeaderCells(n) {
					addf("a table without <th scope>: %.60q", nodeText(n))
				}
			case atom.Html:
				if attr(n, "lang") == "" {
					addf("<html> without lang")
				}
			}
			for _, a := range n.Attr {
				key := strings.ToLower(a.Key)
				switch {
				case key == "src" || key == "srcset" || key == "data" || key == "poster" || key == "action" || key == "background":
					addf("<%s %s=%q>", n.Data, a.Key, a.Val)
				case key == "href" && !strings.HasPrefix(a.Val, "#"):
					addf("<%s %s=%q> leaves the page", n.Data, a.Key, a.Val)
				case key == "style" && loadsCSS(a.Val):
					addf("<%s style=%q> loads something", n.Data, a.Val)
				case strings.Contains(strings.ToLower(a.Val), "url("):
					addf("<%s %s=%q> has url(", n.Data, a.Key, a.Val)
				}
			}
			inStyle = n.DataAtom == atom.Style
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inStyle)
		}
	}
	walk(doc, false)

	if n := count(headings, 1); n != 1 {
		addf("%d <h1>, want one", n)
	}
	for i, level := range headings {
		if i == 0 && level != 1 {
			addf("the first heading is h%d", level)
		}
		if i > 0 && level > headings[i-1]+1 {
			addf("heading h%d follows h%d", level, headings[i-1])
		}
	}
	hashes := map[string]bool{}
	for _, h := range hexRE.FindAllString(text.String(), -1) {
		hashes[h] = true
	}
	for _, it := range r.Evidence {
		if it.SHA256 != "" && !hashes[it.SHA256] {
			addf("the SHA-256 of %s is missing", it.Path)
		}
	}
	svgs := svgRE.FindAll(page, -1)
	if len(r.Timeline) > 0 && len(svgs) == 0 {
		addf("no SVG timeline")
	}
	for _, svg := range svgs {
		if err := wellFormed(svg); err != nil {
			addf("an SVG is not well-formed XML: %v", err)
		}
		if !bytes.Contains(svg, []byte("<title")) || !bytes.Contains(svg, []byte("<desc")) {
			addf("an SVG lacks <title> or <desc>")
		}
	}
	return problems
}

var (
	svgRE      = regexp.MustCompile(`(?s)<svg[ >].*?</svg>`)
	hexRE      = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	cssLoadsRE = regexp.MustCompile(`(?i)url\s*\(|@import|image-set\s*\(|src\s*:`)
)

func loadsCSS(css string) bool { return cssLoadsRE.MatchString(css) }

// wellFormed parses an SVG fragment as XML. HTML's named entities other
// than XML's five would fail here, which is the point: the SVG must stand
// alone.
func wellFormed(svg []byte) error {
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func hasHeaderCells(table *html.Node) bool {
	found, scoped := false, true
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Th {
			found = true
			if attr(n, "scope") == "" {
				scoped = false
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(table)
	return found && scoped
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestRenderHTMLPassesChecks(t *testing.T) {
	for name, r := range map[string]*Report{"small": smallReport(), "tampered": tamperedReport(), "1000 pods": syntheticReport(1000, 100), "empty": {}, "lab run": labRunReport(t)} {
		t.Run(name, func(t *testing.T) {
			for _, p := range htmlProblems(render(t, r), r) {
				t.Error(p)
			}
		})
	}
}

// The checker must catch each kind of fault it looks for, or the test
// above proves nothing.
func TestHTMLChecksCatchFaults(t *testing.T) {
	r := smallReport()
	good := string(render(t, r))
	faults := map[string]func(string) string{
		"img":           func(s string) string { return strings.Replace(s, "<h1>", `<img alt="" src="logo.png"><h1>`, 1) },
		"external link": func(s string) string { return strings.Replace(s, `href="#summary"`, `href="https://example.com/"`, 1) },
		"css url":       func(s string) string { return strings.Replace(s, "</style>", "body{background:url(x.png)}</style>", 1) },
		"css import":    func(s string) string { return strings.Replace(s, "</style>", "@import 'x.css';</style>", 1) },
		"font-face": func(s string) string {
			return strings.Replace(s, "</style>", "@font-face{font-family:x;src:local(x)}</style>", 1)
		},
		"style attr":    func(s string) string { return strings.Replace(s, "<h1>", `<h1 style="background:url(a)">`, 1) },
		"script":        func(s string) string { return strings.Replace(s, "</body>", "<script>1</script></body>", 1) },
		"two h1":        func(s string) string { return strings.Replace(s, "</body>", "<h1>again</h1></body>", 1) },
		"skipped level": func(s string) string { return strings.Replace(s, `<h2 id="h-summary">`, `<h4 id="h-summary">`, 1) },
		"no th": func(s string) string {
			return strings.Replace(s, "</body>", "<table><tr><td>x</td></tr></table></body>", 1)
		},
		"th no scope": func(s string) string {
			return strings.Replace(s, "</body>", "<table><tr><th>x</th></tr></table></body>", 1)
		},
		"bad svg": func(s string) string {
			return strings.Replace(s, "<desc id=\"tl-desc\">", "<desc id=\"tl-desc\">&nbsp;", 1)
		},
		"missing hash": func(s string) string { return strings.ReplaceAll(s, r.Evidence[0].SHA256, "") },
		"no lang":      func(s string) string { return strings.Replace(s, `<html lang="en">`, "<html>", 1) },
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			page := fault(good)
			if page == good {
				t.Fatal("the fault did not apply: the page changed shape")
			}
			if len(htmlProblems([]byte(page), r)) == 0 {
				t.Error("the checks found nothing")
			}
		})
	}
}

func TestRenderHTMLGolden(t *testing.T) {
	golden.Check(t, filepath.Join("testdata", "html", "small.html"), render(t, smallReport()))
}

// labRunReport is the report of the lab run committed under
// testdata/cases (fixture_test.go made it), built as eksir report builds it.
func labRunReport(t testing.TB) *Report {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "eksir report fixture key seed 01") // fixture_test.go's examiner key
	keys := evidence.KeyRing{}
	keys.Add(evidence.NewSigner(ed25519.NewKeyFromSeed(seed)).Public())
	r, err := FromCase(t.Context(), filepath.Join("testdata", "cases", "INC-REPORT-1"), Options{Keys: keys,
		Now: func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }, Tool: "eksir test"})
	if err != nil {
		t.Fatalf("build the lab run's report: %v", err)
	}
	return r
}

// sectionOrder lists the page's sections in the order the model has them.
var sectionOrder = []string{"integrity", "summary", "containment", "timeline", "evidence", "not-collected", "credentials", "snapshots", "memory", "custody", "verify", "release", "drill"}

func TestRenderHTMLContent(t *testing.T) {
	r := smallReport()
	page := string(render(t, r))
	last := -1
	for _, id := range sectionOrder {
		i := strings.Index(page, `<section id="`+id+`"`)
		if i < 0 || i < last {
			t.Errorf("section %s missing or out of order", id)
		}
		last = i
	}
	if !strings.Contains(page, `class="banner ok"`) || strings.Contains(page, "TAMPERED") {
		t.Error("a verified report needs the verified banner and no tampered one")
	}
	if n := strings.Count(page, "</span> <span class=\"tag bad\">STILL IN PLACE"); n != 1 {
		t.Errorf("%d rows marked still in place, want 1", n)
	}
	// One bar per step, each with its status written in its row.
	if n := strings.Count(page, "<rect x="); n != len(r.Timeline) {
		t.Errorf("%d timeline bars, want %d", n, len(r.Timeline))
	}
	for _, s := range r.Timeline {
		if !strings.Contains(page, `">`+s.Status+`</text>`) {
			t.Errorf("no status label %q in the timeline", s.Status)
		}
	}
	for _, want := range []string{
		"shop/cart-5d9f <span class=\"meta\">— 2 items, 734.6 KiB</span>", // group summary: count and total size
		"shop/cart-7b2c, shop/cart-worker-0",                              // blast radius
		"the kubelet&#39;s ContainerCheckpoint feature gate is off",       // not collected, escaped
		"container &lt;sidecar&gt; &amp; friends",                         // warnings are escaped
		"<pre>eksir-verify INC-7.tar --pubkey alice.pub</pre>",
		"eksir release --incident INC-7 --step isolate",
		`<polyline points="60,20 193.3,68 326.7,20 460,92"/>`, // the drill trend; not contained drawn at the top
		"2 attempts", "resumed", "prompt by alice@ir-ws1",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	// A single drill has no trend to draw.
	r.Drill.Trend = r.Drill.Trend[3:]
	if page := string(render(t, r)); strings.Contains(page, "<polyline") || !strings.Contains(page, `id="drill"`) {
		t.Error("one drill: want the score and no trend chart")
	}
	r.Drill = nil
	if page := string(render(t, r)); strings.Contains(page, `id="drill"`) {
		t.Error("no drill: want no drill section")
	}
}

func TestRenderHTMLTamperedBannerFirst(t *testing.T) {
	page := render(t, tamperedReport())
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var body *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if n.DataAtom == atom.Body {
			body = n
		}
		for c := n.FirstChild; c != nil && body == nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	first := body.FirstChild
	for first != nil && first.Type != html.ElementNode {
		first = first.NextSibling
	}
	if first == nil || attr(first, "class") != "banner bad" || attr(first, "role") != "alert" || !strings.Contains(nodeText(first), "TAMPERED") {
		t.Fatalf("the body does not open with the tampered banner: %.200q", nodeText(body))
	}
	// A warning is not a failure: one check of three failed.
	if !strings.Contains(string(page), "did not pass 1 of its integrity checks") {
		t.Error("the banner does not count the one failed check")
	}
	if !strings.Contains(string(page), "FAILED: signature does not verify") {
		t.Error("the failed custody record's verdict is missing")
	}
}

func TestRenderHTMLEscapes(t *testing.T) {
	r := smallReport()
	r.Evidence[0].Path = `</td><script>alert(1)</script>`
	r.Timeline[0].ID = `<svg onload=alert(1)>`
	page := render(t, r)
	if bytes.Contains(page, []byte("<script>")) || bytes.Contains(page, []byte("<svg onload")) {
		t.Error("model text reached the page unescaped")
	}
	for _, p := range htmlProblems(page, r) {
		t.Error(p)
	}
}

// The 1,000-pod, 100-node case stays small and collapsed: long lists
// start closed, in groups.
func TestRenderHTMLThousandPods(t *testing.T) {
	r := syntheticReport(1000, 100)
	page := render(t, r)
	const limit = 5 << 20
	if len(page) >= limit {
		t.Errorf("the page is %d bytes, over %d", len(page), limit)
	}
	t.Logf("1000 pods, 100 nodes: %d bytes, %d items, %d steps, %d custody records", len(page), len(r.Evidence), len(r.Timeline), len(r.Custody))
	groups := map[string]bool{}
	for _, it := range r.Evidence {
		groups[it.Group] = true
	}
	ev := string(page[bytes.Index(page, []byte(`<section id="evidence"`)):bytes.Index(page, []byte(`<section id="not-collected"`))])
	if n := strings.Count(ev, "<details>"); n != len(groups) {
		t.Errorf("%d closed evidence groups, want %d", n, len(groups))
	}
	if n := bytes.Count(page, []byte("<rect x=")); n != len(r.Timeline) {
		t.Errorf("%d timeline bars, want one per step (%d)", n, len(r.Timeline))
	}
	if strings.Contains(string(page), "<details open>") {
		t.Error("a group of the 1,000-pod case starts open")
	}
	if bytes.Contains(page, []byte(`class="print-expand"`)) {
		t.Error("the 1,000-pod case would print every row")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderHTMLReportsWriteErrors(t *testing.T) {
	if err := RenderHTML(failingWriter{}, smallReport()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("got %v, want the writer's error", err)
	}
	if err := RenderHTML(io.Discard, nil); err == nil {
		t.Error("a nil report rendered")
	}
}

// TestHTMLContrast checks every text colour of the stylesheet against the
// backgrounds it is drawn on, in the light, dark and print palettes, for
// WCAG's 4.5:1 minimum for body text.
func TestHTMLContrast(t *testing.T) {
	// #767676 on white is the known 4.54:1, the lightest grey that passes.
	if c := contrast("#767676", "#ffffff"); c < 4.5 || c > 4.6 {
		t.Fatalf("contrast(#767676, #ffffff) = %.3f, want 4.54", c)
	}
	palettes := paletteRE.FindAllStringSubmatch(htmlTemplateText, -1)
	if len(palettes) != 3 {
		t.Fatalf("found %d palettes (:root{--bg:...}), want light, dark and print", len(palettes))
	}
	for i, m := range palettes {
		vars := map[string]string{}
		for _, v := range varRE.FindAllStringSubmatch(m[1], -1) {
			vars[v[1]] = v[2]
		}
		pairs := [][2]string{{"fg", "badbg"}, {"fg", "warnbg"}, {"fg", "okbg"}}
		for _, fg := range []string{"fg", "muted", "ok", "bad", "warn", "other"} {
			for _, bg := range []string{"bg", "panel"} {
				pairs = append(pairs, [2]string{fg, bg})
			}
		}
		for _, p := range pairs {
			fg, bg := vars[p[0]], vars[p[1]]
			if fg == "" || bg == "" {
				t.Fatalf("palette %d lacks --%s or --%s", i, p[0], p[1])
			}
			if c := contrast(fg, bg); c < 4.5 {
				t.Errorf("palette %d: --%s %s on --%s %s has contrast %.2f, under 4.5", i, p[0], fg, p[1], bg, c)
			}
		}
	}
}

var (
	paletteRE = regexp.MustCompile(`:root\{(--bg:[^}]*)\}`)
	varRE     = regexp.MustCompile(`--([a-z]+):(#[0-9a-f]{6})`)
)

// contrast is WCAG 2's contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	var rgb [3]float64
	for i := range rgb {
		var v int
		fmt.Sscanf(hex[1+2*i:3+2*i], "%02x", &v)
		c := float64(v) / 255
		if c <= 0.03928 {
			rgb[i] = c / 12.92
		} else {
			rgb[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
}

// TestDrillNotContained: a drill in which nothing was contained shows as
// such, never as a time of 0 that would read as the fastest drill, and a
// trend row from a case whose log failed shows the failure.
func TestDrillNotContained(t *testing.T) {
	r := smallReport()
	page := string(render(t, r))
	var md bytes.Buffer
	if err := RenderMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"html": page, "markdown": md.String()} {
		if !strings.Contains(out, "DRILL-3") || !strings.Contains(out, "not contained") {
			t.Errorf("%s: no 'not contained' for DRILL-3", name)
		}
		if strings.Contains(out, "| 0 ms |") || strings.Contains(out, ">0 ms<") {
			t.Errorf("%s: a time to contain of 0 ms", name)
		}
		if !strings.Contains(out, "custody record 7: signature does not verify") || !strings.Contains(out, "Not in the trend, unreadable: DRILL-0") {
			t.Errorf("%s: the trend hides a custody problem or an unread case", name)
		}
	}
}
