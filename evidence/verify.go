package evidence

import (
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
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"golang.org/x/sync/errgroup"
	"golang.org/x/text/unicode/norm"

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
	// ArchiveSHA256 is the archive file's SHA-256 as the pass hashed it
	// (archives only).
	ArchiveSHA256 string `json:"archive_sha256,omitempty"`
	// Metadata holds, with VerifyOptions.KeepMetadata, the bytes of
	// bag-info.txt, metadata/items.json and metadata/custody.jsonl as the
	// pass read them, and of the payload files VerifyOptions.KeepPayload
	// chose, by bag path. Nothing is read twice for it. Archives only: an
	// extracted folder's files can be read in place.
	Metadata map[string][]byte `json:"-"`
	// handOverLog is the SHA-256 of the <archive>.custody.jsonl bytes this
	// verification read ("" when there was none): AppendHandOver continues
	// the chain only from the log this report checked.
	handOverLog string
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
	// Keys are the trusted sealers' public keys: one of them must have
	// signed the seal, and they sign the custody records inside the bag.
	// When empty, the key stored in the bag is used and the report says the
	// signer is not pinned.
	Keys KeyRing
	// CustodyKeys are trusted for hand-over records (<archive>.custody.jsonl)
	// only, never for the seal nor for the records inside the bag: a key
	// trusted only as a custodian cannot make a bag verify as sealed.
	CustodyKeys KeyRing
	// MaxTagBytes bounds the tag files held in memory together; 128 MiB
	// when 0. Each tag file also has its own limit.
	MaxTagBytes int64
	// Sequential reads and hashes an archive in the calling goroutine
	// through one small buffer instead of the parallel block reader:
	// slower, but a few MiB instead of tens, for a verification that runs
	// beside a transfer which is slower still.
	Sequential bool
	// KeepMetadata keeps the metadata a report is built from in
	// Report.Metadata (within MaxTagBytes, as every held tag file).
	KeepMetadata bool
	// KeepPayload, with KeepMetadata, chooses small payload files (bag
	// paths, at most MaxKeptPayload bytes each) to keep as well, such as
	// the snapshot descriptors a report lists; their bytes are the ones
	// hashed in the same pass.
	KeepPayload func(rel string) bool
}

// MaxKeptPayload bounds a payload file VerifyOptions.KeepPayload keeps.
const MaxKeptPayload = 1 << 20

// bagContent is what one pass over a bag yields: the hash of every payload
// file and the bytes of every tag file. Payload bytes are never kept.
type bagContent struct {
	top     string
	payload map[string]fileSum
	tags    map[string][]byte
	// tagSums holds the hashes of tag files hashed but not kept.
	tagSums  map[string]string
	tagBytes int64
	report   *Report
	// archive is the archive file name, compress its compression, and
	// archiveSum its SHA-256 (for archives only).
	archive    string
	compress   string
	archiveSum string
	// tarTime is the mtime of the archive's entries (the seal time to the
	// second); zero for folders.
	tarTime time.Time
	// broken is set when the archive departs from the layout seal writes;
	// the bag's content is then not checked further.
	broken bool
}

type fileSum struct {
	size int64
	sum  string
}

