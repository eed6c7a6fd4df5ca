package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

// TestConcurrentWriters: 32 goroutines acquire 20 items each into one case.
// Every item is indexed with its hash and size, the custody chain holds one
// record per item and verifies, and everything is private (0600/0700).
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 32, 20
	signer, keys := newSigner(t)
	dir := t.TempDir()
	c := openCase(t, dir, "CONC-1", signer)
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				rel := fmt.Sprintf("w%02d/item-%02d.txt", w, i)
				content := strings.Repeat(fmt.Sprintf("writer %d item %d\n", w, i), (w*perWriter+i)%9)
				mu.Lock()
				want["data/"+rel] = content
				mu.Unlock()
				var err error
				if i%2 == 0 {
					_, err = c.Add(context.Background(), rel, evidence.ItemInfo{Method: "test"}, stringReader(content))
				} else {
					// The streaming writer, in small writes.
					var iw *evidence.ItemWriter
					if iw, err = c.Create(rel, evidence.ItemInfo{Method: "test"}); err == nil {
						for j := 0; j < len(content) && err == nil; j += 7 {
							_, err = iw.Write([]byte(content[j:min(j+7, len(content))]))
						}
						if err == nil {
							_, err = iw.Commit()
						}
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", rel, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	var ix evidence.Index
	if err := json.Unmarshal(readFile(t, filepath.Join(c.Dir(), "metadata", "items.json")), &ix); err != nil {
		t.Fatal(err)
	}
	if ix.Incident != "CONC-1" || len(ix.Items) != writers*perWriter {
		t.Fatalf("items.json: incident %q, %d items; want CONC-1, %d", ix.Incident, len(ix.Items), writers*perWriter)
	}
	for _, it := range ix.Items {
		content, ok := want[it.Path]
		switch {
		case !ok:
			t.Errorf("unexpected item %s", it.Path)
		case it.SHA256 != sha256Hex([]byte(content)) || it.Size != int64(len(content)):
			t.Errorf("%s: sha256 %s size %d; want %s %d", it.Path, it.SHA256, it.Size, sha256Hex([]byte(content)), len(content))
		case it.Status != evidence.StatusCollected || it.AcquisitionStart == "" || it.AcquisitionEnd < it.AcquisitionStart:
			t.Errorf("%s: status %q, acquired %s..%s", it.Path, it.Status, it.AcquisitionStart, it.AcquisitionEnd)
		}
		if b := readFile(t, filepath.Join(c.Dir(), filepath.FromSlash(it.Path))); string(b) != content {
			t.Errorf("%s on disk differs from what was written", it.Path)
		}
	}

	// Reopening changes nothing (no recovery), and the sealed chain verifies.
	c = openCase(t, dir, "CONC-1", signer)
	if _, n := c.Log().Head(); n != writers*perWriter {
		t.Fatalf("custody log has %d records, want %d", n, writers*perWriter)
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, out, evidence.CompressZstd))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, res.Archive, keys)
	if len(rep.Custody.Records) != writers*perWriter+1 {
		t.Errorf("sealed chain has %d records, want %d", len(rep.Custody.Records), writers*perWriter+1)
	}

	// Files 0600, folders 0700: the case folder eksir made, and the output.
	for _, root := range []string{c.Dir(), out} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := os.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateDuplicate(t *testing.T) {
	signer, _ := newSigner(t)
	dir := t.TempDir()
	c := openCase(t, dir, "DUP-1", signer)
	add(t, c, "k8s/pod.json", "{}\n")
	// Has takes the payload-relative path, as Create, Add and NotCollected do.
	if !c.Has("k8s/pod.json") || c.Has("data/k8s/pod.json") || c.Has("k8s") {
		t.Errorf("Has after Add: %v for k8s/pod.json, %v for data/k8s/pod.json, %v for k8s",
			c.Has("k8s/pod.json"), c.Has("data/k8s/pod.json"), c.Has("k8s"))
	}
	// Only collected items are present: a not-collected one is retried.
	if _, err := c.NotCollected("k8s/gone.json", evidence.ItemInfo{}, "not found"); err != nil || c.Has("k8s/gone.json") {
		t.Errorf("Has after NotCollected: %v (err %v), want false", c.Has("k8s/gone.json"), err)
	}
	if _, err := c.NotCollected("k8s/pod.json", evidence.ItemInfo{}, "late failure"); !errors.Is(err, evidence.ErrExists) {
		t.Errorf("NotCollected of a collected item: err %v, want ErrExists", err)
	}
	if _, err := c.Add(context.Background(), "k8s/pod.json", evidence.ItemInfo{}, stringReader("other")); !errors.Is(err, evidence.ErrExists) {
		t.Errorf("second Add of the same path: err %v, want ErrExists", err)
	}
	// A path being written is taken too, until it is aborted.
	w, err := c.Create("logs/a.log", evidence.ItemInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("logs/a.log", evidence.ItemInfo{}); !errors.Is(err, evidence.ErrExists) {
		t.Errorf("Create while the same path is pending: err %v, want ErrExists", err)
	}
	if c.Has("logs/a.log") {
		t.Error("Has is true for an item still being written")
	}
	w.Abort()
	add(t, c, "logs/a.log", "after abort\n")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Across a reopen, and without a second record.
	c = openCase(t, dir, "DUP-1", signer)
	defer c.Close()
	if _, err := c.Add(context.Background(), "k8s/pod.json", evidence.ItemInfo{}, stringReader("x")); !errors.Is(err, evidence.ErrExists) {
		t.Errorf("Add after reopen: err %v, want ErrExists", err)
	}
	if _, n := c.Log().Head(); n != 3 {
		t.Errorf("custody log has %d records, want 3", n)
	}
	if !c.Has("k8s/pod.json") || c.Has("k8s/gone.json") {
		t.Errorf("Has after reopen: %v for the collected item (want true), %v for the not-collected one (want false)", c.Has("k8s/pod.json"), c.Has("k8s/gone.json"))
	}
	if got := string(readFile(t, filepath.Join(c.Dir(), "data", "k8s", "pod.json"))); got != "{}\n" {
		t.Errorf("original item overwritten: %q", got)
	}
}

func TestItemPaths(t *testing.T) {
	signer, _ := newSigner(t)
	c := openCase(t, t.TempDir(), "PATHS-1", signer)
	defer c.Close()
	for _, rel := range []string{
		"", "/etc/passwd", "..", "../x", "a/../../x", "a/../b", "a//b", "./a", "a/", "a/.",
		"a\x00b", "a\x7fb", "a\x1b[31mb", "bad\xffname", ".",
		"x.eksir-tmp-1", "a/.b.eksir-tmp-9",
	} {
		if _, err := c.Create(rel, evidence.ItemInfo{}); !errors.Is(err, evidence.ErrInvalidInput) {
			t.Errorf("Create(%q): err %v, want ErrInvalidInput", rel, err)
		}
		if _, err := c.NotCollected(rel, evidence.ItemInfo{}, "test"); !errors.Is(err, evidence.ErrInvalidInput) {
			t.Errorf("NotCollected(%q): err %v, want ErrInvalidInput", rel, err)
		}
	}
	if _, n := c.Log().Head(); n != 0 {
		t.Errorf("rejected paths left %d custody records", n)
	}
	for _, rel := range []string{"k8s/pods/web-0.json", "with space.txt", "50%.txt", "%0A", "ünï/日本.txt", "a..b", "nodes/i-0abc/memory.avml",
		// The names SealDir takes: hidden files are evidence too, and
		// manifests percent-encode CR and LF.
		".bash_history", "home/.ssh/known_hosts", "a\nb", "a\rb", "a\tb"} {
		add(t, c, rel, rel)
	}
}

// TestRecoverUnrecordedFile: a crash between the rename into data/ and the
// custody append leaves a file without a record. OpenCase does not adopt it
// silently; SealCase refuses it, naming it, and records it as "recovered"
// only with Adopt.
func TestRecoverUnrecordedFile(t *testing.T) {
	signer, keys := newSigner(t)
	dir := t.TempDir()
	c := openCase(t, dir, "REC-1", signer)
	add(t, c, "a.txt", "acquired normally\n")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	found := []byte("reached data/ but not the log\n")
	if err := os.MkdirAll(filepath.Join(c.Dir(), "data", "k8s"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir(), "data", "k8s", "found.json"), found, 0o600); err != nil {
		t.Fatal(err)
	}
	// An interrupted write's temporary file is not evidence.
	if err := os.WriteFile(filepath.Join(c.Dir(), "data", ".b.txt.eksir-tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	c = openCase(t, dir, "REC-1", signer)
	if items := c.Items(); len(items) != 1 {
		t.Fatalf("OpenCase adopted files silently: %+v", items)
	}
	if _, n := c.Log().Head(); n != 1 {
		t.Fatalf("OpenCase appended records: %d", n)
	}
	out := t.TempDir()
	_, err := evidence.SealCase(context.Background(), c, sealOpts(signer, out, evidence.CompressNone))
	if !errors.Is(err, evidence.ErrVerification) || !strings.Contains(err.Error(), "data/k8s/found.json") {
		t.Fatalf("SealCase with an unrecorded file: %v, want a verification error naming it", err)
	}
	if left := listDir(t, out); len(left) > 0 {
		t.Errorf("refused seal wrote %q", left)
	}
	if _, n := c.Log().Head(); n != 1 {
		t.Errorf("refused seal appended records: %d", n)
	}

	opts := sealOpts(signer, out, evidence.CompressNone)
	opts.SealTime = time.Time{}
	opts.Adopt = true
	res, err := evidence.SealCase(context.Background(), c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Adopted) != 1 || res.Adopted[0].Path != "data/k8s/found.json" {
		t.Errorf("adopted: %+v", res.Adopted)
	}
	items := c.Items()
	if len(items) != 2 || items[1].Path != "data/k8s/found.json" {
		t.Fatalf("items after adoption: %+v", items)
	}
	it := items[1]
	if it.SHA256 != sha256Hex(found) || it.Size != int64(len(found)) || !strings.HasPrefix(it.Method, "recovered") {
		t.Errorf("recovered item: %+v", it)
	}
	recs := c.Log().Records()
	rec := recs[1]
	if len(recs) != 3 || rec.Action != evidence.ActionRecovered || rec.Items["data/k8s/found.json"] != sha256Hex(found) {
		t.Errorf("custody after adoption: %d records, second %+v", len(recs), rec)
	}
	c.Close()
	verifyOK(t, res.Archive, keys)
	if res.PayloadFiles != 2 {
		t.Errorf("sealed %d files, want 2 (the temporary file is not evidence)", res.PayloadFiles)
	}
	// Adoption happens once: the next open knows the item.
	c = openCase(t, dir, "REC-1", signer)
	defer c.Close()
	if u, err := c.Unrecorded(context.Background()); err != nil || len(u.Files)+len(u.Others) > 0 {
		t.Errorf("unrecorded after adoption: %+v, %v", u, err)
	}
}

// TestRecoverTornRecord: a crash in the middle of a custody append leaves a
// line without its newline; reopening saves the torn bytes aside and says so
// in a signed "recovered" record.
func TestRecoverTornRecord(t *testing.T) {
	signer, keys := newSigner(t)
	dir := t.TempDir()
	clock := tickingClock()
	c := openCaseClock(t, dir, "TORN-1", signer, clock)
	add(t, c, "a.txt", "one\n")
	add(t, c, "b.txt", "two\n")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	logPath := custodyPath(c)
	data := readFile(t, logPath)
	lines := bytes.SplitAfter(data, []byte("\n"))
	last := lines[len(lines)-2]
	torn := last[:len(last)/2]
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c = openCaseClock(t, dir, "TORN-1", signer, clock)
	saved := logPath + ".torn-3"
	if got := readFile(t, saved); !bytes.Equal(got, torn) {
		t.Errorf("%s holds %q, want the torn bytes %q", saved, got, torn)
	}
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v", saved, err, fi.Mode())
	}
	after := readFile(t, logPath)
	if !bytes.HasPrefix(after, data) || !bytes.HasSuffix(after, []byte("\n")) || bytes.Count(after, []byte("\n")) != 3 {
		t.Errorf("custody log after recovery:\n%s", after)
	}
	recs := c.Log().Records()
	if len(recs) != 3 || recs[2].Action != evidence.ActionRecovered || recs[2].Seq != 3 {
		t.Fatalf("records after recovery: %+v", recs)
	}
	var details map[string]any
	if err := json.Unmarshal(recs[2].Details, &details); err != nil || details["torn_sha256"] != sha256Hex(torn) || details["torn_bytes"] != float64(len(torn)) {
		t.Errorf("recovered record details: %s (%v)", recs[2].Details, err)
	}
	if len(c.Items()) != 2 {
		t.Errorf("items after recovery: %+v", c.Items())
	}
	add(t, c, "c.txt", "three\n")
	res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, t.TempDir(), evidence.CompressZstd))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	rep := verifyOK(t, res.Archive, keys)
	if len(rep.Custody.Records) != 5 {
		t.Errorf("sealed chain has %d records, want 5", len(rep.Custody.Records))
	}
	// Nothing more to recover.
	c = openCaseClock(t, dir, "TORN-1", signer, clock)
	defer c.Close()
	if _, n := c.Log().Head(); n != 5 {
		t.Errorf("%d records after another reopen, want 5", n)
	}
	if _, err := os.Stat(logPath + ".torn-6"); err == nil {
		t.Error("a second torn file appeared")
	}
}

