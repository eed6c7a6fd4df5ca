package bagitcheck

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The bags below are written by hand, file by file, so that the checker is
// exercised against the RFC rather than against any writer.

// trickyPayload is the payload of the reference bag: names with a newline, a
// carriage return, '%', something that looks percent-encoded, spaces, unicode,
// plus an empty file and a nested file.
var trickyPayload = map[string]string{
	"data/plain.txt":                     "hello, bag\n",
	"data/new\nline.txt":                 "newline in the name",
	"data/carriage\rreturn.bin":          "carriage return in the name",
	"data/100% sure.txt":                 "percent sign",
	"data/%0A looks encoded.txt":         "a literal %0A in the name",
	"data/dir with space/ünïcödé ✓.txt":  "unicode",
	"data/empty":                         "",
	"data/sub/deeper/file.bin":           "\x00\x01\x02\xff",
	"data/trailing space ":               "name ends with a space",
	"data/sub/tab\tin name.log":          "tab",
	"data/sub/deeper/ãçé%25literal.json": `{"k":"v"}`,
}

const goodBagInfo = "Source-Organization: Example Lab\n" +
	"External-Identifier: INC-2024-0001\n" +
	"Bagging-Date: 2024-02-29\n" +
	"Payload-Oxum: OXUM\n" +
	"Case-Number: 42\n" +
	"Internal-Sender-Description: a long value that is\n" +
	"  continued on the next line\n" +
	"\tand on a tab-indented one\n"

// encodePath is the test's own RFC 8493 §2.1.3 encoder.
func encodePath(p string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(p)
}

func hexSum(newHash func() hash.Hash, b []byte) string {
	h := newHash()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha(b []byte) string { return hexSum(sha256.New, b) }

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	writeFile(t, path, []byte(readFile(t, path)+s))
}

func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	s := readFile(t, path)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	writeFile(t, path, []byte(strings.Replace(s, old, new, 1)))
}

// regularFiles lists the regular files under dir/sub (slash paths relative
// to dir), skipping symlinks and other non-regular files.
func regularFiles(t *testing.T, dir, sub string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, sub)
	if _, err := os.Lstat(root); os.IsNotExist(err) {
		return nil
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type().IsRegular() && (sub == "." || strings.HasPrefix(rel, sub+"/")) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// writeManifest (re)writes a payload manifest over the current payload.
func writeManifest(t *testing.T, dir, alg string, newHash func() hash.Hash) {
	t.Helper()
	var sb strings.Builder
	for _, p := range regularFiles(t, dir, "data") {
		fmt.Fprintf(&sb, "%s  %s\n", hexSum(newHash, []byte(readFile(t, filepath.Join(dir, p)))), encodePath(p))
	}
	writeFile(t, filepath.Join(dir, "manifest-"+alg+".txt"), []byte(sb.String()))
}

// fixOxum rewrites the Payload-Oxum line of bag-info.txt to match the payload.
func fixOxum(t *testing.T, dir string) {
	t.Helper()
	var octets int64
	files := regularFiles(t, dir, "data")
	for _, p := range files {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		octets += fi.Size()
	}
	path := filepath.Join(dir, "bag-info.txt")
	lines := strings.SplitAfter(readFile(t, path), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Payload-Oxum: ") {
			lines[i] = fmt.Sprintf("Payload-Oxum: %d.%d\n", octets, len(files))
		}
	}
	writeFile(t, path, []byte(strings.Join(lines, "")))
}

// resealTags rewrites tagmanifest-sha256.txt over every file outside data/,
// except tag manifests and signatures/.
func resealTags(t *testing.T, dir string) {
	t.Helper()
	var sb strings.Builder
	for _, p := range regularFiles(t, dir, ".") {
		if p == "data" || strings.HasPrefix(p, "data/") || strings.HasPrefix(p, "tagmanifest-") || strings.HasPrefix(p, "signatures/") {
			continue
		}
		fmt.Fprintf(&sb, "%s  %s\n", sha([]byte(readFile(t, filepath.Join(dir, p)))), encodePath(p))
	}
	writeFile(t, filepath.Join(dir, "tagmanifest-sha256.txt"), []byte(sb.String()))
}

