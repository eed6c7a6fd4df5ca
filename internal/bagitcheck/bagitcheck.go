// Package bagitcheck is an independent RFC 8493 (BagIt 1.0) conformance
// checker for use in tests.
//
// It deliberately shares no code with the evidence writer: it imports only the
// standard library, hashes with crypto/* directly, and re-derives every rule
// from the RFC. Check reports violations of RFC 8493 itself, in a strict
// reading; CheckProfile reports violations of eksir's own bag profile (the
// narrowings of RFC 8493 that docs/evidence-format.md describes, one
// checkProfile function each). A bag we ship must pass both.
//
// Both functions take the bag's base directory (the single top-level folder of
// an extracted bag). The tree is walked with os.Lstat and never follows
// symbolic links; a file is only ever opened if the walk found it as a regular
// file, so manifest paths cannot make the checker read outside the bag.
package bagitcheck

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Violation is one broken rule.
type Violation struct {
	// Rule names the RFC 8493 section whose requirement is broken
	// ("2", "2.1.1", "2.1.2", "2.1.3", "2.2.1", "2.2.2", "2.2.3", "2.3", "2.4",
	// "3"), or "profile" for eksir profile rules (CheckProfile only).
	Rule string
	// Path is the slash-separated path, relative to the bag's base directory,
	// of the file the violation is about ("" for the bag as a whole). It is the
	// decoded name: it may contain newlines, '%', spaces, any unicode.
	Path string
	// Msg explains the violation; line numbers are 1-based.
	Msg string
}

func (v Violation) String() string {
	rule := "RFC 8493 §" + v.Rule
	if v.Rule == ruleProfile {
		rule = "eksir profile"
	}
	return fmt.Sprintf("%s: %q: %s", rule, v.Path, v.Msg)
}

const ruleProfile = "profile"