// Verify checks an archive (.tar or .tar.zst, with its .sha256 sidecar and
// .custody.jsonl when present) or an extracted bag folder: structure,
// completeness, every checksum, the tag manifest, the signature and the
// custody chain. It reads the archive once, streaming, without extracting.
// An archive must have exactly the layout seal writes (see canonical.go).
// A failing check makes Report.OK false; the error is for I/O problems.
func Verify(ctx context.Context, target string, opts VerifyOptions) (*Report, error) {
	if opts.MaxTagBytes == 0 {
		opts.MaxTagBytes = 128 << 20
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, invalidErr(err, "give a sealed archive (.tar.zst or .tar) or an extracted bag folder", "cannot verify %s", target)
	}
	rep := &Report{Target: target, OK: true}
	bc := &bagContent{payload: map[string]fileSum{}, tags: map[string][]byte{}, tagSums: map[string]string{}, report: rep}
	if fi.IsDir() {
		err = bc.readFolder(ctx, target, opts)
	} else {
		err = bc.readArchive(ctx, target, opts)
	}
	if err != nil {
		return nil, err
	}
	rep.Bag = bc.top
	if bc.broken {
		return rep, nil
	}
	bc.checkBag(ctx, opts)
	if !fi.IsDir() {
		bc.checkTransfers(target+".custody.jsonl", opts)
	}
	return rep, nil
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// readArchive makes the single streaming pass: other goroutines read the
// archive and hash it for the sidecar check (fastio.Reader) while this one
// decompresses, walks the tar block by block and hashes each payload file.
func (bc *bagContent) readArchive(ctx context.Context, archive string, opts VerifyOptions) error {
	f, err := os.Open(archive)
	if err != nil {
		return invalidErr(err, "check the path and permissions", "cannot open %s", archive)
	}
	defer f.Close()
	archiveSum := NewHash()
	var blocks io.Reader
	if opts.Sequential {
		blocks = io.TeeReader(f, archiveSum)
	} else {
		fr, err := fastio.NewReader(f, archiveSum)
		if err != nil {
			return invalidErr(err, "check the path and permissions", "cannot read %s", archive)
		}
		defer fr.Close()
		blocks = fr
	}
	bc.archive = filepath.Base(archive)
	br := bufio.NewReaderSize(blocks, 64<<10)
	var r io.Reader = br
	var frames *zstdFrames
	rest := io.Reader(br)
	bc.compress = CompressNone
	if magic, _ := br.Peek(4); bytes.Equal(magic, zstdMagic) {
		bc.compress = CompressZstd
		frames = newZstdFrames(br)
		// seal's encoder uses an 8 MiB window; a hostile frame may not make
		// the decoder allocate more.
		zr, err := zstd.NewReader(frames, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r, rest = zr, frames
	}
	err = bc.walkTar(ctx, newCanonReader(r), opts)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var le *layoutError
	switch {
	case frames != nil && frames.err != nil:
		// What the frame walker saw explains a decoder error best.
		err = frames.err
	case err != nil && !errors.As(err, &le) && frames != nil:
		err = &layoutError{"zstd stream", "not a readable zstd stream: " + err.Error()}
	}
	// Hash the rest so the sidecar check covers every byte.
	if _, cerr := io.Copy(io.Discard, rest); cerr != nil && err == nil {
		err = fmt.Errorf("read %s: %w", archive, cerr)
	}
	if err == nil && frames != nil {
		err = frames.finish()
	}
	if err != nil {
		if errors.As(err, &le) {
			bc.report.add("structure", StatusFail, shown(le.Name), le.Msg)
		} else {
			bc.report.add("archive", StatusFail, bc.archive, err.Error())
		}
		bc.broken = true
	}
	// The reader has fed the hash every byte once it reports the end.
	if _, err := io.Copy(io.Discard, blocks); err != nil {
		bc.report.add("archive", StatusFail, bc.archive, "read error: "+err.Error())
		bc.broken = true
		return nil
	}
	bc.archiveSum = hexSum(archiveSum)
	bc.report.ArchiveSHA256 = bc.archiveSum
	bc.checkSidecar(archive, bc.archiveSum)
	return nil
}

// walkTar reads every entry, checks each header against the one seal
// writes and, at the end, the order of the entries. It returns a
// *layoutError for the first departure from seal's layout.
func (bc *bagContent) walkTar(ctx context.Context, cr *canonReader, opts VerifyOptions) error {
	buf := make([]byte, 1<<20)
	var order []string
	files := map[string]bool{}
	seen := map[string]string{} // NFC form of every entry name -> the name
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := cr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, err := bc.entryName(cr, e, seen)
		if err != nil {
			return err
		}
		if e.typ == tarTypeDir {
			order = append(order, rel+"/")
			continue
		}
		keep, err := bc.entryContent(rel, cr.content(e.size), e.size, buf, opts)
		if err != nil {
			return err
		}
		if err := cr.padding(e.name); err != nil {
			return err
		}
		if keep {
			order = append(order, rel)
			files[rel] = true
		}
	}
	if len(order) == 0 {
		return &layoutError{"end of archive", "an empty archive: no entries at all"}
	}
	order[0] = "" // the top folder
	want := expectedOrder(files)
	for i := 0; i < max(len(order), len(want)); i++ {
		switch {
		case i >= len(want):
			bc.report.add("structure", StatusFail, bc.top+"/"+order[i], "an entry seal does not write (an empty folder?)")
		case i >= len(order):
			bc.report.add("structure", StatusFail, bc.top+"/"+want[i], "missing: seal writes this entry")
		case order[i] != want[i]:
			bc.report.add("structure", StatusFail, bc.top+"/"+order[i], fmt.Sprintf("out of the order seal writes entries in (seal writes %s here)", bc.top+"/"+want[i]))
		default:
			continue
		}
		break
	}
	return nil
}

const (
	tarTypeReg = '0'
	tarTypeDir = '5'
)

// entryName refuses names and types a bag must not hold and headers seal
// does not write, and returns the bag-relative path.
func (bc *bagContent) entryName(cr *canonReader, e rawEntry, seen map[string]string) (string, error) {
	name := e.name
	clean := path.Clean(name)
	top, _, _ := strings.Cut(clean, "/")
	first := bc.top == ""
	switch {
	case path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains("/"+name+"/", "/../"):
		return "", &layoutError{name, "path escapes the bag; refused"}
	case e.typ != tarTypeReg && e.typ != tarTypeDir:
		return "", &layoutError{name, fmt.Sprintf("entry type %q (%s) is a link, device or other special file; refused", e.typ, typeName(e.typ))}
	case first && (e.typ != tarTypeDir || name != top+"/" || ValidIncidentID(top) != nil):
		return "", &layoutError{name, "the first entry is not the bag's top folder as seal writes it"}
	case first:
		bc.top, cr.top, cr.time = top, top, time.Unix(e.mod, 0).UTC()
		bc.tarTime = cr.time
	case top != bc.top:
		return "", &layoutError{name, "second top-level folder; a bag archive has exactly one"}
	}
	rel, ok := strings.CutPrefix(name, bc.top+"/")
	if !ok {
		return "", &layoutError{name, "not under the top folder as seal writes names"}
	}
	dir := e.typ == tarTypeDir
	if dir && !first {
		if rel, ok = strings.CutSuffix(rel, "/"); !ok || rel == "" {
			return "", &layoutError{name, "a folder entry seal does not write"}
		}
	}
	if !first {
		if why := cleanRel(rel); why != "" {
			return "", &layoutError{name, why}
		}
	}
	if err := cr.check(e, rel, dir); err != nil {
		return "", err
	}
	key := norm.NFC.String(rel)
	if other, dup := seen[key]; dup {
		if other == rel {
			return "", &layoutError{name, "appears twice in the archive"}
		}
		return "", &layoutError{name, fmt.Sprintf("the same name as %s once Unicode-normalised (NFC/NFD twins): extractors that normalise names write one over the other", bc.top+"/"+other)}
	}
	seen[key] = rel
	return rel, nil
}

// entryContent hashes a payload file, or reads (within its limit) or
// hashes a tag file. keep is false for a tag file seal does not write,
// which is reported here.
func (bc *bagContent) entryContent(rel string, r io.Reader, size int64, buf []byte, opts VerifyOptions) (keep bool, err error) {
	if strings.HasPrefix(rel, "data/") {
		h := NewHash()
		var kept *bytes.Buffer
		var w io.Writer = h
		if opts.KeepMetadata && opts.KeepPayload != nil && size <= MaxKeptPayload && bc.tagBytes+size <= opts.MaxTagBytes && opts.KeepPayload(rel) {
			kept = bytes.NewBuffer(make([]byte, 0, size))
			w = io.MultiWriter(h, kept)
		}
		n, err := io.CopyBuffer(w, r, buf)
		if err != nil {
			return false, truncated(err)
		}
		bc.payload[rel] = fileSum{n, hexSum(h)}
		if kept != nil {
			bc.tagBytes += n
			bc.keep(rel, kept.Bytes())
		}
		return true, nil
	}
	limit := tagLimit(rel)
	if limit < 0 && opts.KeepMetadata && size <= maxListTag && bc.tagBytes+size <= opts.MaxTagBytes {
		// items.json: hashed as always, and its bytes kept for the caller.
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return false, truncated(err)
		}
		bc.tagBytes += size
		bc.tagSums[rel] = SumHex(b)
		bc.keep(rel, b)
		return true, nil
	}
	switch {
	case limit == 0:
		bc.report.add("tag-manifest", StatusFail, rel, "not a tag file seal writes; refused (added after sealing?)")
		_, err := io.CopyBuffer(io.Discard, r, buf)
		return false, truncated(err)
	case limit < 0:
		h := NewHash()
		if _, err := io.CopyBuffer(h, r, buf); err != nil {
			return false, truncated(err)
		}
		bc.tagSums[rel] = hexSum(h)
		return true, nil
	case size > limit || bc.tagBytes+size > opts.MaxTagBytes:
		return false, &layoutError{bc.top + "/" + rel, fmt.Sprintf("tag file of %d bytes; a bag's %s holds at most %d", size, rel, min(limit, opts.MaxTagBytes))}
	}
	// size is within the limit: allocating it is safe.
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return false, truncated(err)
	}
	bc.tagBytes += size
	bc.tags[rel] = b
	if opts.KeepMetadata && (rel == bagInfoTxt || rel == custodyJSONL) {
		bc.keep(rel, b)
	}
	return true, nil
}