func reseal(t *testing.T, dir string) {
	t.Helper()
	fixOxum(t, dir)
	resealTags(t, dir)
}

// newBag writes a complete, valid bag following the eksir layout and returns
// its base directory.
func newBag(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "INC-2024-0001")
	for p, c := range trickyPayload {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(p)), []byte(c))
	}
	writeFile(t, filepath.Join(dir, "bagit.txt"), []byte("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"))
	writeFile(t, filepath.Join(dir, "bag-info.txt"), []byte(strings.Replace(goodBagInfo, "OXUM", "0.0", 1)))
	writeManifest(t, dir, "sha256", sha256.New)
	writeFile(t, filepath.Join(dir, "metadata", "items.json"), []byte(`[{"path":"data/plain.txt","collector":"Zoë"}]`+"\n"))
	writeFile(t, filepath.Join(dir, "metadata", "custody.jsonl"), []byte(`{"seq":1}`+"\n"))
	writeFile(t, filepath.Join(dir, "signatures", "seal.dsse.json"), []byte(`{"payloadType":"x"}`+"\n"))
	reseal(t, dir)
	return dir
}

// addReport adds the incident report tag files a seal writes
// (metadata/report.json and metadata/report.html) and lists them in the tag
// manifest.
func addReport(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "metadata", "report.json"), []byte(`{"apiVersion":"eksir.dev/report/v1","kind":"IncidentReport"}`+"\n"))
	writeFile(t, filepath.Join(dir, "metadata", "report.html"), []byte("<!doctype html><title>INC</title><p>Zoë contained it</p>\n"))
	resealTags(t, dir)
}

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	sort.Strings(out)
	return out
}

func dump(vs []Violation) string {
	var sb strings.Builder
	for _, v := range vs {
		sb.WriteString("\n\t" + v.String())
	}
	return sb.String()
}

