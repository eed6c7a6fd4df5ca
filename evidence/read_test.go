package evidence_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eksir/eksir/evidence"
)

// TestReadCase reads a case without a signer: with its key every record
// verifies and is pinned; without a key the links are checked and the
// signatures are not (unpinned, still OK); with another key every record
// fails; an edited record breaks it and every later one. The items are
// those OpenCase indexes, a later acquisition superseding a not-collected
// record.
func TestReadCase(t *testing.T) {
	dir := t.TempDir()
	signer, keys := newSigner(t)
	c := openCase(t, dir, "R-1", signer)
	if _, err := c.NotCollected("b.txt", evidence.ItemInfo{Method: "test"}, "refused"); err != nil {
		t.Fatal(err)
	}
	add(t, c, "a.txt", "alpha")
	add(t, c, "b.txt", "beta")
	want := c.Items()
	c.Close()
	caseDir := filepath.Join(dir, "R-1")

	cl, err := evidence.ReadCase(context.Background(), caseDir, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !cl.OK || !cl.Pinned || len(cl.Records) != 3 || cl.Incident != "R-1" {
		t.Fatalf("with the key: %+v", cl)
	}
	if len(cl.Items) != len(want) {
		t.Fatalf("items %+v, OpenCase %+v", cl.Items, want)
	}
	for i := range want {
		if cl.Items[i] != want[i] {
			t.Errorf("item %d: %+v, OpenCase %+v", i, cl.Items[i], want[i])
		}
	}
	if cl.Items[1].Status != evidence.StatusCollected {
		t.Errorf("b.txt acquired after not-collected: %+v", cl.Items[1])
	}

	cl, err = evidence.ReadCase(context.Background(), caseDir, nil)
	if err != nil || !cl.OK || cl.Pinned {
		t.Fatalf("without a key: %+v %v", cl, err)
	}
	_, other := newSigner(t)
	cl, err = evidence.ReadCase(context.Background(), caseDir, other)
	if err != nil || cl.OK || cl.Records[0].OK || !strings.Contains(cl.Records[0].Problem, "not trusted") {
		t.Fatalf("with another key: %+v %v", cl, err)
	}

	p := filepath.Join(caseDir, "metadata", "custody.jsonl")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte("refused"), []byte("refuseD"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []evidence.KeyRing{keys, nil} {
		cl, err = evidence.ReadCase(context.Background(), caseDir, k)
		if err != nil {
			t.Fatal(err)
		}
		// With the key the edited record's signature fails; without it, the
		// next record's link does.
		if cl.OK || cl.Records[2].OK {
			t.Errorf("edited log read as OK (keys %v): %+v", k != nil, cl.Records)
		}
	}
	if _, err := evidence.ReadCase(context.Background(), dir, keys); err == nil {
		t.Error("a folder that is not a case was read")
	}
}

// TestVerifyKeepMetadata verifies a sealed archive keeping its metadata:
// the kept bytes are the bag's, the chosen payload file is kept and no
// other; without KeepMetadata nothing is kept.
func TestVerifyKeepMetadata(t *testing.T) {
	signer, keys := newSigner(t)
	c := openCase(t, t.TempDir(), "K-1", signer)
	add(t, c, "aws/snapshots/snap-1.json", `{"snapshot":"snap-1"}`)
	add(t, c, "big.bin", strings.Repeat("x", 4096))
	res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, t.TempDir(), evidence.CompressZstd))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evidence.Verify(context.Background(), res.Archive, evidence.VerifyOptions{Keys: keys, KeepMetadata: true,
		KeepPayload: func(rel string) bool { return strings.HasPrefix(rel, "data/aws/") }})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	caseLog, _ := os.ReadFile(filepath.Join(c.Dir(), "metadata", "custody.jsonl"))
	if !bytes.Equal(rep.Metadata["metadata/custody.jsonl"], caseLog) {
		t.Error("kept custody.jsonl differs from the sealed case's")
	}
	if !bytes.Contains(rep.Metadata["bag-info.txt"], []byte("External-Identifier: K-1")) || !bytes.Contains(rep.Metadata["metadata/items.json"], []byte("snap-1")) {
		t.Errorf("bag-info or items.json not kept: %q", rep.Metadata["bag-info.txt"])
	}
	if string(rep.Metadata["data/aws/snapshots/snap-1.json"]) != `{"snapshot":"snap-1"}` {
		t.Errorf("chosen payload: %q", rep.Metadata["data/aws/snapshots/snap-1.json"])
	}
	if _, ok := rep.Metadata["data/big.bin"]; ok || len(rep.Metadata) != 4 {
		t.Errorf("kept %d files", len(rep.Metadata))
	}
	if rep.ArchiveSHA256 != res.SHA256 {
		t.Errorf("archive sha256 %s, seal says %s", rep.ArchiveSHA256, res.SHA256)
	}
	rep, err = evidence.Verify(context.Background(), res.Archive, evidence.VerifyOptions{Keys: keys})
	if err != nil || !rep.OK || rep.Metadata != nil {
		t.Fatalf("without KeepMetadata: %v ok=%v kept %d", err, rep.OK, len(rep.Metadata))
	}
}