// keep hands b to the caller in Report.Metadata.
func (bc *bagContent) keep(rel string, b []byte) {
	if bc.report.Metadata == nil {
		bc.report.Metadata = map[string][]byte{}
	}
	bc.report.Metadata[rel] = b
}

// checkSidecar compares the archive's hash with its .sha256 file, in any
// form sha256sum writes or reads: "<hex>  name" or "<hex> *name", hex in
// either case.
func (bc *bagContent) checkSidecar(archive, sum string) {
	side := filepath.Base(archive) + ".sha256"
	b, err := readLimited(archive+".sha256", maxSidecar)
	if errors.Is(err, fs.ErrNotExist) {
		bc.report.add("archive-sha256", StatusWarn, side, "no sidecar hash file; cannot compare the archive's hash")
		return
	}
	if err != nil {
		bc.report.add("archive-sha256", StatusFail, side, err.Error())
		return
	}
	want, name, ok := parseSidecar(b)
	switch {
	case !ok:
		bc.report.add("archive-sha256", StatusFail, side, "not a sha256sum line (\"<sha256>  <file>\")")
	case name != filepath.Base(archive):
		bc.report.add("archive-sha256", StatusFail, side, fmt.Sprintf("names %q, not this archive", name))
	case want != sum:
		bc.report.add("archive-sha256", StatusFail, filepath.Base(archive), fmt.Sprintf("sha256 %s, sidecar says %s", sum, want))
	default:
		bc.report.add("archive-sha256", StatusOK, filepath.Base(archive), sum)
	}
}

