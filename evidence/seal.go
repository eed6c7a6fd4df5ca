package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/eksir/eksir/internal/fastio"
)

// Compression choices for the archive.
const (
	CompressZstd = "zstd"
	CompressNone = "none"
)

// SealOptions configures SealCase and SealDir.
type SealOptions struct {
	Incident string
	// OutDir receives <incident>.tar.zst (or .tar) and its sidecars.
	OutDir   string
	Compress string
	// SealTime is recorded everywhere a time is; the same case sealed twice
	// with the same SealTime gives identical bytes.
	SealTime           time.Time
	Signer             *Signer
	SourceOrganization string
	Examiner           string
	Tool               string
	Actor              string
	Collector          Collector
	// Workers bounds parallel reading and hashing; GOMAXPROCS when 0.
	Workers int
	// Progress, when set, is called with payload bytes written so far.
	Progress func(done, total int64)
	// Adopt lets SealCase record files found in data/ without a custody
	// record as "recovered" (SealResult.Adopted lists them); without it
	// they stop the seal. Links, devices and FIFOs stop it regardless.
	Adopt bool
	// CustodyKeys are trusted, besides Signer, for the case's custody
	// records (other examiners who acquired into the case).
	CustodyKeys KeyRing
	// Now is the clock that bounds SealTime; time.Now when nil.
	Now func() time.Time
	// TagFiles are extra tag files to seal into the bag, by bag path:
	// ReportJSONTag and ReportHTMLTag only (the incident report, built by
	// the caller: evidence does not know the report). They are listed in
	// the tag manifest, so the signature over it covers them. Their
	// content must be UTF-8 text without a byte-order mark.
	TagFiles map[string][]byte
}

// Tag files a seal may add (SealOptions.TagFiles): the incident report as
// JSON and as one HTML page. Made before the seal, they cannot mention the
// "sealed" custody record that follows them.
const (
	ReportJSONTag = reportJSON
	ReportHTMLTag = reportHTML
)

// checkTagFiles refuses tag files other than the report's, and content a
// BagIt text tag file may not have.
func checkTagFiles(files map[string][]byte) error {
	for name, data := range files {
		switch {
		case name != ReportJSONTag && name != ReportHTMLTag:
			return invalidf(fmt.Sprintf("only %s and %s may be added as tag files", ReportJSONTag, ReportHTMLTag), "tag file %q is not one a seal adds", name)
		case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || !utf8.Valid(data):
			return invalidf("write the report as UTF-8 without a byte-order mark", "tag file %s is not UTF-8 text without a byte-order mark", name)
		}
	}
	return nil
}

// MaxClockSkew is how far into the future a seal time may lie.
const MaxClockSkew = 5 * time.Minute

// SealResult describes a sealed archive.
type SealResult struct {
	Archive        string `json:"archive"`
	Sidecar        string `json:"sidecar"`
	SHA256         string `json:"sha256"`
	ArchiveBytes   int64  `json:"archive_bytes"`
	PayloadBytes   int64  `json:"payload_bytes"`
	PayloadFiles   int    `json:"payload_files"`
	CustodyHead    string `json:"custody_head"`
	CustodyRecords int64  `json:"custody_records"`
	KeyID          string `json:"key_id"`
	// Adopted lists the items SealCase adopted (SealOptions.Adopt).
	Adopted []Item `json:"adopted,omitempty"`
	// TagFiles lists the extra tag files sealed (SealOptions.TagFiles),
	// in archive order.
	TagFiles []string `json:"tag_files,omitempty"`
}

// ArchiveName returns the archive file name for an incident.
func ArchiveName(incident, compress string) string {
	if compress == CompressNone {
		return incident + ".tar"
	}
	return incident + ".tar.zst"
}

// payloadFile is one file to seal: where it is on disk and, in a case, the
// hash taken at acquisition that sealing must reproduce.
type payloadFile struct {
	bagPath  string // "data/..."
	diskPath string
	size     int64 // -1 until the file is opened, when not known in advance
	want     string
}

