package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCustodyTimesNeverRunBackwards: a hand-over record, validly signed and
// linked, dated before the seal fails verify.
func TestCustodyTimesNeverRunBackwards(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := NewSigner(priv)
	keys := KeyRing{}
	keys.Add(signer.Public())
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sealAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	res, err := SealDir(context.Background(), src, SealOptions{Incident: "T-1", OutDir: t.TempDir(), Compress: CompressNone, SealTime: sealAt, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), res.Archive, VerifyOptions{Keys: keys})
	if err != nil || !rep.OK {
		t.Fatalf("sealed archive: %v %+v", err, rep.Failed())
	}
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{{sealAt.Add(time.Hour), true}, {sealAt.Add(-time.Hour), false}} {
		rec, err := newRecord("custodian", ActionTransferred, tc.at, HandOver{From: "a", To: "b", Reason: "lab", ArchiveSHA256: res.SHA256, Verified: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		line, _, err := signRecord(rep.Custody.Head, signer, rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(res.Archive+".custody.jsonl", append(line, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Verify(context.Background(), res.Archive, VerifyOptions{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		backwards := false
		for _, c := range got.Failed() {
			backwards = backwards || c.Name == "custody-after-seal" && strings.Contains(c.Detail, "never run backwards")
		}
		if got.OK != tc.ok || !tc.ok && !backwards {
			t.Errorf("hand-over at %s (sealed %s): ok %v, checks %+v", FormatTime(tc.at), FormatTime(sealAt), got.OK, got.Checks)
		}
	}
}

// TestStatementAgreesWithBag: each label of bag-info.txt that seal derives
// from the statement, the top folder, the archive name and the tar time
// must agree with the statement.
func TestStatementAgreesWithBag(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	p := SealPredicate{Incident: "S-1", Bag: "S-1", SealedAt: FormatTime(at), Tool: "eksir test"}
	good := func() (*bagContent, map[string]string) {
		bc := &bagContent{top: "S-1", archive: "S-1.tar.zst", compress: CompressZstd, tarTime: at.Truncate(time.Second)}
		info := map[string]string{"Bagging-Date": "2026-03-04", "Sealed-At": FormatTime(at), "Case-Number": "S-1",
			"Acquisition-Tool": "eksir test", "Bag-Software-Agent": "eksir test"}
		return bc, info
	}
	if bc, info := good(); bc.statementDisagrees(p, info) != "" {
		t.Fatalf("a consistent bag: %s", bc.statementDisagrees(p, info))
	}
	for name, change := range map[string]func(bc *bagContent, info map[string]string){
		"Bagging-Date":       func(_ *bagContent, info map[string]string) { info["Bagging-Date"] = "2026-03-05" },
		"Sealed-At":          func(_ *bagContent, info map[string]string) { info["Sealed-At"] = FormatTime(at.Add(time.Second)) },
		"Case-Number":        func(_ *bagContent, info map[string]string) { info["Case-Number"] = "S-2" },
		"Acquisition-Tool":   func(_ *bagContent, info map[string]string) { info["Acquisition-Tool"] = "other" },
		"Bag-Software-Agent": func(_ *bagContent, info map[string]string) { delete(info, "Bag-Software-Agent") },
		"top folder":         func(bc *bagContent, _ map[string]string) { bc.top = "S-2" },
		"archive name":       func(bc *bagContent, _ map[string]string) { bc.archive = "S-2.tar.zst" },
		"compression":        func(bc *bagContent, _ map[string]string) { bc.compress = CompressNone },
		"tar time":           func(bc *bagContent, _ map[string]string) { bc.tarTime = bc.tarTime.Add(time.Second) },
	} {
		bc, info := good()
		change(bc, info)
		if bc.statementDisagrees(p, info) == "" {
			t.Errorf("%s differs from the statement, and it passed", name)
		}
	}
}
