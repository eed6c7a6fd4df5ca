package evidence_test

// Attacks on verify beyond the tar layout (differential_test.go): hand-over
// records for other bytes, trust confusion between sealers and custodians,
// times, the DSSE envelope, and inputs that must give one clear failure.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/eksir/eksir/evidence"
)

// sealedDir seals a small folder as incident into a fresh folder.
func sealedDir(t *testing.T, signer *evidence.Signer, incident, compress string) evidence.SealResult {
	t.Helper()
	src := t.TempDir()
	for rel, content := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"} {
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := sealOpts(signer, t.TempDir(), compress)
	opts.Incident = incident
	res, err := evidence.SealDir(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func verify(t *testing.T, target string, opts evidence.VerifyOptions) *evidence.Report {
	t.Helper()
	rep, err := evidence.Verify(context.Background(), target, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// failedWith reports whether rep has a failing check whose detail says what.
func failedWith(rep *evidence.Report, check, what string) bool {
	for _, c := range rep.Failed() {
		if c.Name == check && strings.Contains(c.Detail, what) {
			return true
		}
	}
	return false
}

func writeArchive(t *testing.T, archive string, b []byte) {
	t.Helper()
	if err := os.WriteFile(archive, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive+".sha256", []byte(sha256Hex(b)+"  "+filepath.Base(archive)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHandOverRecordsNameTheArchive: a hand-over record made for other
// bytes (here the same bag, compressed anew) fails verify, and no further
// hand-over is recorded on top of it.
func TestHandOverRecordsNameTheArchive(t *testing.T) {
	signer, keys := newSigner(t)
	res := sealedDir(t, signer, "HO-1", evidence.CompressZstd)
	at := time.Now()
	if _, _, err := evidence.RecordHandOver(context.Background(), res.Archive, evidence.ActionTransferred,
		evidence.HandOver{From: "a", To: "b", Reason: "lab"}, signer, "a", at, evidence.VerifyOptions{Keys: keys}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys}); !rep.OK {
		t.Fatalf("after a hand-over: %+v", rep.Failed())
	}
	// The same tar in a new zstd frame: the bag verifies, the bytes differ.
	plain := decompress(t, readFile(t, res.Archive), true)
	var recompressed bytes.Buffer
	zw, _ := zstd.NewWriter(&recompressed, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	zw.Write(plain)
	zw.Close()
	if recompressed.Len() == 0 || sha256Hex(recompressed.Bytes()) == res.SHA256 {
		t.Fatal("recompressing gave the same bytes")
	}
	writeArchive(t, res.Archive, recompressed.Bytes())
	rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys})
	if rep.OK || !failedWith(rep, "custody-after-seal", "archive_sha256") {
		t.Errorf("a hand-over record for other bytes verified: %+v", rep.Checks)
	}
	before := readFile(t, res.Archive+".custody.jsonl")
	_, _, err := evidence.RecordHandOver(context.Background(), res.Archive, evidence.ActionTransferred,
		evidence.HandOver{From: "b", To: "c", Reason: "analysis"}, signer, "b", at.Add(time.Second), evidence.VerifyOptions{Keys: keys})
	if !errors.Is(err, evidence.ErrVerification) {
		t.Errorf("RecordHandOver on an archive whose hand-overs name other bytes: %v", err)
	}
	if after := readFile(t, res.Archive+".custody.jsonl"); string(after) != string(before) {
		t.Error("RecordHandOver wrote a record after refusing")
	}
}

// TestCustodianKeyIsNotASealer: keys trusted as custodians sign hand-overs
// only. A bag sealed by a custodian's key is not pinned, and records inside
// a bag signed by a custodian's key fail.
func TestCustodianKeyIsNotASealer(t *testing.T) {
	sealer, sealerKeys := newSigner(t)
	custodian, custodianKeys := newSigner(t)

	forged := sealedDir(t, custodian, "CK-1", evidence.CompressNone)
	rep := verify(t, forged.Archive, evidence.VerifyOptions{CustodyKeys: custodianKeys})
	if rep.Pinned {
		t.Error("a bag sealed by a custodian's key is reported as pinned")
	}
	rep = verify(t, forged.Archive, evidence.VerifyOptions{Keys: sealerKeys, CustodyKeys: custodianKeys})
	if rep.OK || !failedWith(rep, "signature", "no signature verifies") {
		t.Errorf("a bag sealed by a custodian's key verified with the sealer pinned: %+v", rep.Checks)
	}

	// Acquired under another examiner's key, sealed by the sealer's: the
	// seal names that examiner as a custodian, and so must verify.
	c := openCase(t, t.TempDir(), "CK-2", custodian)
	add(t, c, "a.txt", "alpha\n")
	opts := sealOpts(sealer, t.TempDir(), evidence.CompressNone)
	if _, err := evidence.SealCase(context.Background(), c, opts); err == nil {
		t.Fatal("seal accepted records by a key it was not told to trust")
	}
	opts.CustodyKeys = custodianKeys
	res, err := evidence.SealCase(context.Background(), c, opts)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep = verify(t, res.Archive, evidence.VerifyOptions{Keys: sealerKeys})
	if rep.OK || !failedWith(rep, "custody-chain", "not trusted") {
		t.Errorf("records inside the bag signed by an unnamed key verified: %+v", rep.Checks)
	}
	if rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: sealerKeys, CustodyKeys: custodianKeys}); !rep.OK || !rep.Pinned {
		t.Errorf("records by a named custodian, sealed by the pinned sealer: %+v", rep.Failed())
	}
	// Both keys as sealers: it verifies.
	both := evidence.KeyRing{}
	both.Add(sealer.Public())
	both.Add(custodian.Public())
	if rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: both}); !rep.OK {
		t.Errorf("with both keys pinned as sealers: %+v", rep.Failed())
	}

	// A hand-over signed by the custodian verifies only when it is named.
	if _, _, err := evidence.RecordHandOver(context.Background(), forged.Archive, evidence.ActionTransferred,
		evidence.HandOver{From: "a", To: "b", Reason: "lab"}, custodian, "a", time.Now(), evidence.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	sealed := sealedDir(t, sealer, "CK-3", evidence.CompressNone)
	if _, _, err := evidence.RecordHandOver(context.Background(), sealed.Archive, evidence.ActionTransferred,
		evidence.HandOver{From: "a", To: "b", Reason: "lab"}, custodian, "a", time.Now(), evidence.VerifyOptions{Keys: sealerKeys}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, sealed.Archive, evidence.VerifyOptions{Keys: sealerKeys}); rep.OK {
		t.Error("a hand-over by a key trusted for nothing verified")
	}
	if rep := verify(t, sealed.Archive, evidence.VerifyOptions{Keys: sealerKeys, CustodyKeys: custodianKeys}); !rep.OK || !rep.Pinned {
		t.Errorf("a hand-over by a named custodian: %+v", rep.Failed())
	}
}

// TestSealedBeforeAcquisition: a seal dated before evidence it would hold
// was acquired is refused by seal, and nothing is written. (Verify applies
// the same rule to the records inside a bag, the sealed record among them,
// through the chain replay that TestCustodyTimesNeverRunBackwards covers.)
func TestSealedBeforeAcquisition(t *testing.T) {
	signer, _ := newSigner(t)
	c := openCase(t, t.TempDir(), "EARLY-1", signer) // acquisitions on 2026-03-01
	add(t, c, "a.txt", "alpha\n")
	out := t.TempDir()
	opts := sealOpts(signer, out, evidence.CompressNone)
	opts.SealTime = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	_, err := evidence.SealCase(context.Background(), c, opts)
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "precedes") {
		t.Fatalf("a seal dated before its acquisitions: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("a refused seal left %v", left)
	}
}

// replaceEntry rewrites an uncompressed sealed archive with one tag file's
// content changed, its header as seal writes it.
func replaceEntry(t *testing.T, archive, name string, content []byte, mtime time.Time) {
	t.Helper()
	segs := splitTar(t, readFile(t, archive))
	i := find(t, segs, name)
	segs[i].raw = render(t, &tar.Header{Name: name, Size: int64(len(content)), Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg}, content)
	writeArchive(t, archive, joinTar(segs))
}

// TestEnvelopeOneSignature: a second signature in the DSSE envelope, valid
// or not, fails: seal writes exactly one, by the sealer.
func TestEnvelopeOneSignature(t *testing.T) {
	signer, keys := newSigner(t)
	res := sealedDir(t, signer, "ENV-1", evidence.CompressNone)
	var env dsse.Envelope
	if err := json.Unmarshal(archiveFile(t, res.Archive, "signatures/seal.dsse.json"), &env); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other := evidence.NewSigner(priv)
	payload, _ := env.DecodeB64Payload()
	es, _ := dsse.NewEnvelopeSigner(other)
	extra, err := es.SignPayload(context.Background(), env.PayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	env.Signatures = append(env.Signatures, extra.Signatures...)
	b, _ := json.MarshalIndent(env, "", "  ")
	replaceEntry(t, res.Archive, "ENV-1/signatures/seal.dsse.json", append(b, '\n'), sealAt.Truncate(time.Second))
	rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys})
	if rep.OK || !failedWith(rep, "signature", "2 signatures") {
		t.Errorf("an envelope with two signatures verified: %+v", rep.Checks)
	}
}

// TestSidecarForms: the forms sha256sum writes and reads verify.
func TestSidecarForms(t *testing.T) {
	signer, keys := newSigner(t)
	res := sealedDir(t, signer, "SUM-1", evidence.CompressZstd)
	name := filepath.Base(res.Archive)
	for _, line := range []string{
		res.SHA256 + "  " + name + "\n",
		res.SHA256 + " *" + name + "\n",
		strings.ToUpper(res.SHA256) + "  " + name + "\n",
		strings.ToUpper(res.SHA256) + " *" + name,
	} {
		if err := os.WriteFile(res.Sidecar, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		if rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys}); !rep.OK {
			t.Errorf("sidecar %q: %+v", line, rep.Failed())
		}
	}
	for _, line := range []string{res.SHA256 + " " + name + "\n", res.SHA256 + "  other.tar.zst\n", "garbage\n"} {
		if err := os.WriteFile(res.Sidecar, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		if rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys}); rep.OK || !failedWith(rep, "archive-sha256", "") {
			t.Errorf("sidecar %q accepted: %+v", line, rep.Checks)
		}
	}
}