// SidecarSum returns the SHA-256 that archive's .sha256 file claims (not
// yet checked against the archive: Verify does that).
func SidecarSum(archive string) (string, error) {
	b, err := readLimited(archive+".sha256", maxSidecar)
	if err != nil {
		return "", invalidErr(err, "keep the .sha256 file next to the archive", "cannot read %s.sha256", archive)
	}
	sum, name, ok := parseSidecar(b)
	if !ok || name != filepath.Base(archive) {
		return "", invalidf("keep the .sha256 file that seal wrote next to the archive", "%s.sha256 is not a sha256sum line for %s", archive, filepath.Base(archive))
	}
	return sum, nil
}

// parseSidecar reads the one line of a sha256sum file: the hash (returned
// in lower case) and the file name, without the binary-mode "*".
func parseSidecar(b []byte) (sum, name string, ok bool) {
	line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.ContainsAny(line, "\n") || len(line) < 66 {
		return "", "", false
	}
	sum, rest := line[:64], line[64:]
	if _, err := hex.DecodeString(sum); err != nil {
		return "", "", false
	}
	switch {
	case strings.HasPrefix(rest, "  "):
		name = rest[2:]
	case strings.HasPrefix(rest, " *"):
		name = rest[2:]
	default:
		return "", "", false
	}
	return strings.ToLower(sum), name, name != ""
}