const (
	bagDeclaration = "bagit.txt"
	bagInfo        = "bag-info.txt"
	fetchFile      = "fetch.txt"
	payloadDir     = "data"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

var (
	normalizedAlg = regexp.MustCompile(`^[a-z0-9]+$`)
	oxumForm      = regexp.MustCompile(`^([0-9]+)\.([0-9]+)$`)
	dateForm      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// algorithms are the bag checksum algorithms this checker can verify
// (RFC 8493 §2.4: SHA-256 and SHA-512 are mandatory to support, MD5 and SHA-1
// for backwards compatibility).
var algorithms = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"sha512": sha512.New,
}

// bag is the result of one Lstat walk of the base directory, plus what the
// rule functions learned along the way.
type bag struct {
	root   string
	files  map[string]int64       // regular files: relative path -> size
	dirs   map[string]bool        // directories below the base directory
	others map[string]fs.FileMode // anything else (symlinks, devices, ...)
	fatal  bool                   // the base directory itself is unusable

	payloadManifests []*manifest
	tagManifests     []*manifest
	sums             map[string]map[string]string // algorithm -> path -> hex digest

	vs []Violation
}

type manifest struct {
	name    string
	alg     string
	newHash func() hash.Hash // nil when the algorithm is not supported
	entries []entry
	listed  map[string]bool
}

type entry struct {
	line int
	path string // decoded
	sum  string // lower-case hex; "" when malformed (not verified)
}

func (b *bag) add(rule, path, format string, args ...any) {
	b.vs = append(b.vs, Violation{Rule: rule, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (b *bag) abs(rel string) string { return filepath.Join(b.root, filepath.FromSlash(rel)) }

func (b *bag) read(rel string) ([]byte, error) { return os.ReadFile(b.abs(rel)) }

// sortedFiles returns the regular files accepted by keep, in byte order.
func (b *bag) sortedFiles(keep func(string) bool) []string {
	var out []string
	for p := range b.files {
		if keep(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func isPayloadPath(p string) bool { return strings.HasPrefix(p, payloadDir+"/") }

func isBaseLevel(p string) bool { return !strings.Contains(p, "/") }

func isPayloadManifestName(p string) bool {
	return isBaseLevel(p) && strings.HasPrefix(p, "manifest-") && strings.HasSuffix(p, ".txt")
}

func isTagManifestName(p string) bool {
	return isBaseLevel(p) && strings.HasPrefix(p, "tagmanifest-") && strings.HasSuffix(p, ".txt")
}

// load walks dir with os.Lstat, recording regular files, directories and
// everything else without following symbolic links.
func load(dir string) *bag {
	b := &bag{
		root:   dir,
		files:  map[string]int64{},
		dirs:   map[string]bool{},
		others: map[string]fs.FileMode{},
		sums:   map[string]map[string]string{},
	}
	fi, err := os.Lstat(dir)
	switch {
	case err != nil:
		b.add("2", "", "cannot stat the bag's base directory: %v", err)
		b.fatal = true
	case !fi.IsDir():
		b.add("2", "", "the bag's base directory is not a directory (%s)", describeMode(fi.Mode()))
		b.fatal = true
	default:
		b.walk("")
	}
	return b
}

func (b *bag) walk(rel string) {
	names, err := readDirNames(b.abs(rel))
	if err != nil {
		b.add("2", rel, "cannot list directory: %v", err)
		return
	}
	for _, name := range names {
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		fi, err := os.Lstat(b.abs(p))
		if err != nil {
			b.add("2", p, "cannot stat: %v", err)
			continue
		}
		switch {
		case fi.Mode().IsRegular():
			b.files[p] = fi.Size()
		case fi.IsDir():
			b.dirs[p] = true
			b.walk(p)
		default:
			b.others[p] = fi.Mode()
		}
	}
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "irregular file, mode " + m.String()
}

// Check checks the extracted bag whose base directory is dir against RFC 8493
// (BagIt 1.0), strictly. It returns nil for a complete and valid bag.
func Check(dir string) []Violation {
	b := load(dir)
	if b.fatal {
		return b.vs
	}
	checkFileTypes(b)        // 2
	checkBagDeclaration(b)   // 2.1.1
	checkPayloadDirectory(b) // 2.1.2
	checkPayloadManifests(b) // 2.1.3, 2.4
	checkTagManifests(b)     // 2.2.1, 2.1.3, 2.4
	checkBagInfo(b)          // 2.2.2
	checkFetch(b)            // 2.2.3
	checkTextTagFiles(b)     // 2.3
	checkComplete(b)         // 3
	checkValid(b)            // 3
	return b.vs
}

// checkFileTypes: RFC 8493 §2 (Structure). A bag is a base directory holding
// tag files, the payload directory and tag directories; payload and tag files
// are files whose octets are checksummed. A symbolic link, device, pipe or
// socket is neither, and a link can point outside the bag, so anything that
// is not a regular file or a directory is reported. Links are never followed.
func checkFileTypes(b *bag) {
	var paths []string
	for p := range b.others {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b.add("2", p, "not a regular file or directory (%s)", describeMode(b.others[p]))
	}
}

// checkBagDeclaration: RFC 8493 §2.1.1 (Bag Declaration: bagit.txt). The file
// must exist, be UTF-8 without a byte-order mark, and consist of exactly the
// two lines "BagIt-Version: 1.0" and "Tag-File-Character-Encoding: UTF-8",
// each terminated by LF, CR or CRLF (§2.3).
func checkBagDeclaration(b *bag) {
	const rule = "2.1.1"
	if _, ok := b.files[bagDeclaration]; !ok {
		if _, other := b.others[bagDeclaration]; !other {
			b.add(rule, bagDeclaration, "missing bag declaration")
		}
		return
	}
	raw, err := b.read(bagDeclaration)
	if err != nil {
		b.add(rule, bagDeclaration, "cannot read: %v", err)
		return
	}
	if bytes.HasPrefix(raw, utf8BOM) {
		b.add(rule, bagDeclaration, "starts with a byte-order mark (BOM)")
		raw = raw[len(utf8BOM):]
	}
	if !utf8.Valid(raw) {
		b.add(rule, bagDeclaration, "not valid UTF-8")
	}
	lines, terminated := splitLines(raw)
	want := []string{"BagIt-Version: 1.0", "Tag-File-Character-Encoding: UTF-8"}
	if len(lines) != len(want) {
		b.add(rule, bagDeclaration, "has %d lines, want exactly 2", len(lines))
	}
	for i := 0; i < len(lines) && i < len(want); i++ {
		if lines[i] != want[i] {
			b.add(rule, bagDeclaration, "line %d is %q, want %q", i+1, lines[i], want[i])
		}
	}
	if !terminated {
		b.add(rule, bagDeclaration, "last line is not terminated by LF, CR or CRLF")
	}
}

// checkPayloadDirectory: RFC 8493 §2.1.2 (Payload Directory: data/). The base
// directory must contain a sub-directory named "data".
func checkPayloadDirectory(b *bag) {
	if b.dirs[payloadDir] {
		return
	}
	_, isFile := b.files[payloadDir]
	_, isOther := b.others[payloadDir]
	if isFile || isOther {
		b.add("2.1.2", payloadDir, "payload directory data/ is not a directory")
		return
	}
	b.add("2.1.2", payloadDir, "missing payload directory data/")
}

// checkPayloadManifests: RFC 8493 §2.1.3 (Payload Manifest) and §2.4 (Bag
// Checksum Algorithms). At least one manifest-<algorithm>.txt; the algorithm
// name normalized (lower-case alphanumerics) and one this checker can verify;
// every line "<hex checksum><linear whitespace><filepath>" with the filepath
// relative to the base directory, inside data/, percent-encoded for CR, LF and
// '%' only, free of "..", "." and empty segments and of a leading '/'; no
// filepath twice (after decoding); no directory listed.
func checkPayloadManifests(b *bag) {
	names := b.sortedFiles(isPayloadManifestName)
	if len(names) == 0 {
		b.add("2.1.3", "", "no payload manifest (manifest-<algorithm>.txt)")
	}
	for _, name := range names {
		m, vs := parseManifest(b, name, false)
		b.vs = append(b.vs, vs...)
		b.payloadManifests = append(b.payloadManifests, m)
	}
}

// checkTagManifests: RFC 8493 §2.2.1 (Tag Manifest). Each
// tagmanifest-<algorithm>.txt has the payload-manifest form (§2.1.3, §2.4),
// must list every payload manifest, must not list payload files (nothing under
// data/) and must not list any tag manifest, itself included.
func checkTagManifests(b *bag) {
	for _, name := range b.sortedFiles(isTagManifestName) {
		m, vs := parseManifest(b, name, true)
		b.vs = append(b.vs, vs...)
		b.tagManifests = append(b.tagManifests, m)
		for _, pm := range b.payloadManifests {
			if !m.listed[pm.name] {
				b.add("2.2.1", name, "does not list payload manifest %q", pm.name)
			}
		}
	}
}

// parseManifest parses a payload manifest (isTag false) or a tag manifest
// (isTag true), returning its usable entries and the violations found in it.
// Lines with unusable filepaths are dropped; a bad percent-encoding is
// reported but decoded leniently so the entry still takes part in the
// completeness and validity checks.
func parseManifest(b *bag, name string, isTag bool) (*manifest, []Violation) {
	var vs []Violation
	bad := func(rule, format string, args ...any) {
		vs = append(vs, Violation{Rule: rule, Path: name, Msg: fmt.Sprintf(format, args...)})
	}
	prefix := "manifest-"
	if isTag {
		prefix = "tagmanifest-"
	}
	m := &manifest{
		name:   name,
		alg:    strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".txt"),
		listed: map[string]bool{},
	}
	digestLen := 0
	switch {
	case !normalizedAlg.MatchString(m.alg):
		bad("2.4", "algorithm name %q is not normalized (lower-case letters and digits only)", m.alg)
	case algorithms[m.alg] == nil:
		bad("2.4", "unsupported checksum algorithm %q: cannot verify (supported: md5, sha1, sha256, sha512)", m.alg)
	default:
		m.newHash = algorithms[m.alg]
		digestLen = m.newHash().Size() * 2
	}

	raw, err := b.read(name)
	if err != nil {
		bad("2.1.3", "cannot read: %v", err)
		return m, vs
	}
	raw = bytes.TrimPrefix(raw, utf8BOM) // reported by §2.3
	lines, _ := splitLines(raw)
	firstLine := map[string]int{}
	for i, line := range lines {
		n := i + 1
		sep := strings.IndexAny(line, " \t")
		if sep <= 0 {
			bad("2.1.3", "line %d: not of the form <checksum> <filepath>: %q", n, line)
			continue
		}
		sum, encoded := line[:sep], strings.TrimLeft(line[sep:], " \t")
		if encoded == "" {
			bad("2.1.3", "line %d: no filepath after the checksum", n)
			continue
		}
		if !isHex(sum) || (digestLen > 0 && len(sum) != digestLen) {
			bad("2.1.3", "line %d: checksum %q is not %d hex digits", n, sum, digestLen)
			sum = ""
		}
		p, ok := decodePath(encoded)
		if !ok {
			bad("2.1.3", "line %d: filepath %q: '%%' may only appear as %%0A, %%0D or %%25", n, encoded)
		}
		if problem := pathProblem(p); problem != "" {
			bad("2.1.3", "line %d: filepath %q: %s", n, p, problem)
			continue
		}
		switch {
		case isTag && (p == payloadDir || isPayloadPath(p)):
			bad("2.2.1", "line %d: tag manifest lists payload path %q", n, p)
			continue
		case isTag && isTagManifestName(p):
			bad("2.2.1", "line %d: tag manifest lists tag manifest %q", n, p)
			continue
		case !isTag && !isPayloadPath(p):
			bad("2.1.3", "line %d: filepath %q is outside the payload directory data/", n, p)
			continue
		}
		if first, dup := firstLine[p]; dup {
			bad("2.1.3", "line %d: filepath %q already listed on line %d", n, p, first)
			continue
		}
		firstLine[p] = n
		if b.dirs[p] {
			bad("2.1.3", "line %d: filepath %q is a directory; manifests must not list directories", n, p)
			continue
		}
		m.listed[p] = true
		m.entries = append(m.entries, entry{line: n, path: p, sum: strings.ToLower(sum)})
	}
	return m, vs
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

// decodePath undoes the RFC 8493 §2.1.3 percent-encoding, in which exactly
// CR (%0D), LF (%0A) and '%' (%25) are encoded (hex digits in either case).
// Any other '%' is a violation (ok false); it is kept literally.
func decodePath(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	ok := true
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			sb.WriteByte(s[i])
			continue
		}
		if i+2 < len(s) {
			switch strings.ToUpper(s[i+1 : i+3]) {
			case "0A":
				sb.WriteByte('\n')
				i += 2
				continue
			case "0D":
				sb.WriteByte('\r')
				i += 2
				continue
			case "25":
				sb.WriteByte('%')
				i += 2
				continue
			}
		}
		ok = false
		sb.WriteByte('%')
	}
	return sb.String(), ok
}

// pathProblem says what is wrong with a decoded manifest filepath, or "".
// Filepaths are relative to the base directory with '/' as separator
// (§2.1.3); a leading '/', "." / ".." / empty segments or a drive letter could
// resolve outside the bag or to a second spelling of one file (§5.1).
func pathProblem(p string) string {
	switch {
	case p == "":
		return "empty filepath"
	case strings.HasPrefix(p, "/"):
		return "absolute path"
	case strings.ContainsRune(p, 0):
		return "contains a NUL byte"
	case len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z'):
		return "drive-letter path"
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return "empty path segment"
		case ".":
			return `"." path segment`
		case "..":
			return `".." path segment`
		}
	}
	return ""
}

// checkBagInfo: RFC 8493 §2.2.2 (Bag Metadata: bag-info.txt), if present.
// Every line is "Label: Value" (label, colon, one space or tab, value) or a
// continuation line starting with a space or tab; labels are non-empty, and
// neither start nor end with whitespace (nor contain a colon, by
// construction). Payload-Oxum appears at most once, as
// "<OctetCount>.<StreamCount>", and matches the payload; Bagging-Date is a
// real date written YYYY-MM-DD.
func checkBagInfo(b *bag) {
	const rule = "2.2.2"
	if _, ok := b.files[bagInfo]; !ok {
		return
	}
	raw, err := b.read(bagInfo)
	if err != nil {
		b.add(rule, bagInfo, "cannot read: %v", err)
		return
	}
	elems, problems := parseBagInfo(raw)
	for _, p := range problems {
		b.add(rule, bagInfo, "%s", p)
	}
	var octets, streams int64
	for _, p := range b.sortedFiles(isPayloadPath) {
		octets += b.files[p]
		streams++
	}
	oxums := 0
	for _, e := range elems {
		switch {
		case strings.EqualFold(e.label, "Payload-Oxum"):
			oxums++
			if oxums == 2 {
				b.add(rule, bagInfo, "line %d: Payload-Oxum appears more than once", e.line)
			}
			sm := oxumForm.FindStringSubmatch(e.value)
			if sm == nil {
				b.add(rule, bagInfo, "line %d: Payload-Oxum %q is not <OctetCount>.<StreamCount>", e.line, e.value)
				continue
			}
			o, err1 := strconv.ParseInt(sm[1], 10, 64)
			s, err2 := strconv.ParseInt(sm[2], 10, 64)
			if err1 != nil || err2 != nil || o != octets || s != streams {
				b.add(rule, bagInfo, "line %d: Payload-Oxum %q does not match the payload (%d.%d)", e.line, e.value, octets, streams)
			}
		case strings.EqualFold(e.label, "Bagging-Date"):
			if !validDate(e.value) {
				b.add(rule, bagInfo, "line %d: Bagging-Date %q is not a date written YYYY-MM-DD", e.line, e.value)
			}
		}
	}
}

func validDate(v string) bool {
	if !dateForm.MatchString(v) {
		return false
	}
	_, err := time.Parse(time.DateOnly, v)
	return err == nil
}

type element struct {
	line         int
	label, value string
}

// parseBagInfo splits bag-info.txt into metadata elements (continuation lines
// joined with a single space, their leading padding dropped) and describes
// each malformed line.
func parseBagInfo(raw []byte) ([]element, []string) {
	var elems []element
	var problems []string
	lines, _ := splitLines(bytes.TrimPrefix(raw, utf8BOM))
	for i, line := range lines {
		n := i + 1
		if line == "" {
			problems = append(problems, fmt.Sprintf("line %d: empty line", n))
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(elems) == 0 {
				problems = append(problems, fmt.Sprintf("line %d: continuation line before any element", n))
				continue
			}
			last := &elems[len(elems)-1]
			last.value += " " + strings.TrimLeft(line, " \t")
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			problems = append(problems, fmt.Sprintf("line %d: no colon: not \"Label: Value\": %q", n, line))
			continue
		}
		label, rest := line[:colon], line[colon+1:]
		switch {
		case label == "":
			problems = append(problems, fmt.Sprintf("line %d: empty label", n))
			continue
		case strings.TrimRight(label, " \t") != label:
			problems = append(problems, fmt.Sprintf("line %d: label %q ends with whitespace", n, label))
			continue
		case rest == "" || (rest[0] != ' ' && rest[0] != '\t'):
			problems = append(problems, fmt.Sprintf("line %d: label %q: colon not followed by one space or tab", n, label))
			continue
		}
		elems = append(elems, element{line: n, label: label, value: rest[1:]})
	}
	return elems, problems
}

// checkFetch: RFC 8493 §2.2.3 (Fetch File: fetch.txt). A bag with a fetch
// file is only complete once the listed files have been fetched, which this
// checker never does (and eksir bags never carry one), so its presence is
// reported.
func checkFetch(b *bag) {
	if _, ok := b.files[fetchFile]; ok {
		b.add("2.2.3", fetchFile, "fetch.txt present: the bag is incomplete until fetched, and eksir bags never carry one")
	}
}

// checkTextTagFiles: RFC 8493 §2.3 (Text Tag File Format). The tag files the
// RFC defines (payload and tag manifests, bag-info.txt, fetch.txt; bagit.txt
// is covered by §2.1.1) are UTF-8 as declared, carry no byte-order mark, and
// terminate every line, the last one included, with LF, CR or CRLF.
func checkTextTagFiles(b *bag) {
	const rule = "2.3"
	defined := b.sortedFiles(func(p string) bool {
		return isPayloadManifestName(p) || isTagManifestName(p) || p == bagInfo || p == fetchFile
	})
	for _, p := range defined {
		raw, err := b.read(p)
		if err != nil {
			b.add(rule, p, "cannot read: %v", err)
			continue
		}
		if bytes.HasPrefix(raw, utf8BOM) {
			b.add(rule, p, "starts with a byte-order mark (BOM)")
		}
		if !utf8.Valid(raw) {
			b.add(rule, p, "not valid UTF-8")
		}
		if _, terminated := splitLines(raw); !terminated {
			b.add(rule, p, "last line is not terminated by LF, CR or CRLF")
		}
	}
}

// checkComplete: RFC 8493 §3 (Complete and Valid Bags), completeness. Every
// file listed in every payload and tag manifest is present, and every payload
// file is listed in every payload manifest. (Entries naming a non-regular file
// were already reported under §2 and are not reported again.)
func checkComplete(b *bag) {
	for _, m := range append(append([]*manifest{}, b.payloadManifests...), b.tagManifests...) {
		for _, e := range m.entries {
			if _, ok := b.files[e.path]; ok {
				continue
			}
			if _, ok := b.others[e.path]; ok {
				continue
			}
			b.add("3", e.path, "listed in %s (line %d) but not present", m.name, e.line)
		}
	}
	for _, p := range b.sortedFiles(isPayloadPath) {
		for _, m := range b.payloadManifests {
			if !m.listed[p] {
				b.add("3", p, "payload file not listed in %s", m.name)
			}
		}
	}
}

// checkValid: RFC 8493 §3 (Complete and Valid Bags), validity. Every checksum
// in every payload and tag manifest matches the file's contents.
func checkValid(b *bag) {
	for _, m := range append(append([]*manifest{}, b.payloadManifests...), b.tagManifests...) {
		if m.newHash == nil {
			continue
		}
		for _, e := range m.entries {
			if e.sum == "" {
				continue
			}
			if _, ok := b.files[e.path]; !ok {
				continue
			}
			got, err := b.digest(m.alg, m.newHash, e.path)
			if err != nil {
				b.add("3", e.path, "cannot hash for %s: %v", m.name, err)
				continue
			}
			if got != e.sum {
				b.add("3", e.path, "%s mismatch: %s (line %d) says %s, file has %s", m.alg, m.name, e.line, e.sum, got)
			}
		}
	}
}

// digest hashes one regular file found by the walk, once per algorithm.
func (b *bag) digest(alg string, newHash func() hash.Hash, rel string) (string, error) {
	if s, ok := b.sums[alg][rel]; ok {
		return s, nil
	}
	f, err := os.Open(b.abs(rel))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := newHash()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	s := hex.EncodeToString(h.Sum(nil))
	if b.sums[alg] == nil {
		b.sums[alg] = map[string]string{}
	}
	b.sums[alg][rel] = s
	return s, nil
}

// splitLines splits text on LF, CR or CRLF (RFC 8493 §2.3). terminated is
// false when the last line has no line terminator. An empty input has no
// lines and counts as terminated.
func splitLines(raw []byte) (lines []string, terminated bool) {
	start := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\n':
			lines = append(lines, string(raw[start:i]))
			start = i + 1
		case '\r':
			lines = append(lines, string(raw[start:i]))
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(raw) {
		return append(lines, string(raw[start:])), false
	}
	return lines, true
}
