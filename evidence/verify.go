package evidence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"golang.org/x/sync/errgroup"

	"github.com/eksir/eksir/internal/fastio"
)

// Check statuses.
const (
	StatusOK   = "ok"
	StatusFail = "fail"
	StatusWarn = "warn"
)

// Check is one line of a verification report.
type Check struct {
	Name   string `json:"check"`
	Status string `json:"status"`
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Report is the result of Verify.
type Report struct {
	Target  string      `json:"target"`
	Bag     string      `json:"bag"`
	OK      bool        `json:"ok"`
	Checks  []Check     `json:"checks"`
	Custody ChainResult `json:"custody"`
	// SignerKeyID is the key that signed the seal; Pinned says whether it was
	// one of the keys the caller trusts rather than the key inside the bag.
	SignerKeyID string `json:"signer_key_id,omitempty"`
	Pinned      bool   `json:"pinned"`
	// SealedHead is the custody head recorded at sealing, where transfers continue.
	SealedHead chainHead `json:"-"`
	// Statement is the verified seal statement.
	Statement *Statement `json:"statement,omitempty"`
}

func (r *Report) add(name, status, p, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Path: p, Detail: detail})
	if status == StatusFail {
		r.OK = false
	}
}

// Failed returns the failing checks.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			out = append(out, c)
		}
	}
	return out
}

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Keys are the trusted public keys. When empty, the key stored in the bag
	// is used and the report says the signer is not pinned.
	Keys KeyRing
	// CustodyKeys are trusted for custody records only (for example the key
	// of the person recording a hand-over), not for the seal.
	CustodyKeys KeyRing
	// MaxTagBytes bounds the tag files held in memory; 1 GiB when 0.
	MaxTagBytes int64
}

// bagContent is what one pass over a bag yields: the hash of every payload
// file and the bytes of every tag file. Payload bytes are never kept.
type bagContent struct {
	top      string
	payload  map[string]fileSum
	tags     map[string][]byte
	tagBytes int64
	report   *Report
}

type fileSum struct {
	size int64
	sum  string
}

// Verify checks an archive (.tar or .tar.zst, with its .sha256 sidecar and
// .custody.jsonl when present) or an extracted bag folder: structure,
// completeness, every checksum, the tag manifest, the signature and the
// custody chain. It reads the archive once, streaming, without extracting.
// A failing check makes Report.OK false; the error is for I/O problems.
func Verify(ctx context.Context, target string, opts VerifyOptions) (*Report, error) {
	if opts.MaxTagBytes == 0 {
		opts.MaxTagBytes = 1 << 30
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, invalidErr(err, "give a sealed archive (.tar.zst or .tar) or an extracted bag folder", "cannot verify %s", target)
	}
	rep := &Report{Target: target, OK: true}
	bc := &bagContent{payload: map[string]fileSum{}, tags: map[string][]byte{}, report: rep}
	if fi.IsDir() {
		err = bc.readFolder(ctx, target, opts)
	} else {
		err = bc.readArchive(ctx, target, opts)
	}
	if err != nil {
		return nil, err
	}
	rep.Bag = bc.top
	bc.checkBag(ctx, opts)
	if !fi.IsDir() {
		bc.checkTransfers(target+".custody.jsonl", opts)
	}
	return rep, nil
}

// readArchive makes the single streaming pass: other goroutines read the
// archive and hash it for the sidecar check (fastio.Reader) while this one
// decompresses, walks the tar and hashes each payload file.
func (bc *bagContent) readArchive(ctx context.Context, archive string, opts VerifyOptions) error {
	f, err := os.Open(archive)
	if err != nil {
		return invalidErr(err, "check the path and permissions", "cannot open %s", archive)
	}
	defer f.Close()
	archiveSum := NewHash()
	blocks, err := fastio.NewReader(f, archiveSum)
	if err != nil {
		return invalidErr(err, "check the path and permissions", "cannot read %s", archive)
	}
	defer blocks.Close()
	br := bufio.NewReaderSize(blocks, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(4); bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			bc.report.add("archive", StatusFail, "", "not a readable tar stream: "+err.Error())
			break
		}
		if err := bc.entry(h.Name, h.Typeflag, h.Size, tr, buf, opts); err != nil {
			return err
		}
	}
	// Hash the rest (tar padding, trailing bytes) so the sidecar check covers every byte.
	if _, err := io.Copy(io.Discard, br); err != nil {
		bc.report.add("archive", StatusFail, "", "read error: "+err.Error())
		return nil
	}
	// The reader has fed the hash every byte once it reports the end.
	if _, err := io.Copy(io.Discard, blocks); err != nil {
		bc.report.add("archive", StatusFail, "", "read error: "+err.Error())
		return nil
	}
	bc.checkSidecar(archive, hexSum(archiveSum))
	return nil
}

