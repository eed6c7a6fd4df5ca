package main

// The tamper matrix: every change an attacker can make to a sealed bag after
// sealing, applied to an extracted copy that is repacked (with a fresh
// sidecar hash, as an attacker would write one) and also verified as a
// folder, must make `eksir verify` exit 3 and name the check and the file.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/eksir/eksir/evidence"
)

// sample is a sealed case: four acquired items (one from stdin, one in a
// subfolder, one empty), so the custody log holds 4 acquired records and
// the sealed one.
type sample struct {
	incident string
	archive  string
	key, pub string
	// ref is an extracted copy of the bag (ref/<incident>/...), never changed.
	ref string
	// order is the archive's entry names in archive order.
	order []string
	// mtime is the entries' mtime: the seal time to the second.
	mtime time.Time
}

func sealSample(t *testing.T, incident string) sample {
	t.Helper()
	root := t.TempDir()
	key, pub := newKey(t)
	cases := filepath.Join(root, "cases")
	src := filepath.Join(root, "src")
	a := writeFile(t, src, "a.txt", []byte("alpha evidence\n"))
	b := writeFile(t, src, "b.bin", pseudoRandom(10<<10, 7))
	e := writeFile(t, src, "empty", nil)
	mustRun(t, root, "--case-dir", cases, "acquire", "--incident", incident, "--key", key, a, b, e)
	res := runCmd(t, root, strings.NewReader("kubelet log line\n"), nil,
		"--case-dir", cases, "acquire", "--incident", incident, "--key", key, "--as", "sub/c.log", "-")
	expectExit(t, res, 0, "acquire from stdin")
	out := filepath.Join(root, "out")
	mustRun(t, root, "--case-dir", cases, "seal", "--incident", incident, "--key", key, "--seal-time", caseSealTime(), "--out", out)
	s := sample{incident: incident, archive: filepath.Join(out, incident+".tar.zst"), key: key, pub: pub, ref: filepath.Join(root, "ref")}
	s.order = extractGo(t, s.archive, s.ref)
	s.mtime = readEntries(t, s.archive)[0].hdr.ModTime
	return s
}

// bagFiles returns the bag-relative paths of the sample's regular files.
func (s sample) bagFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, name := range s.order {
		if !strings.HasSuffix(name, "/") {
			out = append(out, strings.TrimPrefix(name, s.incident+"/"))
		}
	}
	return out
}

// cause is a check that must fail, and the path it must name.
type cause struct{ check, path string }