// SealCase seals a case folder. Every item is re-hashed while it is written
// into the archive and must match the hash taken at acquisition. On success
// a "sealed" record is appended to the case's custody log; sealing again with
// the same time reuses it, so the archive is byte-identical.
func SealCase(ctx context.Context, c *Case, opts SealOptions) (SealResult, error) {
	opts.Incident = c.Incident()
	explicit, err := prepareSeal(&opts)
	if err != nil {
		return SealResult{}, err
	}
	if err := checkOutput(opts, c.Dir()); err != nil {
		return SealResult{}, err
	}
	if err := checkSealTime(opts, c.Log().LastTime(), explicit); err != nil {
		return SealResult{}, err
	}
	if err := checkCaseLog(c, opts); err != nil {
		return SealResult{}, err
	}
	adopted, err := checkUnrecorded(ctx, c, opts, explicit)
	if err != nil {
		return SealResult{}, err
	}
	if len(adopted) > 0 {
		// The seal follows the adoption records it seals.
		if !explicit {
			opts.SealTime = defaultSealTime(time.Time{}, opts.Now)
		}
		if err := notBefore(opts.SealTime, c.Log().LastTime(), "the seal"); err != nil {
			return SealResult{Adopted: adopted}, err
		}
	}
	var files []payloadFile
	for _, it := range c.Items() {
		if it.Status != StatusCollected {
			continue
		}
		disk := filepath.Join(c.Dir(), filepath.FromSlash(it.Path))
		fi, err := os.Lstat(disk)
		if err != nil {
			return SealResult{}, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s is in the custody log but not in the case", it.Path), Err: err,
				hint: "evidence went missing after acquisition; preserve the case folder and investigate before sealing"}
		}
		if !fi.Mode().IsRegular() || fi.Size() != it.Size {
			return SealResult{}, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s changed after acquisition (size %d, acquired %d)", it.Path, fi.Size(), it.Size),
				hint: "preserve the case folder and investigate before sealing"}
		}
		files = append(files, payloadFile{bagPath: it.Path, diskPath: disk, size: it.Size, want: it.SHA256})
	}
	logData, err := os.ReadFile(c.Log().path)
	if err != nil {
		return SealResult{}, fmt.Errorf("read custody log: %w", err)
	}
	recs := c.Log().Records()
	head, count := c.Log().Head()
	custody := func(_ map[string]string, details sealDetails) ([]byte, chainHead, []byte, error) {
		rec, err := newRecord(Actor(opts.Actor), ActionSealed, opts.SealTime, details, map[string]string{manifestTxt: details.ManifestSHA256})
		if err != nil {
			return nil, chainHead{}, nil, err
		}
		// Idempotent re-seal: the last record already says exactly this.
		if n := len(recs); n > 0 && recs[n-1].Action == ActionSealed && string(recs[n-1].Details) == string(rec.Details) {
			return logData, chainHead{Seq: count, Hash: head}, nil, nil
		}
		line, _, err := signRecord(chainHead{Seq: count, Hash: head}, opts.Signer, rec)
		if err != nil {
			return nil, chainHead{}, nil, err
		}
		all := append(append(append([]byte(nil), logData...), line...), '\n')
		return all, chainHead{Seq: count, Hash: head}.next(line), line, nil
	}
	items := func(map[string]string) []Item { return c.Items() }
	res, sealedLine, err := seal(ctx, files, items, custody, opts)
	res.Adopted = adopted
	if err != nil || sealedLine == nil {
		return res, err
	}
	var rec Record
	body, _, _ := splitSigned(sealedLine)
	_ = json.Unmarshal(body, &rec)
	c.Log().mu.Lock()
	defer c.Log().mu.Unlock()
	if c.Log().head.Hash != head {
		return res, errors.New("custody log changed while sealing; seal again")
	}
	return res, c.Log().appendLocked(sealedLine, rec)
}