// entry records one tar entry after refusing anything a bag must not hold.
func (bc *bagContent) entry(name string, typ byte, size int64, r io.Reader, buf []byte, opts VerifyOptions) error {
	clean := path.Clean(name)
	top, rel, _ := strings.Cut(clean, "/")
	switch {
	case path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains("/"+name+"/", "/../"):
		bc.report.add("structure", StatusFail, name, "path escapes the bag; refused")
		return nil
	case typ != tar.TypeReg && typ != tar.TypeDir:
		bc.report.add("structure", StatusFail, name, fmt.Sprintf("entry type %q is a link, device or other special file; refused", typ))
		return nil
	case bc.top == "":
		bc.top = top
	case top != bc.top:
		bc.report.add("structure", StatusFail, name, "second top-level folder; a bag archive has exactly one")
		return nil
	}
	if typ == tar.TypeDir || rel == "" {
		return nil
	}
	if _, dup := bc.payload[rel]; dup {
		bc.report.add("structure", StatusFail, rel, "appears twice in the archive")
		return nil
	}
	if _, dup := bc.tags[rel]; dup {
		bc.report.add("structure", StatusFail, rel, "appears twice in the archive")
		return nil
	}
	if strings.HasPrefix(rel, "data/") {
		h := NewHash()
		n, err := io.CopyBuffer(h, r, buf)
		if err != nil {
			bc.report.add("archive", StatusFail, rel, "read error: "+err.Error())
			return nil
		}
		bc.payload[rel] = fileSum{n, hexSum(h)}
		return nil
	}
	if bc.tagBytes+size > opts.MaxTagBytes {
		bc.report.add("structure", StatusFail, rel, "tag files exceed the size a bag's metadata can have")
		return nil
	}
	// Trust the header's size only so far: a hostile archive could claim a
	// huge tag file to make us allocate before reading anything.
	var tb bytes.Buffer
	tb.Grow(int(min(size, 64<<20)))
	if _, err := io.CopyN(&tb, r, size); err != nil {
		bc.report.add("archive", StatusFail, rel, "read error: "+err.Error())
		return nil
	}
	b := tb.Bytes()
	bc.tagBytes += int64(len(b))
	bc.tags[rel] = b
	return nil
}

func (bc *bagContent) checkSidecar(archive, sum string) {
	b, err := os.ReadFile(archive + ".sha256")
	if err != nil {
		bc.report.add("archive-sha256", StatusWarn, filepath.Base(archive)+".sha256", "no sidecar hash file; cannot compare the archive's hash")
		return
	}
	want, name, _ := strings.Cut(strings.TrimSpace(string(b)), "  ")
	switch {
	case name != filepath.Base(archive) && strings.TrimPrefix(name, "*") != filepath.Base(archive):
		bc.report.add("archive-sha256", StatusFail, filepath.Base(archive)+".sha256", fmt.Sprintf("names %q, not this archive", name))
	case want != sum:
		bc.report.add("archive-sha256", StatusFail, filepath.Base(archive), fmt.Sprintf("sha256 %s, sidecar says %s", sum, want))
	default:
		bc.report.add("archive-sha256", StatusOK, filepath.Base(archive), sum)
	}
}