// readLimited reads a file of at most limit bytes; a bigger one is an
// error, found without reading it.
func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than the %d bytes it may have", filepath.Base(p), limit)
	}
	return b, nil
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
		limit := tagLimit(rel)
		switch {
		case limit == 0:
			bc.report.add("tag-manifest", StatusFail, rel, "not a tag file seal writes; refused (added after sealing?)")
			return nil
		case limit < 0:
			sum, _, err := hashFile(p)
			if err != nil {
				return invalidErr(err, "check the folder's permissions", "cannot read %s", p)
			}
			bc.tagSums[rel] = sum
			return nil
		}
		limit = min(limit, opts.MaxTagBytes-bc.tagBytes)
		b, err := readLimited(p, limit)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return invalidErr(err, "check the folder's permissions", "cannot read %s", p)
		}
		if err != nil {
			bc.report.add("structure", StatusFail, rel, fmt.Sprintf("tag file larger than the %d bytes a bag's %s may hold", limit, rel))
			bc.broken = true
			return nil
		}
		bc.tagBytes += int64(len(b))
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
			sum, n, err := hashFile(j.p)
			if err != nil {
				return invalidErr(err, "check the folder's permissions", "cannot read %s", j.rel)
			}
			sums[i] = fileSum{n, sum}
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

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := NewHash()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hexSum(h), n, nil
}