// prepareSeal checks there is a signer and fills the clock and the seal
// time; explicit says the caller chose the seal time.
func prepareSeal(opts *SealOptions) (explicit bool, err error) {
	if opts.Signer == nil {
		return false, errNoKey()
	}
	if err := checkTagFiles(opts.TagFiles); err != nil {
		return false, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	explicit = !opts.SealTime.IsZero()
	opts.SealTime = defaultSealTime(opts.SealTime, opts.Now)
	return explicit, nil
}

// SealDir seals any folder of files as a bag. Its custody chain starts with
// one "acquired" record listing every file, followed by the "sealed" record.
func SealDir(ctx context.Context, dir string, opts SealOptions) (SealResult, error) {
	if err := ValidIncidentID(opts.Incident); err != nil {
		return SealResult{}, err
	}
	explicit, err := prepareSeal(&opts)
	if err != nil {
		return SealResult{}, err
	}
	if err := checkSealTime(opts, time.Time{}, explicit); err != nil {
		return SealResult{}, err
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		if err := checkOutput(opts, dir); err != nil {
			return SealResult{}, err
		}
	}
	files, err := listPayload(ctx, dir)
	if err != nil {
		return SealResult{}, err
	}
	abs, _ := filepath.Abs(dir)
	host, _ := os.Hostname()
	at := FormatTime(opts.SealTime)
	items := func(sums map[string]string) []Item {
		out := make([]Item, 0, len(files))
		for _, f := range files {
			out = append(out, Item{
				Path: f.bagPath, Status: StatusCollected, Size: f.size, SHA256: sums[f.bagPath],
				AcquisitionStart: at, AcquisitionEnd: at,
				Source: Source{Host: host, Path: filepath.Join(abs, filepath.FromSlash(strings.TrimPrefix(f.bagPath, "data/")))},
				Method: "eksir seal: file read from a local folder", Tool: opts.Tool, Collector: opts.Collector,
			})
		}
		return out
	}
	custody := func(sums map[string]string, details sealDetails) ([]byte, chainHead, []byte, error) {
		acq, err := newRecord(Actor(opts.Actor), ActionAcquired, opts.SealTime,
			map[string]any{"source": abs, "host": host, "files": len(files), "method": "eksir seal DIR"}, sums)
		if err != nil {
			return nil, chainHead{}, nil, err
		}
		sealed, err := newRecord(Actor(opts.Actor), ActionSealed, opts.SealTime, details, map[string]string{manifestTxt: details.ManifestSHA256})
		if err != nil {
			return nil, chainHead{}, nil, err
		}
		var out []byte
		head := emptyHead()
		for _, rec := range []Record{acq, sealed} {
			line, _, err := signRecord(head, opts.Signer, rec)
			if err != nil {
				return nil, chainHead{}, nil, err
			}
			out = append(append(out, line...), '\n')
			head = head.next(line)
		}
		return out, head, nil, nil
	}
	res, _, err := seal(ctx, files, items, custody, opts)
	return res, err
}

// defaultSealTime is t in UTC, or now when t is zero. SealCase and SealDir
// apply it before building custody records, so every record and the item
// index carry the same seal time as the statement.
func defaultSealTime(t time.Time, now func() time.Time) time.Time {
	if t.IsZero() {
		if now == nil {
			now = time.Now
		}
		t = now()
	}
	return t.UTC()
}

// checkSealTime refuses a seal time before the last custody record (last)
// or more than MaxClockSkew ahead of the clock.
func checkSealTime(opts SealOptions, last time.Time, explicit bool) error {
	if !explicit {
		// The clock itself: only a clock behind the log can be wrong.
		return notBefore(opts.SealTime, last, "the seal")
	}
	if now := opts.Now(); opts.SealTime.After(now.Add(MaxClockSkew)) {
		return invalidf(fmt.Sprintf("give a seal time no later than the current time plus %v, or leave --seal-time out", MaxClockSkew),
			"seal time %s lies in the future (now %s)", FormatTime(opts.SealTime), FormatTime(now))
	}
	if !last.IsZero() && opts.SealTime.Before(last) {
		return invalidf("give a seal time at or after the last custody record, or leave --seal-time out",
			"seal time %s precedes the last custody record (%s)", FormatTime(opts.SealTime), FormatTime(last))
	}
	return nil
}

// checkOutput refuses an output folder inside src, the folder being sealed,
// and an archive, sidecar or hand-over log already at the destination:
// sealing never replaces evidence. Nothing is written.
func checkOutput(opts SealOptions, src string) error {
	name := ArchiveName(opts.Incident, opts.Compress)
	out := resolvePath(opts.OutDir)
	if dir := resolvePath(src); out == dir || strings.HasPrefix(out, dir+string(filepath.Separator)) {
		return invalidf("pass --out with a folder outside the one being sealed",
			"output folder %s is inside %s, the folder being sealed", opts.OutDir, src)
	}
	final := filepath.Join(opts.OutDir, name)
	for _, p := range []string{final, final + ".sha256", final + ".custody.jsonl"} {
		if _, err := os.Lstat(p); err == nil {
			return invalidf("pass another --out folder, or move the old archive away first together with its .sha256 and .custody.jsonl (its hand-over records belong to it)",
				"%s already exists; sealing never replaces an archive", p)
		}
	}
	return nil
}

// resolvePath returns p absolute, with links resolved in the part of it
// that exists.
func resolvePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = append(rest, filepath.Base(cur))
		cur = parent
	}
}