func TestOpenCaseRefusesAlteredLog(t *testing.T) {
	signer, _ := newSigner(t)
	dir := t.TempDir()
	c := openCase(t, dir, "ALT-1", signer)
	add(t, c, "a.txt", "one\n")
	add(t, c, "b.txt", "two\n")
	c.Close()
	logPath := custodyPath(c)
	lines := bytes.SplitAfter(readFile(t, logPath), []byte("\n"))
	swapped := append(append([]byte{}, lines[1]...), lines[0]...)
	if err := os.WriteFile(logPath, swapped, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := evidence.OpenCase(context.Background(), evidence.CaseOptions{Dir: dir, Incident: "ALT-1", Signer: signer})
	if !errors.Is(err, evidence.ErrVerification) {
		t.Errorf("OpenCase on a reordered log: err %v, want ErrVerification", err)
	}
}

// TestNotCollectedThenAcquired: an item recorded as not collected and
// acquired later (a resume retried it) is collected in the index, before
// and after reopening; the custody log keeps both records; the case seals
// and the bag verifies.
func TestNotCollectedThenAcquired(t *testing.T) {
	signer, keys := newSigner(t)
	dir := t.TempDir()
	c := openCase(t, dir, "RETRY-1", signer)
	add(t, c, "k8s/pod.json", "{}\n")
	for _, reason := range []string{"exec refused", "exec refused again"} {
		if _, err := c.NotCollected("volatile/ps.txt", evidence.ItemInfo{Method: "exec"}, reason); err != nil {
			t.Fatal(err)
		}
	}
	if c.Has("volatile/ps.txt") {
		t.Fatal("Has is true for a not-collected item")
	}
	it := add(t, c, "volatile/ps.txt", "PID CMD\n1 sh\n")
	if !c.Has("volatile/ps.txt") {
		t.Fatal("Has is false after the retry acquired the item")
	}
	// A late not-collected record never supersedes a collected item.
	if _, err := c.NotCollected("volatile/ps.txt", evidence.ItemInfo{}, "late"); !errors.Is(err, evidence.ErrExists) {
		t.Fatalf("NotCollected after acquisition: err %v, want ErrExists", err)
	}
	check := func(c *evidence.Case, when string) {
		t.Helper()
		var got *evidence.Item
		for _, x := range c.Items() {
			if x.Path == "data/volatile/ps.txt" {
				got = &x
			}
		}
		if got == nil || got.Status != evidence.StatusCollected || got.SHA256 != it.SHA256 || got.Reason != "" {
			t.Errorf("%s: index entry %+v, want collected with sha256 %s", when, got, it.SHA256)
		}
		if len(c.Items()) != 2 {
			t.Errorf("%s: %d items, want 2", when, len(c.Items()))
		}
	}
	check(c, "before reopening")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var ix evidence.Index
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "RETRY-1", "metadata", "items.json")), &ix); err != nil {
		t.Fatal(err)
	}
	if len(ix.Items) != 2 || ix.Items[1].Path != "data/volatile/ps.txt" || ix.Items[1].Status != evidence.StatusCollected {
		t.Errorf("items.json: %+v, want the retried item collected", ix.Items)
	}
	c = openCase(t, dir, "RETRY-1", signer)
	check(c, "after reopening")
	counts := map[string]int{}
	for _, r := range c.Log().Records() {
		counts[r.Action]++
	}
	if counts[evidence.ActionNotCollected] != 2 || counts[evidence.ActionAcquired] != 2 {
		t.Errorf("custody records by action %v, want 2 not-collected and 2 acquired", counts)
	}
	res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, filepath.Join(t.TempDir(), "out"), evidence.CompressZstd))
	if err != nil {
		t.Fatalf("SealCase: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, res.Archive, keys)
	if len(rep.Custody.Records) != 5 {
		t.Errorf("sealed chain has %d records, want 5", len(rep.Custody.Records))
	}
}