func TestCheck(t *testing.T) {
	p := func(dir string, rel ...string) string { return filepath.Join(append([]string{dir}, rel...)...) }
	tests := []struct {
		name     string
		mutate   func(t *testing.T, dir string)
		want     []string // exact set of rules reported; nil for a valid bag
		wantPath string   // if set, some violation must carry this Path
	}{
		// Valid bags.
		{name: "valid bag with tricky names", mutate: func(t *testing.T, dir string) {}},
		{name: "valid: CRLF line ends in every tag file", mutate: func(t *testing.T, dir string) {
			for _, f := range []string{"bagit.txt", "bag-info.txt", "manifest-sha256.txt"} {
				writeFile(t, p(dir, f), []byte(strings.ReplaceAll(readFile(t, p(dir, f)), "\n", "\r\n")))
			}
			resealTags(t, dir)
		}},
		{name: "valid: CR line ends in bagit.txt", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), []byte("BagIt-Version: 1.0\rTag-File-Character-Encoding: UTF-8\r"))
			resealTags(t, dir)
		}},
		{name: "valid: tab separator, upper-case hex, lower-case escapes", mutate: func(t *testing.T, dir string) {
			s := readFile(t, p(dir, "manifest-sha256.txt"))
			var out []string
			for _, l := range strings.SplitAfter(s, "\n") {
				if l == "" {
					continue
				}
				sum, path, _ := strings.Cut(l, "  ")
				out = append(out, strings.ToUpper(sum)+"\t \t"+strings.ReplaceAll(path, "%0A", "%0a"))
			}
			writeFile(t, p(dir, "manifest-sha256.txt"), []byte(strings.Join(out, "")))
			resealTags(t, dir)
		}},
		{name: "valid: second payload manifest sha512", mutate: func(t *testing.T, dir string) {
			writeManifest(t, dir, "sha512", sha512.New)
			resealTags(t, dir)
		}},
		{name: "valid: no bag-info.txt and no tag manifest", mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "bag-info.txt"))
			os.Remove(p(dir, "tagmanifest-sha256.txt"))
		}},
		{name: "valid: empty payload", mutate: func(t *testing.T, dir string) {
			os.RemoveAll(p(dir, "data"))
			os.Mkdir(p(dir, "data"), 0o755)
			writeManifest(t, dir, "sha256", sha256.New)
			reseal(t, dir)
		}},

		// §2: only regular files and directories.
		{name: "symlink in payload", want: []string{"2"}, wantPath: "data/link", mutate: func(t *testing.T, dir string) {
			if err := os.Symlink("plain.txt", p(dir, "data", "link")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlinked directory pointing outside the bag", want: []string{"2"}, wantPath: "data/outside", mutate: func(t *testing.T, dir string) {
			outside := t.TempDir()
			writeFile(t, p(outside, "secret"), []byte("outside"))
			if err := os.Symlink(outside, p(dir, "data", "outside")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlink as tag file", want: []string{"2"}, wantPath: "metadata/link.json", mutate: func(t *testing.T, dir string) {
			if err := os.Symlink("items.json", p(dir, "metadata", "link.json")); err != nil {
				t.Fatal(err)
			}
		}},

		// §2.1.1 bagit.txt.
		{name: "wrong BagIt-Version", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), []byte("BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n"))
			resealTags(t, dir)
		}},
		{name: "wrong encoding declared", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), []byte("BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n"))
			resealTags(t, dir)
		}},
		{name: "bagit.txt with a third line", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bagit.txt"), "\n")
			resealTags(t, dir)
		}},
		{name: "bagit.txt lines swapped", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), []byte("Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n"))
			resealTags(t, dir)
		}},
		{name: "bagit.txt without final line end", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), []byte("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8"))
			resealTags(t, dir)
		}},
		{name: "BOM in bagit.txt", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bagit.txt"), append(append([]byte{}, utf8BOM...), "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"...))
			resealTags(t, dir)
		}},
		{name: "bagit.txt missing", want: []string{"2.1.1"}, mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "bagit.txt"))
			resealTags(t, dir)
		}},

		// §2.1.2 data/.
		{name: "missing data dir", want: []string{"2.1.2"}, mutate: func(t *testing.T, dir string) {
			os.RemoveAll(p(dir, "data"))
			writeFile(t, p(dir, "manifest-sha256.txt"), nil)
			reseal(t, dir)
		}},
		{name: "data is a file", want: []string{"2.1.2"}, mutate: func(t *testing.T, dir string) {
			os.RemoveAll(p(dir, "data"))
			writeFile(t, p(dir, "data"), []byte("not a dir"))
			writeFile(t, p(dir, "manifest-sha256.txt"), nil)
			reseal(t, dir)
		}},

		// §2.1.3 payload manifests.
		{name: "no payload manifest", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "manifest-sha256.txt"))
			resealTags(t, dir)
		}},
		{name: "duplicate entry", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(trickyPayload["data/plain.txt"]))+"  data/plain.txt\n")
			resealTags(t, dir)
		}},
		{name: "duplicate entry after decoding", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(trickyPayload["data/new\nline.txt"]))+"  data/new%0aline.txt\n")
			resealTags(t, dir)
		}},
		{name: "dot-dot segment", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(readFile(t, p(dir, "bagit.txt"))))+"  data/../bagit.txt\n")
			resealTags(t, dir)
		}},
		{name: "absolute path", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha(nil)+"  /etc/passwd\n")
			resealTags(t, dir)
		}},
		{name: "dot and empty segments", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha(nil)+"  data/./empty\n"+sha(nil)+"  data//empty\n")
			resealTags(t, dir)
		}},
		{name: "payload manifest lists a tag file", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(readFile(t, p(dir, "bagit.txt"))))+"  bagit.txt\n")
			resealTags(t, dir)
		}},
		{name: "directory listed", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), sha(nil)+"  data/sub\n")
			resealTags(t, dir)
		}},
		{name: "bare percent sign", want: []string{"2.1.3"}, wantPath: "manifest-sha256.txt", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "data", "50%off.txt"), []byte("sale"))
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte("sale"))+"  data/50%off.txt\n")
			reseal(t, dir)
		}},
		{name: "percent-encoding of another character", want: []string{"2.1.3", "3"}, mutate: func(t *testing.T, dir string) {
			// "data/A.txt" written as "data/%41.txt": not one of the three
			// allowed escapes, so it does not name the file either.
			writeFile(t, p(dir, "data", "A.txt"), []byte("a"))
			appendFile(t, p(dir, "manifest-sha256.txt"), sha([]byte("a"))+"  data/%41.txt\n")
			reseal(t, dir)
		}},
		{name: "checksum of wrong length", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(trickyPayload["data/plain.txt"]))+"  ", sha([]byte(trickyPayload["data/plain.txt"]))[:40]+"  ")
			resealTags(t, dir)
		}},
		{name: "line without separator", want: []string{"2.1.3", "3"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "manifest-sha256.txt"), sha([]byte(trickyPayload["data/plain.txt"]))+"  data/plain.txt", "data/plain.txt")
			resealTags(t, dir)
		}},
		{name: "empty line in manifest", want: []string{"2.1.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "manifest-sha256.txt"), "\n")
			resealTags(t, dir)
		}},

		// §2.4 algorithms.
		{name: "unsupported algorithm", want: []string{"2.4"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "manifest-blake9.txt"), []byte(readFile(t, p(dir, "manifest-sha256.txt"))))
			resealTags(t, dir)
		}},
		{name: "algorithm name not normalized", want: []string{"2.4"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "manifest-SHA-256.txt"), []byte(readFile(t, p(dir, "manifest-sha256.txt"))))
			resealTags(t, dir)
		}},

		// §2.2.1 tag manifests.
		{name: "tagmanifest lists a payload file", want: []string{"2.2.1"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "tagmanifest-sha256.txt"), sha([]byte(trickyPayload["data/plain.txt"]))+"  data/plain.txt\n")
		}},
		{name: "tagmanifest lists itself", want: []string{"2.2.1"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "tagmanifest-sha256.txt"), sha(nil)+"  tagmanifest-sha256.txt\n")
		}},
		{name: "tagmanifest omits the payload manifest", want: []string{"2.2.1"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "tagmanifest-sha256.txt"), sha([]byte(readFile(t, p(dir, "manifest-sha256.txt"))))+"  manifest-sha256.txt\n", "")
		}},

		// §2.2.2 bag-info.txt.
		{name: "bad Payload-Oxum", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Payload-Oxum: ", "Payload-Oxum: 1")
			resealTags(t, dir)
		}},
		{name: "malformed Payload-Oxum", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			s := readFile(t, p(dir, "bag-info.txt"))
			i := strings.Index(s, "Payload-Oxum: ")
			j := i + strings.Index(s[i:], "\n")
			writeFile(t, p(dir, "bag-info.txt"), []byte(s[:i]+"Payload-Oxum: 12 bytes"+s[j:]))
			resealTags(t, dir)
		}},
		{name: "Payload-Oxum twice", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			s := readFile(t, p(dir, "bag-info.txt"))
			i := strings.Index(s, "Payload-Oxum: ")
			j := i + strings.Index(s[i:], "\n") + 1
			appendFile(t, p(dir, "bag-info.txt"), s[i:j])
			resealTags(t, dir)
		}},
		{name: "stale Payload-Oxum after adding a listed file", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "data", "late.txt"), []byte("late"))
			writeManifest(t, dir, "sha256", sha256.New)
			resealTags(t, dir)
		}},
		{name: "bad Bagging-Date format", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Bagging-Date: 2024-02-29", "Bagging-Date: 2024/02/29")
			resealTags(t, dir)
		}},
		{name: "impossible Bagging-Date", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Bagging-Date: 2024-02-29", "Bagging-Date: 2023-02-29")
			resealTags(t, dir)
		}},
		{name: "bag-info line without colon", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bag-info.txt"), "Examiner Jane Doe\n")
			resealTags(t, dir)
		}},
		{name: "bag-info empty label", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bag-info.txt"), ": no label\n")
			resealTags(t, dir)
		}},
		{name: "bag-info label ends with whitespace", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bag-info.txt"), "Examiner : Jane Doe\n")
			resealTags(t, dir)
		}},
		{name: "bag-info no whitespace after colon", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bag-info.txt"), "Examiner:Jane Doe\n")
			resealTags(t, dir)
		}},
		{name: "bag-info starts with a continuation line", want: []string{"2.2.2"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bag-info.txt"), []byte("  orphan\n"+readFile(t, p(dir, "bag-info.txt"))))
			resealTags(t, dir)
		}},

		// §2.2.3 fetch.txt.
		{name: "fetch.txt present", want: []string{"2.2.3"}, wantPath: "fetch.txt", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "fetch.txt"), []byte("https://example.com/plain.txt 11 data/plain.txt\n"))
			resealTags(t, dir)
		}},

		// §2.3 text tag files.
		{name: "BOM in bag-info.txt", want: []string{"2.3"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "bag-info.txt"), append(append([]byte{}, utf8BOM...), readFile(t, p(dir, "bag-info.txt"))...))
			resealTags(t, dir)
		}},
		{name: "invalid UTF-8 in bag-info.txt", want: []string{"2.3"}, mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "bag-info.txt"), "Examiner: J\xffne\n")
			resealTags(t, dir)
		}},
		{name: "manifest last line unterminated", want: []string{"2.3"}, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "manifest-sha256.txt"), []byte(strings.TrimSuffix(readFile(t, p(dir, "manifest-sha256.txt")), "\n")))
			resealTags(t, dir)
		}},

		// §3 complete and valid.
		{name: "payload file not in manifest", want: []string{"3"}, wantPath: "data/extra\n%.bin", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "data", "extra\n%.bin"), []byte("extra"))
			reseal(t, dir)
		}},
		{name: "listed file missing", want: []string{"3"}, wantPath: "data/new\nline.txt", mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "data", "new\nline.txt"))
			reseal(t, dir)
		}},
		{name: "bad checksum", want: []string{"3"}, wantPath: "data/dir with space/ünïcödé ✓.txt", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "data", "dir with space", "ünïcödé ✓.txt"), []byte("UNICODE"))
			reseal(t, dir)
		}},
		{name: "file missing from the second payload manifest", want: []string{"3"}, wantPath: "data/empty", mutate: func(t *testing.T, dir string) {
			writeManifest(t, dir, "sha512", sha512.New)
			replaceInFile(t, p(dir, "manifest-sha512.txt"), hexSum(sha512.New, nil)+"  data/empty\n", "")
			resealTags(t, dir)
		}},
		{name: "tag file changed after sealing", want: []string{"3"}, wantPath: "metadata/items.json", mutate: func(t *testing.T, dir string) {
			appendFile(t, p(dir, "metadata", "items.json"), " ")
		}},
		{name: "tag file listed but missing", want: []string{"3"}, wantPath: "metadata/custody.jsonl", mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "metadata", "custody.jsonl"))
		}},
		// The incident report a seal adds as tag files (issue 15).
		{name: "valid: report tag files", mutate: func(t *testing.T, dir string) { addReport(t, dir) }},
		{name: "report changed after sealing", want: []string{"3"}, wantPath: "metadata/report.html", mutate: func(t *testing.T, dir string) {
			addReport(t, dir)
			replaceInFile(t, p(dir, "metadata", "report.html"), "contained", "nothing happened")
		}},
		{name: "report listed but removed", want: []string{"3"}, wantPath: "metadata/report.json", mutate: func(t *testing.T, dir string) {
			addReport(t, dir)
			os.Remove(p(dir, "metadata", "report.json"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newBag(t)
			tc.mutate(t, dir)
			vs := Check(dir)
			if got := rules(vs); !slices.Equal(got, tc.want) {
				t.Fatalf("rules = %q, want %q; violations:%s", got, tc.want, dump(vs))
			}
			if tc.want == nil && vs != nil {
				t.Fatalf("valid bag: got non-nil empty slice")
			}
			if tc.wantPath != "" && !slices.ContainsFunc(vs, func(v Violation) bool { return v.Path == tc.wantPath }) {
				t.Fatalf("no violation with Path %q; violations:%s", tc.wantPath, dump(vs))
			}
		})
	}
}

