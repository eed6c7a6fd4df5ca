package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

var update = flag.Bool("update", false, "rewrite the golden archives in testdata/golden")

// goldenDir holds the archives sealed from goldenCases with the committed
// test key: the bytes of the small ones, and for all of them the sidecar,
// whose hash pins the archive byte for byte.
const goldenDir = "testdata/golden"

// goldenCase is a case folder sealed with a fixed key, clock and seal time.
type goldenCase struct {
	incident string
	files    map[string][]byte // item path under data/ -> content
	// keepArchive commits the archive itself, not only its sidecar; the
	// large case's archives would be megabytes of random bytes.
	keepArchive bool
}

// prng returns n bytes from a seeded ChaCha8 stream: the same bytes on every
// machine and Go version, so large inputs need not be committed.
func prng(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func goldenCases() []goldenCase {
	long := strings.Repeat("long-name-", 11) + "end.txt" // 117 bytes: a PAX path record
	small := map[string][]byte{
		"bagged.txt":                 []byte("plain text\n"),
		"empty":                      nil,
		"nested/a/b/c/deep.json":     []byte(`{"deep":true}` + "\n"),
		"données/été-ünïcode-名前.txt": []byte("non-ASCII name\n"),
		"nested/" + long:             []byte("a name over 100 bytes\n"),
		"50%.log":                    []byte("percent in a manifest path\n"),
		// One byte over the size read in one piece: streamed in chunks.
		"chunks/just-over.bin": prng(1, 64<<10+1),
	}
	large := map[string][]byte{
		// Spans the 4 MiB archive blocks and the 1 MiB read buffers, and
		// ends off a 512-byte tar record.
		"disk/big.bin": prng(2, 2*(4<<20)+(1<<20)+4097),
		"disk/4MiB":    prng(3, 4<<20),
	}
	for k, v := range small {
		large[k] = v
	}
	return []goldenCase{
		{incident: "GOLDEN-SMALL", files: small, keepArchive: true},
		{incident: "GOLDEN-LARGE", files: large},
		// An empty case: a bag whose data/ folder is empty (issue #10).
		{incident: "GOLDEN-EMPTY", files: map[string][]byte{}, keepArchive: true},
	}
}

// goldenSigner loads the committed Ed25519 test key. (LoadSigner refuses
// it: git checks it out readable by others.)
func goldenSigner(t *testing.T) *evidence.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("signing.key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewSigner(k.(ed25519.PrivateKey))
}

// TestGoldenArchives seals fixed case folders and compares the archives and
// sidecars byte for byte with the committed ones, so a change to the
// writing pipeline that alters a single byte of the output fails here.
// Run with -update to rewrite them after an intended format change.
func TestGoldenArchives(t *testing.T) {
	signer := goldenSigner(t)
	keys := evidence.KeyRing{}
	keys.Add(signer.Public())
	for _, gc := range goldenCases() {
		for _, compress := range []string{evidence.CompressZstd, evidence.CompressNone} {
			t.Run(gc.incident+"-"+compress, func(t *testing.T) {
				res := sealGolden(t, gc, signer, compress)
				verifyOK(t, res.Archive, keys)
				name := filepath.Base(res.Archive)
				want := map[string][]byte{name + ".sha256": readFile(t, res.Sidecar)}
				if gc.keepArchive {
					want[name] = readFile(t, res.Archive)
				}
				for file, got := range want {
					golden := filepath.Join(goldenDir, file)
					if *update {
						if err := os.WriteFile(golden, got, 0o644); err != nil {
							t.Fatal(err)
						}
						continue
					}
					b, err := os.ReadFile(golden)
					if err != nil {
						t.Fatalf("%v (run go test -run TestGoldenArchives -update to create it)", err)
					}
					if !bytes.Equal(got, b) {
						t.Errorf("%s differs from the golden file (%d bytes, golden %d); the archive format changed", file, len(got), len(b))
					}
				}
			})
		}
	}
}

// sealGolden builds gc's case folder with a clock that ticks one
// millisecond per reading, and seals it at a fixed time.
func sealGolden(t *testing.T, gc goldenCase, signer *evidence.Signer, compress string) evidence.SealResult {
	t.Helper()
	ctx := context.Background()
	c, err := evidence.OpenCase(ctx, evidence.CaseOptions{
		Dir: t.TempDir(), Incident: gc.incident, Signer: signer, Tool: "eksir golden", Actor: "examiner",
		Collector: evidence.Collector{OSUser: "examiner", Host: "workstation"}, Now: tickingClock(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	paths := make([]string, 0, len(gc.files))
	for p := range gc.files {
		paths = append(paths, p)
	}
	// Items are added in a fixed order: their times come from the clock.
	slices.Sort(paths)
	for _, p := range paths {
		if _, err := c.Add(ctx, p, evidence.ItemInfo{Method: "golden fixture", Source: evidence.Source{Host: "node-1", Path: "/var/log/" + p}}, bytes.NewReader(gc.files[p])); err != nil {
			t.Fatalf("Add %s: %v", p, err)
		}
	}
	opts := sealOpts(signer, t.TempDir(), compress)
	opts.SealTime = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	res, err := evidence.SealCase(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestGoldenArchivesVerify: the archives sealed by the version before the
// canonical-layout rules (kept in testdata, with their sidecars) still
// verify as they are, pinned to the committed key.
func TestGoldenArchivesVerify(t *testing.T) {
	keys := evidence.KeyRing{}
	keys.Add(goldenSigner(t).Public())
	for _, name := range []string{"GOLDEN-SMALL.tar", "GOLDEN-SMALL.tar.zst"} {
		// Verify reads the archive's sidecar beside it: copy both, so that
		// nothing is written into testdata.
		dir := t.TempDir()
		for _, f := range []string{name, name + ".sha256"} {
			if err := os.WriteFile(filepath.Join(dir, f), readFile(t, filepath.Join(goldenDir, f)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rep := verifyOK(t, filepath.Join(dir, name), keys)
		if !rep.Pinned {
			t.Errorf("%s: not pinned", name)
		}
	}
}
