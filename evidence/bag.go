package evidence

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// BagIt 1.0 (RFC 8493) names and texts.
const (
	bagitTxt       = "bagit.txt"
	bagInfoTxt     = "bag-info.txt"
	manifestTxt    = "manifest-sha256.txt"
	tagManifestTxt = "tagmanifest-sha256.txt"
	itemsJSON      = "metadata/items.json"
	custodyJSONL   = "metadata/custody.jsonl"
	sealDSSE       = "signatures/seal.dsse.json"
	sealPub        = "signatures/seal.pub"
	reportHTML     = "metadata/report.html"
	reportJSON     = "metadata/report.json"
	bagitContent   = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
)

// encodeBagPath percent-encodes CR, LF and % as RFC 8493 §2.1.3 requires.
func encodeBagPath(p string) string {
	if !strings.ContainsAny(p, "%\r\n") {
		return p
	}
	r := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	return r.Replace(p)
}

// decodeBagPath reverses encodeBagPath, rejecting any other escape.
func decodeBagPath(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", fmt.Errorf("bad percent-encoding in %q", p)
		}
		switch strings.ToUpper(p[i+1 : i+3]) {
		case "25":
			b.WriteByte('%')
		case "0D":
			b.WriteByte('\r')
		case "0A":
			b.WriteByte('\n')
		default:
			return "", fmt.Errorf("bad percent-encoding in %q", p)
		}
		i += 2
	}
	return b.String(), nil
}

// manifestLine is one line of a manifest: sha256 and bag-relative path.
type manifestLine struct{ sum, path string }

// formatManifest renders lines sorted by path.
func formatManifest(lines []manifestLine) []byte {
	sort.Slice(lines, func(i, j int) bool { return lines[i].path < lines[j].path })
	var b strings.Builder
	b.Grow(len(lines) * 100)
	for _, l := range lines {
		b.WriteString(l.sum)
		b.WriteString("  ")
		b.WriteString(encodeBagPath(l.path))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// bagInfo holds the bag-info.txt labels eksir writes, in this order.
type bagInfo struct {
	SourceOrganization string
	Incident           string
	Examiner           string
	Tool               string
	SealTime           time.Time
	PayloadBytes       int64
	PayloadFiles       int
	CustodyHead        string
	CustodyRecords     int64
}

func (b bagInfo) format() []byte {
	field := func(sb *strings.Builder, label, value string) {
		// A value never spans lines: fold any newline into a space.
		value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
		fmt.Fprintf(sb, "%s: %s\n", label, value)
	}
	var sb strings.Builder
	field(&sb, "Source-Organization", b.SourceOrganization)
	field(&sb, "External-Identifier", b.Incident)
	field(&sb, "Bagging-Date", b.SealTime.UTC().Format("2006-01-02"))
	field(&sb, "Payload-Oxum", fmt.Sprintf("%d.%d", b.PayloadBytes, b.PayloadFiles))
	field(&sb, "Case-Number", b.Incident)
	field(&sb, "Examiner", b.Examiner)
	field(&sb, "Acquisition-Tool", b.Tool)
	field(&sb, "Bag-Software-Agent", b.Tool)
	field(&sb, "Sealed-At", FormatTime(b.SealTime))
	field(&sb, "Custody-Log-Head", b.CustodyHead)
	field(&sb, "Custody-Log-Records", fmt.Sprint(b.CustodyRecords))
	return []byte(sb.String())
}

// parseBagInfo reads labels; repeated labels keep the first value.
func parseBagInfo(b []byte) (map[string]string, error) {
	out := map[string]string{}
	var last string
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation without a label", n+1)
			}
			out[last] += " " + strings.TrimSpace(line)
			continue
		}
		label, value, ok := strings.Cut(line, ":")
		if !ok || label == "" {
			return nil, fmt.Errorf("line %d: not \"Label: value\"", n+1)
		}
		last = label
		if _, seen := out[label]; !seen {
			out[label] = strings.TrimSpace(value)
		}
	}
	return out, nil
}