func TestCheckProfile(t *testing.T) {
	p := func(dir string, rel ...string) string { return filepath.Join(append([]string{dir}, rel...)...) }
	tests := []struct {
		name     string
		mutate   func(t *testing.T, dir string)
		wantErr  bool   // profile violation expected
		wantPath string // if set, some violation must carry this Path
	}{
		{name: "valid", mutate: func(t *testing.T, dir string) {}},
		{name: "missing Source-Organization", wantErr: true, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Source-Organization: Example Lab\n", "")
			resealTags(t, dir)
		}},
		{name: "empty External-Identifier", wantErr: true, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "External-Identifier: INC-2024-0001", "External-Identifier: ")
			resealTags(t, dir)
		}},
		{name: "missing Bagging-Date", wantErr: true, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Bagging-Date: 2024-02-29\n", "")
			resealTags(t, dir)
		}},
		{name: "missing Payload-Oxum", wantErr: true, mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Payload-Oxum: ", "X-Payload-Oxum: ")
			resealTags(t, dir)
		}},
		{name: "labels compared case-insensitively", mutate: func(t *testing.T, dir string) {
			replaceInFile(t, p(dir, "bag-info.txt"), "Source-Organization:", "source-organization:")
			resealTags(t, dir)
		}},
		{name: "missing bag-info.txt", wantErr: true, mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "bag-info.txt"))
			resealTags(t, dir)
		}},
		{name: "only a sha512 payload manifest", wantErr: true, wantPath: "manifest-sha256.txt", mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "manifest-sha256.txt"))
			writeManifest(t, dir, "sha512", sha512.New)
			resealTags(t, dir)
		}},
		{name: "no tag manifest", wantErr: true, wantPath: "tagmanifest-sha256.txt", mutate: func(t *testing.T, dir string) {
			os.Remove(p(dir, "tagmanifest-sha256.txt"))
		}},
		{name: "metadata file not in tag manifest", wantErr: true, wantPath: "metadata/report.html", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "metadata", "report.html"), []byte("<p>report</p>\n"))
		}},
		{name: "report tag files listed", mutate: func(t *testing.T, dir string) { addReport(t, dir) }},
		{name: "report.json not JSON", wantErr: true, wantPath: "metadata/report.json", mutate: func(t *testing.T, dir string) {
			addReport(t, dir)
			writeFile(t, p(dir, "metadata", "report.json"), []byte("{\"kind\":\n"))
			resealTags(t, dir)
		}},
		{name: "report.html not UTF-8", wantErr: true, wantPath: "metadata/report.html", mutate: func(t *testing.T, dir string) {
			addReport(t, dir)
			writeFile(t, p(dir, "metadata", "report.html"), []byte("<p>\xff</p>\n"))
			resealTags(t, dir)
		}},
		{name: "new signature need not be in tag manifest", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "signatures", "seal.minisig"), []byte("untrusted comment: x\n"))
		}},
		{name: "manifest with a single space separator", wantErr: true, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "manifest-sha256.txt"), []byte(strings.ReplaceAll(readFile(t, p(dir, "manifest-sha256.txt")), "  data/", " data/")))
			resealTags(t, dir)
		}},
		{name: "manifest with CRLF", wantErr: true, mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "manifest-sha256.txt"), []byte(strings.ReplaceAll(readFile(t, p(dir, "manifest-sha256.txt")), "\n", "\r\n")))
			resealTags(t, dir)
		}},
		{name: "metadata JSON with BOM", wantErr: true, wantPath: "metadata/items.json", mutate: func(t *testing.T, dir string) {
			writeFile(t, p(dir, "metadata", "items.json"), append(append([]byte{}, utf8BOM...), "[]\n"...))
			resealTags(t, dir)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newBag(t)
			tc.mutate(t, dir)
			// Profile cases keep the bag RFC-valid, so the two checks stay apart.
			if vs := Check(dir); vs != nil {
				t.Fatalf("Check: bag should stay RFC-valid; violations:%s", dump(vs))
			}
			vs := CheckProfile(dir)
			for _, v := range vs {
				if v.Rule != "profile" {
					t.Errorf("CheckProfile reported Rule %q, want \"profile\"", v.Rule)
				}
			}
			if got := vs != nil; got != tc.wantErr {
				t.Fatalf("CheckProfile violations = %v, want %v:%s", got, tc.wantErr, dump(vs))
			}
			if tc.wantPath != "" && !slices.ContainsFunc(vs, func(v Violation) bool { return v.Path == tc.wantPath }) {
				t.Fatalf("no violation with Path %q; violations:%s", tc.wantPath, dump(vs))
			}
		})
	}
}

