package bagitcheck

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// requiredLabels are the bag-info.txt elements every eksir bag carries
// (RFC 8493 makes all of them optional).
var requiredLabels = []string{"Source-Organization", "External-Identifier", "Bagging-Date", "Payload-Oxum"}

// signaturesDir holds the seal's signatures; they sign the tag manifest's
// digest and therefore cannot be listed in it.
const signaturesDir = "signatures/"

// CheckProfile checks the extracted bag whose base directory is dir against
// eksir's own bag profile (docs/evidence-format.md), which narrows what
// RFC 8493 allows. Every violation has Rule "profile". It does not repeat the
// RFC checks: call Check as well.
func CheckProfile(dir string) []Violation {
	b := load(dir)
	if b.fatal {
		for i := range b.vs {
			b.vs[i].Rule = ruleProfile
		}
		return b.vs
	}
	checkProfileManifests(b)
	checkProfileManifestLines(b)
	checkProfileBagInfo(b)
	checkProfileTagCoverage(b)
	checkProfileMetadataText(b)
	checkProfileMetadataJSON(b)
	return b.vs
}

// checkProfileManifests: eksir bags always carry manifest-sha256.txt and
// tagmanifest-sha256.txt (RFC 8493 §2.1.3 needs any one payload manifest;
// §2.2.1 makes tag manifests optional).
func checkProfileManifests(b *bag) {
	for _, name := range []string{"manifest-sha256.txt", "tagmanifest-sha256.txt"} {
		if _, ok := b.files[name]; !ok {
			b.add(ruleProfile, name, "missing: eksir bags always carry %s", name)
		}
	}
}

// checkProfileManifestLines: the SHA-256 manifests are written for
// `sha256sum -c` as well as for BagIt validators, so every line is exactly
// "<64 lower-case hex>  <filepath>" (two spaces) ending in a bare LF.
func checkProfileManifestLines(b *bag) {
	for _, name := range []string{"manifest-sha256.txt", "tagmanifest-sha256.txt"} {
		if _, ok := b.files[name]; !ok {
			continue
		}
		raw, err := b.read(name)
		if err != nil {
			b.add(ruleProfile, name, "cannot read: %v", err)
			continue
		}
		if bytes.ContainsRune(raw, '\r') {
			b.add(ruleProfile, name, "contains CR: lines must end in a bare LF")
		}
		lines, _ := splitLines(raw)
		for i, line := range lines {
			if len(line) < 67 || !isLowerHex(line[:64]) || line[64:66] != "  " || line[66] == ' ' || line[66] == '\t' {
				b.add(ruleProfile, name, "line %d: not \"<64 lower-case hex>  <filepath>\" (two spaces): %q", i+1, line)
			}
		}
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// checkProfileBagInfo: bag-info.txt is present and carries each of
// requiredLabels (case-insensitively, as RFC 8493 §2.2.2 compares reserved
// labels) with a non-empty value.
func checkProfileBagInfo(b *bag) {
	if _, ok := b.files[bagInfo]; !ok {
		b.add(ruleProfile, bagInfo, "missing: eksir bags always carry bag-info.txt")
		return
	}
	raw, err := b.read(bagInfo)
	if err != nil {
		b.add(ruleProfile, bagInfo, "cannot read: %v", err)
		return
	}
	elems, _ := parseBagInfo(raw) // malformed lines are reported by Check (§2.2.2)
	for _, want := range requiredLabels {
		found := false
		for _, e := range elems {
			if strings.EqualFold(e.label, want) && strings.TrimSpace(e.value) != "" {
				found = true
				break
			}
		}
		if !found {
			b.add(ruleProfile, bagInfo, "required element %q missing or empty", want)
		}
	}
}

// checkProfileTagCoverage: RFC 8493 §2.2.1 says a tag manifest SHOULD list the
// remaining tag files; eksir makes it a must for tagmanifest-sha256.txt: every
// file outside data/ is listed except tag manifests and signatures/.
func checkProfileTagCoverage(b *bag) {
	const name = "tagmanifest-sha256.txt"
	if _, ok := b.files[name]; !ok {
		return // reported by checkProfileManifests
	}
	m, _ := parseManifest(b, name, true) // its own violations are Check's business
	for _, p := range b.sortedFiles(func(p string) bool {
		return !isPayloadPath(p) && !isTagManifestName(p) && !strings.HasPrefix(p, signaturesDir)
	}) {
		if !m.listed[p] {
			b.add(ruleProfile, p, "tag file not listed in %s", name)
		}
	}
}

// checkProfileMetadataText: every text tag file eksir writes outside data/
// (.txt, .json, .jsonl, .html) is valid UTF-8 without a byte-order mark; the
// RFC only constrains the tag files it defines (§2.3).
func checkProfileMetadataText(b *bag) {
	for _, p := range b.sortedFiles(func(p string) bool {
		if isPayloadPath(p) {
			return false
		}
		for _, ext := range []string{".txt", ".json", ".jsonl", ".html"} {
			if strings.HasSuffix(p, ext) {
				return true
			}
		}
		return false
	}) {
		raw, err := b.read(p)
		if err != nil {
			b.add(ruleProfile, p, "cannot read: %v", err)
			continue
		}
		if bytes.HasPrefix(raw, utf8BOM) {
			b.add(ruleProfile, p, "starts with a byte-order mark (BOM)")
		}
		if !utf8.Valid(raw) {
			b.add(ruleProfile, p, "not valid UTF-8")
		}
	}
}

// checkProfileMetadataJSON: every .json file eksir writes under metadata/
// (items.json, and the incident report, report.json, when the seal carries
// it) is one JSON document, for a lab's tools to read.
func checkProfileMetadataJSON(b *bag) {
	for _, p := range b.sortedFiles(func(p string) bool { return strings.HasPrefix(p, "metadata/") && strings.HasSuffix(p, ".json") }) {
		raw, err := b.read(p)
		if err != nil {
			b.add(ruleProfile, p, "cannot read: %v", err)
			continue
		}
		if !json.Valid(raw) {
			b.add(ruleProfile, p, "not a JSON document")
		}
	}
}