// checkCaseLog replays the case's custody log, signatures included, with
// the keys verify will trust: refusing now a log that verify would reject.
func checkCaseLog(c *Case, opts SealOptions) error {
	data, err := os.ReadFile(c.Log().path)
	if err != nil {
		return fmt.Errorf("read custody log: %w", err)
	}
	keys := KeyRing{}
	keys.Add(opts.Signer.Public())
	for id, k := range opts.CustodyKeys {
		keys[id] = k
	}
	var res ChainResult
	if err := replayChain(bytes.NewReader(data), custodyJSONL, emptyHead(), "", keys, maxListTag, &res); err != nil {
		return fmt.Errorf("read custody log: %w", err)
	}
	for _, rc := range res.Records {
		if !rc.OK {
			return &Error{Kind: ErrVerification, Msg: fmt.Sprintf("custody log %s: record %d: %s", c.Log().path, rc.Record.Seq, rc.Problem),
				hint: "nothing was sealed; if another examiner signed records, pass their public key with --custodian-key, otherwise preserve the case folder and escalate"}
		}
	}
	return nil
}

// checkUnrecorded stops the seal on anything in data/ that no custody
// record acquired: links, devices and FIFOs always, regular files unless
// opts.Adopt, in which case they are recorded as "recovered".
func checkUnrecorded(ctx context.Context, c *Case, opts SealOptions, explicit bool) ([]Item, error) {
	u, err := c.Unrecorded(ctx)
	if err != nil {
		return nil, err
	}
	if len(u.Others) > 0 {
		return nil, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("the case holds what evidence never is, not followed or read: %s", strings.Join(u.Others, ", ")),
			hint: "nothing was sealed; preserve the case folder and investigate who put it there (--adopt never takes links, devices or FIFOs)"}
	}
	if len(u.Files) == 0 {
		return nil, nil
	}
	if !opts.Adopt {
		return nil, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("files in the case that no custody record acquired: %s", strings.Join(u.Files, ", ")),
			hint: "nothing was sealed; if they are evidence left by an interrupted acquisition, seal again with --adopt to record each as recovered; otherwise remove them"}
	}
	if explicit && opts.SealTime.Before(c.opts.Now()) {
		return nil, invalidf("leave --seal-time out when adopting files, or give a time after now",
			"seal time %s precedes the adoption of %d files, which is recorded now", FormatTime(opts.SealTime), len(u.Files))
	}
	var out []Item
	for _, p := range u.Files {
		it, err := c.Adopt(ctx, p)
		if err != nil {
			return out, err
		}
		out = append(out, it)
	}
	return out, nil
}

// listPayload walks dir and returns its regular files, sorted by bag path.
// Links, devices and names a bag cannot carry are refused before anything
// is written.
func listPayload(ctx context.Context, dir string) ([]payloadFile, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, invalidErr(err, "give the folder that holds the evidence files", "cannot seal %s", dir)
	}
	if !fi.IsDir() {
		return nil, invalidf("give a folder, not a file", "cannot seal %s: not a folder", dir)
	}
	var files []payloadFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return invalidErr(err, "check the folder's permissions", "cannot read %s", p)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			where := "outside the folder"
			if linkPointsInside(dir, p, target) {
				where = "inside the folder"
			}
			return invalidf("replace the link with a copy of the file it points to, or remove it", "%s is a symbolic link to %s (%s); evidence bags hold no links", rel, target, where)
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return invalidf("remove it or copy its content into a regular file", "%s is not a regular file (%v)", rel, d.Type())
		}
		// The same rule as acquire: one function decides which names a
		// bag may hold.
		if err := ValidItemPath(filepath.ToSlash(rel)); err != nil {
			return err
		}
		// The size comes from fstat when the file is read: one syscall less
		// per file, which matters with 100,000 of them.
		files = append(files, payloadFile{bagPath: "data/" + filepath.ToSlash(rel), diskPath: p, size: -1})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].bagPath < files[j].bagPath })
	return files, nil
}