func TestCheckNotADirectory(t *testing.T) {
	dir := t.TempDir()
	for _, base := range []string{filepath.Join(dir, "absent"), filepath.Join(dir, "file")} {
		writeFile(t, filepath.Join(dir, "file"), []byte("x"))
		for name, vs := range map[string][]Violation{"Check": Check(base), "CheckProfile": CheckProfile(base)} {
			if len(vs) != 1 || (vs[0].Rule != "2" && vs[0].Rule != "profile") {
				t.Errorf("%s(%q) = %v, want one base-directory violation", name, base, vs)
			}
		}
	}
}

// TestNamesReachTheFilesystem guards the test itself: the reference bag really
// contains the tricky names it claims to (newline, CR, '%', unicode, empty).
func TestNamesReachTheFilesystem(t *testing.T) {
	dir := newBag(t)
	files := regularFiles(t, dir, "data")
	if len(files) != len(trickyPayload) {
		t.Fatalf("payload has %d files, want %d: %q", len(files), len(trickyPayload), files)
	}
	m := readFile(t, filepath.Join(dir, "manifest-sha256.txt"))
	for _, want := range []string{"data/new%0Aline.txt", "data/carriage%0Dreturn.bin", "data/100%25 sure.txt", "data/%250A looks encoded.txt"} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	if bytes.Count([]byte(m), []byte("\n")) != len(trickyPayload) {
		t.Errorf("manifest has a raw line break inside an entry:\n%s", m)
	}
}

func TestDecodePath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"data/a", "data/a", true},
		{"data/%0A%0d%25", "data/\n\r%", true},
		{"data/%250A", "data/%0A", true},
		{"data/%", "data/%", false},
		{"data/%0", "data/%0", false},
		{"data/%41", "data/%41", false},
		{"data/%%0A", "data/%\n", false},
	}
	for _, tc := range tests {
		got, ok := decodePath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("decodePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		in         string
		want       []string
		terminated bool
	}{
		{"", nil, true},
		{"a\nb\n", []string{"a", "b"}, true},
		{"a\r\nb\rc\n", []string{"a", "b", "c"}, true},
		{"a\n\n", []string{"a", ""}, true},
		{"a\nb", []string{"a", "b"}, false},
		{"a\r", []string{"a"}, true},
	}
	for _, tc := range tests {
		got, term := splitLines([]byte(tc.in))
		if !slices.Equal(got, tc.want) || term != tc.terminated {
			t.Errorf("splitLines(%q) = %q, %v; want %q, %v", tc.in, got, term, tc.want, tc.terminated)
		}
	}
}