// parseManifest reads "<hex>  <path>" lines and decodes paths.
func parseManifest(name string, b []byte, rep *Report) map[string]string {
	out := map[string]string{}
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) > maxManifestLine {
			rep.add("manifest-format", StatusFail, name, fmt.Sprintf("line %d is longer than the %d bytes a manifest line may have", n+1, maxManifestLine))
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

	infoBytes, haveInfo := bc.tags[bagInfoTxt]
	info, err := parseBagInfo(infoBytes)
	switch {
	case !haveInfo:
		rep.add("bag-info", StatusFail, bagInfoTxt, "missing")
		info = map[string]string{}
	case err != nil:
		rep.add("bag-info", StatusFail, bagInfoTxt, "malformed: "+err.Error())
		info = map[string]string{}
	default:
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
		sum, ok := bc.tagSum(p)
		switch {
		case !ok:
			rep.add("tag-manifest", StatusFail, p, "listed in the tag manifest but missing")
			bad++
		case sum != tagManifest[p]:
			rep.add("tag-manifest", StatusFail, p, fmt.Sprintf("sha256 %s, tag manifest says %s", sum, tagManifest[p]))
			bad++
		}
	}
	present := slices.Collect(maps.Keys(bc.tags))
	present = append(present, slices.Collect(maps.Keys(bc.tagSums))...)
	slices.Sort(present)
	for _, p := range present {
		if _, ok := tagManifest[p]; !ok && p != tagManifestTxt && !strings.HasPrefix(p, "signatures/") {
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
	for _, p := range slices.Sorted(maps.Keys(tagManifest)) {
		// The report files are optional: a bag sealed without them, or
		// before they existed, lists neither.
		if !slices.Contains([]string{bagitTxt, bagInfoTxt, manifestTxt, custodyJSONL, itemsJSON, reportHTML, reportJSON}, p) {
			rep.add("tag-manifest", StatusFail, p, "the tag manifest lists a file seal does not list there")
			bad++
		}
	}
	if bad == 0 && tagBytes != nil {
		rep.add("tag-manifest", StatusOK, tagManifestTxt, fmt.Sprintf("%d tag files match", len(tagManifest)))
	}

	keys := bc.checkSignature(ctx, tagBytes, manifestBytes, info, opts)
	// Records inside the bag may be signed by the sealer or by another
	// examiner named as a custodian (who acquired into the case); the seal
	// itself only by a sealer, so a custodian's key alone never makes a
	// bag verify.
	bc.checkCustody(unionKeys(keys, opts.CustodyKeys), manifest, manifestBytes, info)
}

// checkSignature verifies the DSSE envelope and returns the keys to trust
// for the custody chain.
// tagSum returns the SHA-256 of the tag file p, held or only hashed.
func (bc *bagContent) tagSum(p string) (string, bool) {
	if b, ok := bc.tags[p]; ok {
		return SumHex(b), true
	}
	sum, ok := bc.tagSums[p]
	return sum, ok
}

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
	if len(env.Signatures) != 1 {
		rep.add("signature", StatusFail, sealDSSE, fmt.Sprintf("the envelope carries %d signatures; seal writes exactly one, by the sealer's key", len(env.Signatures)))
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
	if env.Signatures[0].KeyID != rep.SignerKeyID {
		rep.add("signature", StatusFail, sealDSSE, fmt.Sprintf("the signature names key %q but was made by %s", env.Signatures[0].KeyID, rep.SignerKeyID))
		return keys
	}
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
	case bc.statementDisagrees(p, info) != "":
		rep.add("signature", StatusFail, sealDSSE, "signed statement disagrees with the bag: "+bc.statementDisagrees(p, info))
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

// statementDisagrees names the first place where the bag's name, the
// archive's name, bag-info.txt or the tar headers' time differ from what
// seal writes for the statement p, or returns "".
func (bc *bagContent) statementDisagrees(p SealPredicate, info map[string]string) string {
	at, err := time.Parse(TimeFormat, p.SealedAt)
	switch {
	case err != nil || FormatTime(at) != p.SealedAt:
		return fmt.Sprintf("sealedAt %q is not a time as seal writes it", p.SealedAt)
	case p.Bag != p.Incident:
		return fmt.Sprintf("bag %q, incident %q", p.Bag, p.Incident)
	case p.Bag != bc.top:
		return fmt.Sprintf("bag %q, but the top folder is %q", p.Bag, bc.top)
	case bc.archive != "" && bc.archive != ArchiveName(p.Bag, bc.compress):
		return fmt.Sprintf("bag %q is sealed as %s, not %s", p.Bag, ArchiveName(p.Bag, bc.compress), bc.archive)
	case !bc.tarTime.IsZero() && !bc.tarTime.Equal(at.Truncate(time.Second)):
		return fmt.Sprintf("sealed at %s, but the archive's entries are dated %s", p.SealedAt, bc.tarTime.Format(time.RFC3339))
	}
	want := []struct{ label, value string }{
		{"Bagging-Date", at.Format("2006-01-02")}, {"Sealed-At", p.SealedAt}, {"Case-Number", p.Incident},
		{"Acquisition-Tool", p.Tool}, {"Bag-Software-Agent", p.Tool},
	}
	for _, w := range want {
		if info[w.label] != w.value {
			return fmt.Sprintf("bag-info.txt has %s %q; the statement says %q", w.label, info[w.label], w.value)
		}
	}
	return ""
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
	_ = replayChain(bytes.NewReader(data), custodyJSONL, emptyHead(), "", keys, maxListTag, &rep.Custody)
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
	// Every acquisition (and every file adopted as recovered) in the chain
	// must match what was sealed, and the last seal must name this manifest.
	var lastSeal *Record
	for i, rc := range rep.Custody.Records {
		r := rc.Record
		if r.Action == ActionAcquired || r.Action == ActionRecovered {
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
	if problem := bc.sealRecordDisagrees(rep.Custody.Records); problem != "" {
		rep.add("custody-chain", StatusFail, custodyJSONL, problem)
		rep.Custody.OK = false
		return
	}
	if rep.Custody.OK {
		rep.add("custody-chain", StatusOK, custodyJSONL, fmt.Sprintf("%d records, signatures and links verify", head.Seq))
	}
}

// sealRecordDisagrees checks the chain against the signed statement: the
// head is the sealed record seal writes for it, and nothing was acquired
// after the seal. It returns what is wrong, or "".
func (bc *bagContent) sealRecordDisagrees(recs []RecordCheck) string {
	st := bc.report.Statement
	if st == nil || len(recs) == 0 {
		return "" // the signature check already failed
	}
	p := st.Predicate
	for _, rc := range recs {
		if r := rc.Record; (r.Action == ActionAcquired || r.Action == ActionRecovered) && r.Time > p.SealedAt {
			return fmt.Sprintf("record %d acquired evidence at %s, after the statement's seal time %s", r.Seq, r.Time, p.SealedAt)
		}
	}
	last := recs[len(recs)-1].Record
	var d sealDetails
	if last.Action != ActionSealed || json.Unmarshal(last.Details, &d) != nil {
		return fmt.Sprintf("the chain's head, record %d, is not the sealed record", last.Seq)
	}
	switch {
	case last.Time != p.SealedAt || d.SealedAt != p.SealedAt:
		return fmt.Sprintf("the sealed record (record %d) is dated %s; the statement says %s", last.Seq, last.Time, p.SealedAt)
	case d.Bag != p.Bag || d.PayloadOxum != p.PayloadOxum || d.ManifestSHA256 != p.ManifestSHA256:
		return fmt.Sprintf("the sealed record (record %d) disagrees with the signed statement", last.Seq)
	case bc.archive != "" && d.Archive != bc.archive:
		return fmt.Sprintf("the sealed record (record %d) names archive %s, not %s", last.Seq, d.Archive, bc.archive)
	}
	return ""
}

// checkTransfers replays the hand-overs recorded after sealing. They are
// signed by a sealer's key or a custodian's (VerifyOptions.CustodyKeys),
// continue the sealed chain, never go back in time, and each names the
// archive's own hash.
func (bc *bagContent) checkTransfers(file string, opts VerifyOptions) {
	rep := bc.report
	name := filepath.Base(file)
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		rep.add("custody-after-seal", StatusFail, name, err.Error())
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() > maxHandOverLog {
		rep.add("custody-after-seal", StatusFail, name, fmt.Sprintf("not a file of at most %d bytes", maxHandOverLog))
		rep.Custody.OK = false
		return
	}
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
	after := ""
	if n > 0 {
		after = rep.Custody.Records[n-1].Record.Time
	}
	logSum := NewHash()
	if err := replayChain(io.TeeReader(io.LimitReader(f, maxHandOverLog), logSum), name, rep.SealedHead, after, keys, maxHandOverRecord, &res); err != nil {
		rep.add("custody-after-seal", StatusFail, name, err.Error())
		return
	}
	// Whatever replayChain left unread still belongs to the log's bytes.
	if _, err := io.Copy(logSum, f); err != nil {
		rep.add("custody-after-seal", StatusFail, name, err.Error())
		return
	}
	rep.handOverLog = hexSum(logSum)
	for i, rc := range res.Records {
		if !rc.OK {
			continue
		}
		if problem := bc.handOverDisagrees(rc.Record); problem != "" {
			res.Records[i].OK, res.Records[i].Problem = false, problem
			for j := i + 1; j < len(res.Records); j++ {
				if res.Records[j].OK {
					res.Records[j].OK, res.Records[j].Problem = false, "follows a broken record"
				}
			}
			break
		}
	}
	rep.Custody.Records = append(rep.Custody.Records, res.Records...)
	rep.Custody.Head = res.Head
	for _, rc := range res.Records {
		if !rc.OK {
			rep.Custody.OK = false
			rep.add("custody-after-seal", StatusFail, name, fmt.Sprintf("record %d: %s", rc.Record.Seq, rc.Problem))
			return
		}
	}
	rep.add("custody-after-seal", StatusOK, name, fmt.Sprintf("%d hand-over records continue the sealed chain", len(rep.Custody.Records)-n))
}

// handOverDisagrees returns what is wrong with a hand-over record that
// verified, or "": its action, and the archive hash it records.
func (bc *bagContent) handOverDisagrees(r Record) string {
	var h HandOver
	switch r.Action {
	case ActionTransferred, ActionVerified, ActionReleased, ActionReceived:
	default:
		return fmt.Sprintf("action %q is not a hand-over", r.Action)
	}
	if err := json.Unmarshal(r.Details, &h); err != nil {
		return "details are not a hand-over: " + err.Error()
	}
	if h.ArchiveSHA256 != bc.archiveSum {
		return fmt.Sprintf("records archive_sha256 %s, but this archive's sha256 is %s: it was recorded for other bytes", h.ArchiveSHA256, bc.archiveSum)
	}
	return ""
}

// unionKeys returns a key ring holding the keys of both.
func unionKeys(a, b KeyRing) KeyRing {
	out := KeyRing{}
	for id, k := range a {
		out[id] = k
	}
	for id, k := range b {
		out[id] = k
	}
	return out
}
