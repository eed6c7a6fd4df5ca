package main

// Trust separation on the command line: --pubkey pins sealers, and
// --custodian-key names the keys trusted for hand-over records only. A
// hand-over record names the archive's hash: once the bytes change, verify
// fails and custody transfer refuses to add to it.

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCustodianKeys(t *testing.T) {
	sealerKey, sealerPub := newKey(t)
	custKey, custPub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("alpha\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "CK", "--key", sealerKey, "--seal-time", sealTime, src, "--out", out)
	archive := filepath.Join(out, "CK.tar.zst")

	mustRun(t, "", "custody", "transfer", archive, "--key", custKey, "--pubkey", sealerPub, "--from", "alice", "--to", "bob", "--reason", "courier")
	for _, bin := range []string{eksirBin, verifyBin} {
		res := runProcess(t, bin, "", nil, cleanEnv(), nil, "verify", archive, "--pubkey", sealerPub)
		expectExit(t, res, 3, filepath.Base(bin)+" verify without the custodian named")
		if !failed(res.stdout, "custody-after-seal", "CK.tar.zst.custody.jsonl") {
			t.Errorf("%s: no custody-after-seal FAIL:\n%s", bin, res.stdout)
		}
		expectExit(t, runProcess(t, bin, "", nil, cleanEnv(), nil, "verify", archive, "--pubkey", sealerPub, "--custodian-key", custPub), 0, filepath.Base(bin)+" verify with the custodian named")
		expectExit(t, runProcess(t, bin, "", nil, cleanEnv(), nil, "custody", "show", archive, "--pubkey", sealerPub, "--custodian-key", custPub), 0, filepath.Base(bin)+" custody show with the custodian named")
		expectExit(t, runProcess(t, bin, "", nil, cleanEnv(), nil, "custody", "show", archive, "--pubkey", sealerPub), 3, filepath.Base(bin)+" custody show without the custodian named")
	}

	// A bag the custodian sealed does not verify with the sealer pinned,
	// custodian named or not.
	forgedOut := filepath.Join(root, "forged")
	mustRun(t, root, "seal", "--incident", "CK", "--key", custKey, "--seal-time", sealTime, src, "--out", forgedOut)
	res := run(t, "", "verify", filepath.Join(forgedOut, "CK.tar.zst"), "--pubkey", sealerPub, "--custodian-key", custPub)
	expectExit(t, res, 3, "verify a bag sealed by a custodian's key")
	if !failed(res.stdout, "signature", "signatures/seal.dsse.json") {
		t.Errorf("no signature FAIL:\n%s", res.stdout)
	}
}

func TestTransferRefusesOtherBytes(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("alpha\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "TB", "--key", key, "--seal-time", sealTime, src, "--out", out)
	archive := filepath.Join(out, "TB.tar.zst")
	mustRun(t, "", "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--from", "alice", "--to", "bob", "--reason", "courier")

	// The same tar compressed anew, with a fresh sidecar: the bag inside
	// verifies, but the hand-over record was made for other bytes.
	r, done := openArchive(t, archive)
	plain, err := io.ReadAll(r)
	done()
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	zw.Write(plain)
	zw.Close()
	if err := os.WriteFile(archive, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	writeSidecar(t, archive)
	res := run(t, "", "verify", archive, "--pubkey", pub)
	expectExit(t, res, 3, "verify after the archive's bytes changed")
	if !failed(res.stdout, "custody-after-seal", "TB.tar.zst.custody.jsonl") {
		t.Errorf("no custody-after-seal FAIL:\n%s", res.stdout)
	}
	before, _ := os.ReadFile(archive + ".custody.jsonl")
	res = run(t, "", "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--from", "bob", "--to", "carol", "--reason", "analysis")
	expectExit(t, res, 3, "custody transfer on other bytes")
	if after, _ := os.ReadFile(archive + ".custody.jsonl"); !bytes.Equal(before, after) {
		t.Error("custody transfer wrote a record after refusing")
	}
}