// TestGarbageOneFailure: input that is not a bag at all gives one failure
// that says what is wrong, never "<nil>" nor a cascade.
func TestGarbageOneFailure(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"G.tar", []byte(strings.Repeat("this is not a tar archive\n", 100))},
		{"G.tar.zst", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, []byte(strings.Repeat("garbage", 100))...)},
		{"G.tar", nil},
		{"G.tar", make([]byte, 4096)},
		{"G.tar", make([]byte, 1024)},
	} {
		archive := filepath.Join(dir, tc.name)
		writeArchive(t, archive, tc.data)
		rep := verify(t, archive, evidence.VerifyOptions{})
		if f := rep.Failed(); len(f) != 1 || f[0].Detail == "" {
			t.Errorf("%s of %d bytes: want one failure, got %+v", tc.name, len(tc.data), f)
		}
		for _, c := range rep.Checks {
			if strings.Contains(c.Detail, "<nil>") {
				t.Errorf("%s: %+v", tc.name, c)
			}
		}
	}
	// A folder with no bag-info.txt says it is missing, not "<nil>".
	folder := filepath.Join(dir, "F")
	if err := os.MkdirAll(filepath.Join(folder, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, folder, evidence.VerifyOptions{})
	for _, c := range rep.Checks {
		if strings.Contains(c.Detail, "<nil>") {
			t.Errorf("folder: %+v", c)
		}
	}
	if !failedWith(rep, "bag-info", "missing") {
		t.Errorf("folder without bag-info.txt: %+v", rep.Checks)
	}
}