// linkPointsInside reports whether the link at p, whose target is target,
// names a path inside dir (lexically; the target need not exist).
func linkPointsInside(dir, p, target string) bool {
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(p), target)
	}
	absDir, err1 := filepath.Abs(dir)
	absTarget, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return false
	}
	r, err := filepath.Rel(absDir, absTarget)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// sealDetails is the "sealed" custody record's details.
type sealDetails struct {
	Bag            string `json:"bag"`
	Archive        string `json:"archive"`
	SealedAt       string `json:"sealed_at"`
	PayloadOxum    string `json:"payload_oxum"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// SealPredicate is the predicate of the signed in-toto statement.
type SealPredicate struct {
	Incident          string `json:"incident"`
	Bag               string `json:"bag"`
	SealedAt          string `json:"sealedAt"`
	PayloadOxum       string `json:"payloadOxum"`
	ManifestSHA256    string `json:"manifestSha256"`
	CustodyLogHead    string `json:"custodyLogHead"`
	CustodyLogRecords int64  `json:"custodyLogRecords"`
	Tool              string `json:"tool"`
}

// Statement is an in-toto v1 Statement.
type Statement struct {
	Type          string        `json:"_type"`
	Subject       []Subject     `json:"subject"`
	PredicateType string        `json:"predicateType"`
	Predicate     SealPredicate `json:"predicate"`
}

// Subject is an in-toto subject.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// In-toto and DSSE identifiers.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	// The predicate URI is an identifier of the archive format, frozen since
	// archives were first sealed with it: it keeps eksir.dev while labels,
	// annotations and the playbook apiVersion moved to eksir.io.
	SealPredicateType = "https://eksir.dev/attestations/seal/v1"
	InTotoPayloadType = "application/vnd.in-toto+json"
)

type custodyFunc func(sums map[string]string, d sealDetails) (jsonl []byte, head chainHead, newLine []byte, err error)

// seal writes the archive: bagit.txt, the payload in path order, then the
// tag files, the tag manifest and the signature. One pass reads each payload
// file once; its hash and the archive's hash are computed on separate cores
// while the bytes are written.
func seal(ctx context.Context, files []payloadFile, items func(map[string]string) []Item, custody custodyFunc, opts SealOptions) (SealResult, []byte, error) {
	if opts.Signer == nil {
		return SealResult{}, nil, errNoKey()
	}
	switch opts.Compress {
	case "":
		opts.Compress = CompressZstd
	case CompressZstd, CompressNone:
	default:
		return SealResult{}, nil, invalidf("use --compress zstd or --compress none", "unknown compression %q", opts.Compress)
	}
	opts.SealTime = defaultSealTime(opts.SealTime, opts.Now)
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if err := os.MkdirAll(opts.OutDir, dirMode); err != nil {
		return SealResult{}, nil, fmt.Errorf("create output folder: %w", err)
	}
	name := ArchiveName(opts.Incident, opts.Compress)
	final := filepath.Join(opts.OutDir, name)
	out, err := os.CreateTemp(opts.OutDir, "."+name+tempSuffix+"*")
	if err != nil {
		return SealResult{}, nil, fmt.Errorf("create archive: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if err := out.Chmod(fileMode); err != nil {
		return SealResult{}, nil, err
	}
	aw, err := newArchiveWriter(out, opts)
	if err != nil {
		return SealResult{}, nil, err
	}
	defer aw.sink.Abort()
	res, newLine, err := aw.writeBag(ctx, files, items, custody, opts)
	if err != nil {
		return res, nil, err
	}
	if err := out.Sync(); err != nil {
		return res, nil, fmt.Errorf("sync archive: %w", err)
	}
	if err := out.Close(); err != nil {
		return res, nil, fmt.Errorf("close archive: %w", err)
	}
	// A hard link, unlike a rename, never replaces an archive that
	// appeared at final while this one was written.
	if err := os.Link(out.Name(), final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return res, nil, invalidf("pass another --out folder, or move the old archive away first", "%s already exists; sealing never replaces an archive", final)
		}
		return res, nil, fmt.Errorf("link archive into place: %w", err)
	}
	committed = true
	os.Remove(out.Name())
	res.Archive, res.Sidecar = final, final+".sha256"
	if err := syncDir(opts.OutDir); err != nil {
		return res, nil, err
	}
	if err := writeFileSync(res.Sidecar, []byte(res.SHA256+"  "+name+"\n"), fileMode); err != nil {
		return res, nil, err
	}
	return res, newLine, nil
}

// archiveSink is where the archive stream goes. fastio.Writer is the one in
// use: it feeds the archive hash and writes the file in aligned blocks, both
// off the goroutine that fills it.
type archiveSink interface {
	io.Writer
	// Close writes everything queued and returns the first write error.
	Close() error
	// Abort drops what is queued after a failure; it is a no-op after Close.
	Abort()
	// Written is the number of bytes accepted so far.
	Written() int64
}

// archiveWriter is the tar stream: tar → [zstd] → sink (archive hash, file).
type archiveWriter struct {
	sink archiveSink
	sum  hash.Hash // the archive's hash, which the sink feeds
	raw  io.Writer // what tw writes to: the sink, or zstd in front of it
	zw   *zstd.Encoder
	tw   *tar.Writer
	top  string
	time time.Time
	dirs map[string]bool
}

func newArchiveWriter(f *os.File, opts SealOptions) (*archiveWriter, error) {
	aw := &archiveWriter{sum: NewHash(), top: opts.Incident, time: opts.SealTime.Truncate(time.Second), dirs: map[string]bool{}}
	aw.sink = fastio.NewWriter(f, aw.sum)
	var w io.Writer = aw.sink
	if opts.Compress == CompressZstd {
		zw, err := zstd.NewWriter(aw.sink, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			aw.sink.Abort()
			return nil, fmt.Errorf("zstd: %w", err)
		}
		aw.zw, w = zw, zw
	}
	aw.raw, aw.tw = w, tar.NewWriter(w)
	return aw, nil
}

// header returns a deterministic PAX header: fixed owner, mode and time.
func (aw *archiveWriter) header(name string, size int64, dir bool) *tar.Header {
	h := &tar.Header{Name: aw.top + "/" + name, Size: size, Mode: fileMode, ModTime: aw.time, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
	if dir {
		h.Name, h.Mode, h.Typeflag, h.Size = aw.top+"/"+name+"/", dirMode, tar.TypeDir, 0
	}
	if name == "" {
		h.Name = aw.top + "/"
	}
	return h
}

// parents writes directory entries for name's parents not yet written.
func (aw *archiveWriter) parents(name string) error {
	var missing []string
	for d := pathDir(name); !aw.dirs[d]; d = pathDir(d) {
		missing = append(missing, d)
		aw.dirs[d] = true
		if d == "" {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := aw.tw.WriteHeader(aw.header(missing[i], 0, true)); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	return nil
}

func pathDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (aw *archiveWriter) writeSmall(name string, data []byte) error {
	if err := aw.parents(name); err != nil {
		return err
	}
	if err := aw.tw.WriteHeader(aw.header(name, int64(len(data)), false)); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if _, err := aw.tw.Write(data); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func (aw *archiveWriter) writeBag(ctx context.Context, files []payloadFile, items func(map[string]string) []Item, custody custodyFunc, opts SealOptions) (SealResult, []byte, error) {
	res := SealResult{KeyID: opts.Signer.ID(), PayloadFiles: len(files)}
	if err := aw.writeSmall(bagitTxt, []byte(bagitContent)); err != nil {
		return res, nil, err
	}
	if len(files) == 0 {
		// An empty payload is still a data/ folder (RFC 8493 §2.1.2).
		if err := aw.parents("data/"); err != nil {
			return res, nil, err
		}
	}
	sums, err := aw.writePayload(ctx, files, opts)
	if err != nil {
		return res, nil, err
	}
	for _, f := range files {
		res.PayloadBytes += f.size
	}
	lines := make([]manifestLine, 0, len(files))
	for _, f := range files {
		lines = append(lines, manifestLine{sums[f.bagPath], f.bagPath})
	}
	manifest := formatManifest(lines)
	oxum := fmt.Sprintf("%d.%d", res.PayloadBytes, res.PayloadFiles)
	details := sealDetails{Bag: opts.Incident, Archive: ArchiveName(opts.Incident, opts.Compress), SealedAt: FormatTime(opts.SealTime), PayloadOxum: oxum, ManifestSHA256: SumHex(manifest)}
	// The custody records and the items index both list every file; with
	// many files each takes a while to encode, so they are built side by
	// side.
	var index []byte
	indexDone := make(chan error, 1)
	go func() {
		var err error
		index, err = MarshalIndex(Index{Incident: opts.Incident, Items: items(sums)})
		indexDone <- err
	}()
	custodyData, head, newLine, err := custody(sums, details)
	if err = errors.Join(err, <-indexDone); err != nil {
		return res, nil, err
	}
	res.CustodyHead, res.CustodyRecords = head.Hash, head.Seq
	info := bagInfo{SourceOrganization: opts.SourceOrganization, Incident: opts.Incident, Examiner: opts.Examiner, Tool: opts.Tool,
		SealTime: opts.SealTime, PayloadBytes: res.PayloadBytes, PayloadFiles: res.PayloadFiles, CustodyHead: head.Hash, CustodyRecords: head.Seq}.format()
	tags := []struct {
		name string
		data []byte
	}{{bagInfoTxt, info}, {manifestTxt, manifest}, {custodyJSONL, custodyData}, {itemsJSON, index}}
	// The report files follow items.json, in the order sealTagFiles gives
	// (canonical.go), which verify checks.
	for _, name := range []string{reportHTML, reportJSON} {
		if data, ok := opts.TagFiles[name]; ok {
			tags = append(tags, struct {
				name string
				data []byte
			}{name, data})
			res.TagFiles = append(res.TagFiles, name)
		}
	}
	tagLines := []manifestLine{{SumHex([]byte(bagitContent)), bagitTxt}}
	for _, t := range tags {
		if err := aw.writeSmall(t.name, t.data); err != nil {
			return res, nil, err
		}
		tagLines = append(tagLines, manifestLine{SumHex(t.data), t.name})
	}
	tagManifest := formatManifest(tagLines)
	if err := aw.writeSmall(tagManifestTxt, tagManifest); err != nil {
		return res, nil, err
	}
	envelope, err := signSeal(ctx, opts.Signer, Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: tagManifestTxt, Digest: map[string]string{"sha256": SumHex(tagManifest)}}},
		PredicateType: SealPredicateType,
		Predicate: SealPredicate{Incident: opts.Incident, Bag: opts.Incident, SealedAt: FormatTime(opts.SealTime), PayloadOxum: oxum,
			ManifestSHA256: details.ManifestSHA256, CustodyLogHead: head.Hash, CustodyLogRecords: head.Seq, Tool: opts.Tool},
	})
	if err != nil {
		return res, nil, err
	}
	if err := aw.writeSmall(sealDSSE, envelope); err != nil {
		return res, nil, err
	}
	if err := aw.writeSmall(sealPub, EncodePublicKey(opts.Signer.Public())); err != nil {
		return res, nil, err
	}
	if err := aw.close(); err != nil {
		return res, nil, err
	}
	res.SHA256, res.ArchiveBytes = hexSum(aw.sum), aw.sink.Written()
	return res, newLine, nil
}

func (aw *archiveWriter) close() error {
	err := aw.tw.Close()
	if err == nil && aw.zw != nil {
		err = aw.zw.Close()
	}
	if err == nil {
		err = aw.sink.Close()
	} else {
		aw.sink.Close()
	}
	if err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

// signSeal wraps the statement in a DSSE envelope signed by signer.
func signSeal(ctx context.Context, signer *Signer, st Statement) ([]byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	es, err := dsse.NewEnvelopeSigner(signer)
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, InTotoPayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign seal: %w", err)
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