// tamperCase changes the bag under bag (the top folder of a copy).
type tamperCase struct {
	name   string
	apply  func(t *testing.T, bag string)
	causes []cause
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// editLines rewrites a line-oriented file.
func editLines(t *testing.T, p string, edit func(lines []string) []string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if err := os.WriteFile(p, []byte(strings.Join(edit(lines), "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fixTagManifest re-hashes rel in tagmanifest-sha256.txt, as an attacker
// who also knows the bag format would.
func fixTagManifest(t *testing.T, bag, rel string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bag, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	editLines(t, filepath.Join(bag, "tagmanifest-sha256.txt"), func(lines []string) []string {
		for i, l := range lines {
			if strings.HasSuffix(l, "  "+rel+"\n") {
				lines[i], found = sha256Hex(b)+"  "+rel+"\n", true
			}
		}
		return lines
	})
	if !found {
		t.Fatalf("%s not in the tag manifest", rel)
	}
}

// resignEnvelope replaces the seal's DSSE envelope with a well-formed one
// signed by a new key over the very same statement.
func resignEnvelope(t *testing.T, bag string, replacePub bool) {
	t.Helper()
	p := filepath.Join(bag, "signatures", "seal.dsse.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := evidence.NewSigner(priv)
	es, err := dsse.NewEnvelopeSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := es.SignPayload(context.Background(), env.PayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(forged, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(out, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if replacePub {
		if err := os.WriteFile(filepath.Join(bag, "signatures", "seal.pub"), evidence.EncodePublicKey(other.Public()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fileCause is the check that must name a changed, cut or deleted file.
func fileCause(rel, how string) cause {
	switch {
	case strings.HasPrefix(rel, "data/") && how == "deleted":
		return cause{"completeness", rel}
	case strings.HasPrefix(rel, "data/"):
		return cause{"payload-checksum", rel}
	case rel == "tagmanifest-sha256.txt" && how == "deleted":
		return cause{"tag-manifest", rel}
	case rel == "tagmanifest-sha256.txt", strings.HasPrefix(rel, "signatures/"):
		// The tag manifest and the signatures are covered by the signature.
		return cause{"signature", rel}
	}
	return cause{"tag-manifest", rel}
}

// tamperCases builds the matrix for the files of s.
func tamperCases(t *testing.T, s sample) []tamperCase {
	var cases []tamperCase
	for _, rel := range s.bagFiles(t) {
		fi, err := os.Stat(filepath.Join(s.ref, s.incident, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		// An empty file has no byte to flip and no half to cut: it is only
		// deleted (data/manual/empty is the one empty file of the sample).
		if fi.Size() > 0 {
			cases = append(cases,
				tamperCase{"flip/" + rel, func(t *testing.T, bag string) { flipByte(t, filepath.Join(bag, rel)) }, []cause{fileCause(rel, "changed")}},
				tamperCase{"truncate/" + rel, func(t *testing.T, bag string) { truncateHalf(t, filepath.Join(bag, rel)) }, []cause{fileCause(rel, "cut")}},
			)
		}
		cases = append(cases, tamperCase{"delete/" + rel, func(t *testing.T, bag string) {
			if err := os.Remove(filepath.Join(bag, rel)); err != nil {
				t.Fatal(err)
			}
		}, []cause{fileCause(rel, "deleted")}})
	}
	custody := func(bag string) string { return filepath.Join(bag, "metadata", "custody.jsonl") }
	swap23 := func(lines []string) []string { lines[1], lines[2] = lines[2], lines[1]; return lines }
	dropLast := func(lines []string) []string { return lines[:len(lines)-1] }
	cases = append(cases,
		tamperCase{"add-payload/data/extra.txt", func(t *testing.T, bag string) {
			writeFile(t, bag, "data/extra.txt", []byte("planted\n"))
		}, []cause{{"completeness", "data/extra.txt"}}},
		tamperCase{"add-payload-and-list-it/data/manual/extra.txt", func(t *testing.T, bag string) {
			writeFile(t, bag, "data/manual/extra.txt", []byte("planted\n"))
			editLines(t, filepath.Join(bag, "manifest-sha256.txt"), func(l []string) []string {
				return append(l, sha256Hex([]byte("planted\n"))+"  data/manual/extra.txt\n")
			})
		}, []cause{{"tag-manifest", "manifest-sha256.txt"}, {"payload-oxum", "bag-info.txt"}}},
		tamperCase{"add-tag-file/metadata/notes.txt", func(t *testing.T, bag string) {
			writeFile(t, bag, "metadata/notes.txt", []byte("added later\n"))
		}, []cause{{"tag-manifest", "metadata/notes.txt"}}},
		tamperCase{"custody-swap-records-2-3", func(t *testing.T, bag string) {
			editLines(t, custody(bag), swap23)
		}, []cause{{"custody-chain", "metadata/custody.jsonl"}, {"tag-manifest", "metadata/custody.jsonl"}}},
		tamperCase{"custody-swap-records-2-3-tagmanifest-fixed", func(t *testing.T, bag string) {
			editLines(t, custody(bag), swap23)
			fixTagManifest(t, bag, "metadata/custody.jsonl")
		}, []cause{{"custody-chain", "metadata/custody.jsonl"}, {"signature", "tagmanifest-sha256.txt"}}},
		tamperCase{"custody-drop-last-record", func(t *testing.T, bag string) {
			editLines(t, custody(bag), dropLast)
		}, []cause{{"custody-chain", "metadata/custody.jsonl"}, {"tag-manifest", "metadata/custody.jsonl"}}},
		tamperCase{"custody-drop-last-record-bag-info-and-tagmanifest-fixed", func(t *testing.T, bag string) {
			editLines(t, custody(bag), dropLast)
			b, _ := os.ReadFile(custody(bag))
			lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
			head := sha256Hex([]byte(strings.TrimSuffix(lines[len(lines)-1], "\n")))
			editLines(t, filepath.Join(bag, "bag-info.txt"), func(l []string) []string {
				for i := range l {
					switch {
					case strings.HasPrefix(l[i], "Custody-Log-Head:"):
						l[i] = "Custody-Log-Head: " + head + "\n"
					case strings.HasPrefix(l[i], "Custody-Log-Records:"):
						l[i] = fmt.Sprintf("Custody-Log-Records: %d\n", len(lines))
					}
				}
				return l
			})
			fixTagManifest(t, bag, "metadata/custody.jsonl")
			fixTagManifest(t, bag, "bag-info.txt")
		}, []cause{{"custody-chain", "metadata/custody.jsonl"}, {"signature", "tagmanifest-sha256.txt"}}},
		tamperCase{"custody-edit-record-tagmanifest-fixed", func(t *testing.T, bag string) {
			editLines(t, custody(bag), func(l []string) []string {
				l[0] = strings.Replace(l[0], `"action":"acquired"`, `"action":"acquireD"`, 1)
				return l
			})
			fixTagManifest(t, bag, "metadata/custody.jsonl")
		}, []cause{{"custody-chain", "metadata/custody.jsonl"}, {"signature", "tagmanifest-sha256.txt"}}},
		tamperCase{"signature-by-another-key", func(t *testing.T, bag string) {
			resignEnvelope(t, bag, false)
		}, []cause{{"signature", "signatures/seal.dsse.json"}}},
		tamperCase{"signature-and-seal.pub-by-another-key", func(t *testing.T, bag string) {
			resignEnvelope(t, bag, true)
		}, []cause{{"signature", "signatures/seal.dsse.json"}}},
	)
	return cases
}

func TestTamperMatrix(t *testing.T) {
	s := sealSample(t, "TAMPER-1")
	files := s.bagFiles(t)
	// The matrix is only as good as the file list: make sure it is the
	// whole bag.
	want := []string{"bagit.txt", "data/manual/a.txt", "data/manual/b.bin", "data/manual/empty", "data/sub/c.log",
		"bag-info.txt", "manifest-sha256.txt", "metadata/custody.jsonl", "metadata/items.json",
		"metadata/report.html", "metadata/report.json", "tagmanifest-sha256.txt", "signatures/seal.dsse.json", "signatures/seal.pub"}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sealed bag holds\n%q\nwant (in this order)\n%q", files, want)
	}
	if b, _ := os.ReadFile(filepath.Join(s.ref, s.incident, "metadata", "custody.jsonl")); bytes.Count(b, []byte("\n")) < 3 {
		t.Fatalf("custody log has fewer than 3 records:\n%s", b)
	}

	t.Run("untouched", func(t *testing.T) {
		res := run(t, "", "verify", s.archive, "--pubkey", s.pub)
		expectExit(t, res, 0, "verify untouched archive")
		expectExit(t, run(t, "", "verify", filepath.Join(s.ref, s.incident), "--pubkey", s.pub), 0, "verify untouched folder")
		// The repacking used below changes nothing by itself.
		dir := t.TempDir()
		copyTree(t, s.ref, dir)
		archive := filepath.Join(dir, filepath.Base(s.archive))
		repackAt(t, dir, s.order, archive, true, s.mtime)
		writeSidecar(t, archive)
		expectExit(t, run(t, "", "verify", archive, "--pubkey", s.pub), 0, "verify repacked untouched archive")
	})

	for _, tc := range tamperCases(t, s) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, s.ref, dir)
			bag := filepath.Join(dir, s.incident)
			tc.apply(t, bag)

			archive := filepath.Join(dir, filepath.Base(s.archive))
			repackAt(t, dir, s.order, archive, true, s.mtime)
			writeSidecar(t, archive)
			for form, target := range map[string]string{"archive": archive, "folder": bag} {
				res := run(t, "", "verify", target, "--pubkey", s.pub)
				if res.code != 3 {
					t.Errorf("%s: want exit 3, got %v", form, res)
					continue
				}
				for _, c := range tc.causes {
					if !failed(res.stdout, c.check, c.path) {
						t.Errorf("%s: output does not name %s FAIL %s:\n%s", form, c.check, c.path, res.stdout)
					}
				}
				if form == "archive" && failed(res.stdout, "archive-sha256", filepath.Base(archive)) {
					t.Errorf("the repacked archive's fresh sidecar should match:\n%s", res.stdout)
				}
			}
		})
	}
}

// TestTamperArchiveBytes: the archive's own bytes changed without a new
// sidecar hash.
func TestTamperArchiveBytes(t *testing.T) {
	s := sealSample(t, "TAMPER-2")
	orig, err := os.ReadFile(s.archive)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(s.archive)
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
	}{
		{"flip-middle-byte", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"flip-last-byte", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
		{"append-bytes", func(b []byte) []byte { return append(b, "trailing"...) }},
		{"truncate", func(b []byte) []byte { return b[:len(b)-64] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, name)
			if err := os.WriteFile(archive, tc.change(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			sidecar, _ := os.ReadFile(s.archive + ".sha256")
			if err := os.WriteFile(archive+".sha256", sidecar, 0o600); err != nil {
				t.Fatal(err)
			}
			res := run(t, "", "verify", archive, "--pubkey", s.pub)
			expectExit(t, res, 3, "verify")
			if !failed(res.stdout, "archive-sha256", name) {
				t.Errorf("output does not name archive-sha256 FAIL %s:\n%s", name, res.stdout)
			}
		})
	}
	t.Run("sidecar-names-another-file", func(t *testing.T) {
		dir := t.TempDir()
		archive := filepath.Join(dir, name)
		if err := os.WriteFile(archive, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		line := sha256Hex(orig) + "  other.tar.zst\n"
		if err := os.WriteFile(archive+".sha256", []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		res := run(t, "", "verify", archive, "--pubkey", s.pub)
		expectExit(t, res, 3, "verify")
		if !failed(res.stdout, "archive-sha256", name+".sha256") {
			t.Errorf("output does not name archive-sha256 FAIL %s.sha256:\n%s", name, res.stdout)
		}
	})
}

// TestTamperHandOverLog: records appended after sealing continue the sealed
// chain; changing them is detected.
func TestTamperHandOverLog(t *testing.T) {
	s := sealSample(t, "TAMPER-3")
	// Work on a copy so the sample stays pristine.
	dir := t.TempDir()
	archive := filepath.Join(dir, filepath.Base(s.archive))
	for _, suffix := range []string{"", ".sha256"} {
		b, err := os.ReadFile(s.archive + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(archive+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "", "custody", "transfer", archive, "--key", s.key, "--pubkey", s.pub, "--from", "alice", "--to", "bob", "--reason", "lab intake", "--location", "HQ")
	mustRun(t, "", "custody", "transfer", archive, "--key", s.key, "--pubkey", s.pub, "--from", "bob", "--to", "carol", "--reason", "analysis")
	res := mustRun(t, "", "verify", archive, "--pubkey", s.pub)
	if !strings.Contains(res.stdout, "custody-after-seal") {
		t.Fatalf("verify does not report the hand-over log:\n%s", res.stdout)
	}
	logPath := archive + ".custody.jsonl"
	good, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(good, []byte("\n")); n != 2 {
		t.Fatalf("hand-over log has %d records, want 2", n)
	}
	logName := filepath.Base(logPath)
	for _, tc := range []struct {
		name string
		edit func(t *testing.T)
	}{
		{"edit-reason", func(t *testing.T) {
			editLines(t, logPath, func(l []string) []string {
				l[0] = strings.Replace(l[0], "lab intake", "lab intakE", 1)
				return l
			})
		}},
		{"edit-receiver-of-last", func(t *testing.T) {
			editLines(t, logPath, func(l []string) []string {
				l[1] = strings.Replace(l[1], `"to":"carol"`, `"to":"mallory"`, 1)
				return l
			})
		}},
		{"swap-records", func(t *testing.T) {
			editLines(t, logPath, func(l []string) []string { l[0], l[1] = l[1], l[0]; return l })
		}},
		{"remove-first-record", func(t *testing.T) {
			editLines(t, logPath, func(l []string) []string { return l[1:] })
		}},
		{"record-by-an-untrusted-key", func(t *testing.T) {
			otherKey, _ := newKey(t)
			mustRun(t, "", "custody", "transfer", archive, "--key", otherKey, "--pubkey", s.pub, "--from", "carol", "--to", "dave", "--reason", "unvetted")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(logPath, good, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.edit(t)
			res := run(t, "", "verify", archive, "--pubkey", s.pub)
			expectExit(t, res, 3, "verify after "+tc.name)
			if !failed(res.stdout, "custody-after-seal", logName) {
				t.Errorf("output does not name custody-after-seal FAIL %s:\n%s", logName, res.stdout)
			}
			show := run(t, "", "custody", "show", archive, "--pubkey", s.pub)
			expectExit(t, show, 3, "custody show after "+tc.name)
			if !strings.Contains(show.stdout, "✗") {
				t.Errorf("custody show marks no record as broken:\n%s", show.stdout)
			}
		})
	}
}