// TestAppendHandOverRefusesAChangedLog: a hand-over appended from a
// verification is refused when the custody log changed after that
// verification (another hand-over in between would fork the chain), and
// the log is left as it was.
func TestAppendHandOverRefusesAChangedLog(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := evidence.NewSigner(priv)
	res := sealedDir(t, signer, "inc-append", evidence.CompressNone)
	keys := evidence.KeyRing{}
	keys.Add(signer.Public())
	opts := evidence.VerifyOptions{Keys: keys, CustodyKeys: keys}
	stale := verify(t, res.Archive, opts)
	at := time.Now()
	h := evidence.HandOver{From: "alice", To: "lab", Reason: "analysis"}
	if _, _, err := evidence.RecordHandOver(t.Context(), res.Archive, evidence.ActionTransferred, h, signer, "alice", at, opts); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(res.Archive + ".custody.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.AppendHandOver(res.Archive, evidence.ActionTransferred, h, signer, "alice", at, stale); err == nil || !strings.Contains(err.Error(), "changed after it was verified") {
		t.Fatalf("append from a stale verification: %v, want a refusal", err)
	}
	after, err := os.ReadFile(res.Archive + ".custody.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the refused append changed the log")
	}
	fresh := verify(t, res.Archive, opts)
	if _, err := evidence.AppendHandOver(res.Archive, evidence.ActionTransferred, h, signer, "alice", at, fresh); err != nil {
		t.Fatalf("append from a fresh verification: %v", err)
	}
	if rep := verify(t, res.Archive, opts); !rep.OK || len(rep.Custody.Records) < 3 {
		t.Errorf("chain after two hand-overs: ok=%v records=%d %+v", rep.OK, len(rep.Custody.Records), rep.Failed())
	}
}