// readFolder walks an extracted bag, hashing payload files in parallel.
func (bc *bagContent) readFolder(ctx context.Context, dir string, opts VerifyOptions) error {
	bc.top = filepath.Base(filepath.Clean(dir))
	type job struct{ rel, p string }
	var jobs []job
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return invalidErr(err, "check the folder's permissions", "cannot read %s", p)
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			bc.report.add("structure", StatusFail, rel, "a link, device or other special file; refused")
			return nil
		case strings.HasPrefix(rel, "data/"):
			jobs = append(jobs, job{rel, p})
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return invalidErr(err, "check the folder's permissions", "cannot read %s", p)
		}
		bc.tags[rel] = b
		return nil
	})
	if err != nil {
		return err
	}
	sums := make([]fileSum, len(jobs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			f, err := os.Open(j.p)
			if err != nil {
				return invalidErr(err, "check the folder's permissions", "cannot read %s", j.rel)
			}
			defer f.Close()
			h := NewHash()
			n, err := io.Copy(h, f)
			if err != nil {
				return invalidErr(err, "check the folder's permissions", "cannot read %s", j.rel)
			}
			sums[i] = fileSum{n, hexSum(h)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, j := range jobs {
		bc.payload[j.rel] = sums[i]
	}
	return nil
}

// parseManifest reads "<hex>  <path>" lines and decodes paths.
func parseManifest(name string, b []byte, rep *Report) map[string]string {
	out := map[string]string{}
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		sum, p, ok := strings.Cut(line, " ")
		p = strings.TrimLeft(p, " \t")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 64 || p == "" {
			rep.add("manifest-format", StatusFail, name, fmt.Sprintf("line %d is not \"<sha256>  <path>\"", n+1))
			continue
		}
		dec, err := decodeBagPath(p)
		if err != nil {
			rep.add("manifest-format", StatusFail, name, fmt.Sprintf("line %d: %v", n+1, err))
			continue
		}
		if path.Clean(dec) != dec || path.IsAbs(dec) || strings.HasPrefix(dec, "../") {
			rep.add("manifest-format", StatusFail, name, fmt.Sprintf("line %d: path %q is not a clean relative path", n+1, dec))
			continue
		}
		if _, dup := out[dec]; dup {
			rep.add("manifest-format", StatusFail, name, fmt.Sprintf("line %d: %s listed twice", n+1, dec))
			continue
		}
		out[dec] = strings.ToLower(sum)
	}
	return out
}

// checkBag applies every rule to what the pass collected.
func (bc *bagContent) checkBag(ctx context.Context, opts VerifyOptions) {
	rep := bc.report
	if string(bc.tags[bagitTxt]) == bagitContent {
		rep.add("bagit.txt", StatusOK, bagitTxt, "BagIt 1.0, UTF-8")
	} else {
		rep.add("bagit.txt", StatusFail, bagitTxt, "missing or not exactly the BagIt 1.0 declaration")
	}

	// Payload: completeness and every checksum.
	manifestBytes, ok := bc.tags[manifestTxt]
	if !ok {
		rep.add("payload-manifest", StatusFail, manifestTxt, "missing")
	}
	manifest := parseManifest(manifestTxt, manifestBytes, rep)
	bad := 0
	for _, p := range slices.Sorted(maps.Keys(manifest)) {
		got, ok := bc.payload[p]
		switch {
		case !strings.HasPrefix(p, "data/"):
			rep.add("payload-manifest", StatusFail, p, "listed in the payload manifest but not under data/")
			bad++
		case !ok:
			rep.add("completeness", StatusFail, p, "listed in the manifest but missing from the bag")
			bad++
		case got.sum != manifest[p]:
			rep.add("payload-checksum", StatusFail, p, fmt.Sprintf("sha256 %s, manifest says %s", got.sum, manifest[p]))
			bad++
		}
	}
	var bytesTotal int64
	for _, p := range slices.Sorted(maps.Keys(bc.payload)) {
		bytesTotal += bc.payload[p].size
		if _, ok := manifest[p]; !ok {
			rep.add("completeness", StatusFail, p, "in the payload but not in the manifest (added after sealing?)")
			bad++
		}
	}
	if bad == 0 && manifestBytes != nil {
		rep.add("payload-checksum", StatusOK, "data/", fmt.Sprintf("%d files, every sha256 matches", len(bc.payload)))
	}

	info, err := parseBagInfo(bc.tags[bagInfoTxt])
	if _, ok := bc.tags[bagInfoTxt]; !ok || err != nil {
		rep.add("bag-info", StatusFail, bagInfoTxt, fmt.Sprintf("missing or malformed: %v", err))
		info = map[string]string{}
	} else {
		missing := []string{}
		for _, l := range []string{"Source-Organization", "External-Identifier", "Bagging-Date", "Payload-Oxum", "Custody-Log-Head", "Custody-Log-Records"} {
			if _, ok := info[l]; !ok {
				missing = append(missing, l)
			}
		}
		if len(missing) > 0 {
			rep.add("bag-info", StatusFail, bagInfoTxt, "missing labels: "+strings.Join(missing, ", "))
		} else {
			rep.add("bag-info", StatusOK, bagInfoTxt, "required labels present")
		}
	}
	if oxum := fmt.Sprintf("%d.%d", bytesTotal, len(bc.payload)); info["Payload-Oxum"] != oxum {
		rep.add("payload-oxum", StatusFail, bagInfoTxt, fmt.Sprintf("Payload-Oxum %q, payload is %s", info["Payload-Oxum"], oxum))
	} else {
		rep.add("payload-oxum", StatusOK, bagInfoTxt, oxum)
	}

	// Tag manifest: every tag file listed and matching.
	tagBytes, ok := bc.tags[tagManifestTxt]
	if !ok {
		rep.add("tag-manifest", StatusFail, tagManifestTxt, "missing")
	}
	tagManifest := parseManifest(tagManifestTxt, tagBytes, rep)
	bad = 0
	for _, p := range slices.Sorted(maps.Keys(tagManifest)) {
		b, ok := bc.tags[p]
		switch {
		case !ok:
			rep.add("tag-manifest", StatusFail, p, "listed in the tag manifest but missing")
			bad++
		case SumHex(b) != tagManifest[p]:
			rep.add("tag-manifest", StatusFail, p, fmt.Sprintf("sha256 %s, tag manifest says %s", SumHex(b), tagManifest[p]))
			bad++
		}
	}
	for _, p := range slices.Sorted(maps.Keys(bc.tags)) {
		if _, ok := tagManifest[p]; !ok && !strings.HasPrefix(p, "tagmanifest-") && !strings.HasPrefix(p, "signatures/") {
			rep.add("tag-manifest", StatusFail, p, "tag file not in the tag manifest (added after sealing?)")
			bad++
		}
	}
	for _, p := range []string{bagitTxt, bagInfoTxt, manifestTxt, custodyJSONL, itemsJSON} {
		if _, ok := tagManifest[p]; !ok && tagBytes != nil {
			rep.add("tag-manifest", StatusFail, p, "not covered by the tag manifest")
			bad++
		}
	}
	if bad == 0 && tagBytes != nil {
		rep.add("tag-manifest", StatusOK, tagManifestTxt, fmt.Sprintf("%d tag files match", len(tagManifest)))
	}

	keys := bc.checkSignature(ctx, tagBytes, manifestBytes, info, opts)
	for id, k := range opts.CustodyKeys {
		keys[id] = k
	}
	bc.checkCustody(keys, manifest, manifestBytes, info)
}

// checkSignature verifies the DSSE envelope and returns the keys to trust
// for the custody chain.
func (bc *bagContent) checkSignature(ctx context.Context, tagManifest, manifest []byte, info map[string]string, opts VerifyOptions) KeyRing {
	rep := bc.report
	keys := KeyRing{}
	for id, k := range opts.Keys {
		keys[id] = k
	}
	rep.Pinned = len(keys) > 0
	if !rep.Pinned {
		pub, err := ParsePublicKey(bc.tags[sealPub])
		if err != nil {
			rep.add("signature", StatusFail, sealPub, "no trusted key given and no usable key in the bag: "+err.Error())
			return keys
		}
		keys.Add(pub)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(bc.tags[sealDSSE], &env); err != nil || len(env.Signatures) == 0 {
		rep.add("signature", StatusFail, sealDSSE, "missing or not a DSSE envelope")
		return keys
	}
	var verifiers []dsse.Verifier
	for _, id := range keys.IDs() {
		verifiers = append(verifiers, keyVerifier{keys[id]})
	}
	ev, err := dsse.NewEnvelopeVerifier(verifiers...)
	if err != nil {
		rep.add("signature", StatusFail, sealDSSE, err.Error())
		return keys
	}
	accepted, payload, err := ev.VerifyAndDecode(ctx, &env)
	if err != nil || len(accepted) == 0 {
		rep.add("signature", StatusFail, sealDSSE, fmt.Sprintf("no signature verifies with the trusted keys %v", keys.IDs()))
		return keys
	}
	rep.SignerKeyID = accepted[0].KeyID
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil || env.PayloadType != InTotoPayloadType || st.Type != StatementType || st.PredicateType != SealPredicateType {
		rep.add("signature", StatusFail, sealDSSE, "signed payload is not an eksir seal statement")
		return keys
	}
	rep.Statement = &st
	p := st.Predicate
	switch {
	case len(st.Subject) != 1 || st.Subject[0].Name != tagManifestTxt || st.Subject[0].Digest["sha256"] != SumHex(tagManifest):
		rep.add("signature", StatusFail, tagManifestTxt, "the signed digest of the tag manifest does not match")
	case p.CustodyLogHead != info["Custody-Log-Head"] || strconv.FormatInt(p.CustodyLogRecords, 10) != info["Custody-Log-Records"]:
		rep.add("signature", StatusFail, bagInfoTxt, "custody head or count differs from the signed statement")
	case p.ManifestSHA256 != SumHex(manifest) || p.PayloadOxum != info["Payload-Oxum"] || p.Incident != info["External-Identifier"]:
		rep.add("signature", StatusFail, sealDSSE, "signed statement disagrees with the bag")
	case !isKey(bc.tags[sealPub], rep.SignerKeyID):
		// seal.pub is outside the tag manifest; a lab may check the
		// signature with it, so it must be the key that signed.
		rep.add("signature", StatusFail, sealPub, "missing, malformed or not the key that signed the seal ("+rep.SignerKeyID+")")
	default:
		detail := "signed by key " + rep.SignerKeyID
		if !rep.Pinned {
			rep.add("signer-pinned", StatusWarn, sealPub, "no --pubkey given: checked against the key inside the bag; compare "+rep.SignerKeyID+" with the examiner's published key")
		}
		rep.add("signature", StatusOK, sealDSSE, detail)
	}
	rep.SealedHead = chainHead{Seq: p.CustodyLogRecords, Hash: p.CustodyLogHead}
	return keys
}

// isKey reports whether pemKey is the PEM public key with key ID id.
func isKey(pemKey []byte, id string) bool {
	pub, err := ParsePublicKey(pemKey)
	return err == nil && KeyID(pub) == id
}

// checkCustody replays metadata/custody.jsonl and ties it to the manifest.
func (bc *bagContent) checkCustody(keys KeyRing, manifest map[string]string, manifestBytes []byte, info map[string]string) {
	rep := bc.report
	data, ok := bc.tags[custodyJSONL]
	if !ok {
		rep.add("custody-chain", StatusFail, custodyJSONL, "missing")
		return
	}
	_ = verifyChain(bytes.NewReader(data), custodyJSONL, emptyHead(), keys, &rep.Custody)
	for _, rc := range rep.Custody.Records {
		if !rc.OK {
			rep.add("custody-chain", StatusFail, custodyJSONL, fmt.Sprintf("record %d: %s", rc.Record.Seq, rc.Problem))
			return
		}
	}
	head := rep.Custody.Head
	if head.Hash != info["Custody-Log-Head"] || strconv.FormatInt(head.Seq, 10) != info["Custody-Log-Records"] {
		rep.add("custody-chain", StatusFail, custodyJSONL, fmt.Sprintf("chain ends at record %d (%s) but bag-info records %s (%s): records were cut off or added",
			head.Seq, head.Hash, info["Custody-Log-Records"], info["Custody-Log-Head"]))
		rep.Custody.OK = false
		return
	}
	// Every acquisition in the chain must match what was sealed, and the
	// last seal must name this manifest.
	var lastSeal *Record
	for i, rc := range rep.Custody.Records {
		r := rc.Record
		if r.Action == ActionAcquired {
			for p, sum := range r.Items {
				if manifest[p] != sum {
					rep.add("custody-items", StatusFail, p, fmt.Sprintf("custody record %d says sha256 %s; the bag has %s", r.Seq, sum, manifest[p]))
					rep.Custody.OK = false
				}
			}
		}
		if r.Action == ActionSealed {
			lastSeal = &rep.Custody.Records[i].Record
		}
	}
	if lastSeal == nil || lastSeal.Items[manifestTxt] != SumHex(manifestBytes) {
		rep.add("custody-chain", StatusFail, custodyJSONL, "no sealed record naming this payload manifest")
		rep.Custody.OK = false
		return
	}
	if rep.Custody.OK {
		rep.add("custody-chain", StatusOK, custodyJSONL, fmt.Sprintf("%d records, signatures and links verify", head.Seq))
	}
}

// checkTransfers replays the hand-overs recorded after sealing.
func (bc *bagContent) checkTransfers(file string, opts VerifyOptions) {
	rep := bc.report
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		rep.add("custody-after-seal", StatusFail, filepath.Base(file), err.Error())
		return
	}
	defer f.Close()
	keys := KeyRing{}
	for id, k := range opts.Keys {
		keys[id] = k
	}
	if len(keys) == 0 {
		if pub, err := ParsePublicKey(bc.tags[sealPub]); err == nil {
			keys.Add(pub)
		}
	}
	for id, k := range opts.CustodyKeys {
		keys[id] = k
	}
	var res ChainResult
	n := len(rep.Custody.Records)
	if err := verifyChain(f, filepath.Base(file), rep.SealedHead, keys, &res); err != nil {
		rep.add("custody-after-seal", StatusFail, filepath.Base(file), err.Error())
		return
	}
	rep.Custody.Records = append(rep.Custody.Records, res.Records...)
	rep.Custody.Head = res.Head
	for _, rc := range res.Records {
		if !rc.OK {
			rep.Custody.OK = false
			rep.add("custody-after-seal", StatusFail, filepath.Base(file), fmt.Sprintf("record %d: %s", rc.Record.Seq, rc.Problem))
			return
		}
	}
	rep.add("custody-after-seal", StatusOK, filepath.Base(file), fmt.Sprintf("%d hand-over records continue the sealed chain", len(rep.Custody.Records)-n))
}
