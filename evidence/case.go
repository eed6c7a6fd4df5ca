package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eksir/eksir/internal/fastio"
)

// Source says where an item came from; only the fields that apply are set.
type Source struct {
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Node      string `json:"node,omitempty"`
	Instance  string `json:"instance,omitempty"`
	ARN       string `json:"arn,omitempty"`
	Region    string `json:"region,omitempty"`
	Host      string `json:"host,omitempty"`
	Path      string `json:"path,omitempty"`
}

// Collector identifies who acquired an item.
type Collector struct {
	OSUser       string `json:"os_user"`
	Host         string `json:"host,omitempty"`
	AWSCallerARN string `json:"aws_caller_arn,omitempty"`
	KubeUser     string `json:"kube_user,omitempty"`
}

// Item statuses.
const (
	StatusCollected    = "collected"
	StatusNotCollected = "not-collected"
)

// Item is one entry of metadata/items.json: what a lab needs to know about a
// piece of evidence (NIST SP 800-86, ISO/IEC 27037).
type Item struct {
	// Path is the item's path in the bag, always under "data/".
	Path             string    `json:"path"`
	Status           string    `json:"status"`
	Reason           string    `json:"reason,omitempty"`
	Size             int64     `json:"size"`
	SHA256           string    `json:"sha256,omitempty"`
	AcquisitionStart string    `json:"acquisition_start"`
	AcquisitionEnd   string    `json:"acquisition_end"`
	Source           Source    `json:"source"`
	Method           string    `json:"method"`
	Tool             string    `json:"tool"`
	Collector        Collector `json:"collector"`
}

// ItemInfo is what the caller knows about an item before acquiring it.
type ItemInfo struct {
	Source Source
	Method string
}

// Index is the content of metadata/items.json.
type Index struct {
	Incident string `json:"incident"`
	Items    []Item `json:"items"`
}

var incidentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// ValidIncidentID reports whether id is safe as a folder and file name.
func ValidIncidentID(id string) error {
	if !incidentRE.MatchString(id) || strings.Contains(id, "..") {
		return invalidf("use letters, digits, '.', '_' and '-' (at most 80), starting with a letter or digit", "incident ID %q is not allowed", id)
	}
	return nil
}

// CaseOptions configures OpenCase.
type CaseOptions struct {
	// Dir holds one folder per incident.
	Dir      string
	Incident string
	Signer   *Signer
	// Tool names the acquiring tool and version, e.g. "eksir 0.3.0".
	Tool      string
	Collector Collector
	// Actor is recorded in custody records; Actor("") when empty.
	Actor string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Case is one incident's evidence folder: data/ holds the payload,
// metadata/custody.jsonl the signed custody log (the source of truth) and
// metadata/items.json the index derived from it. Safe for concurrent use.
type Case struct {
	root string
	opts CaseOptions
	log  *Log

	created bool

	mu      sync.Mutex
	items   map[string]Item
	pending map[string]bool
}

// OpenCase opens the incident's case folder, creating it if needed. Files
// in data/ that no custody record acquired (left by a crash between the
// rename and the custody append, or put there by someone else) are never
// adopted silently: Unrecorded lists them and SealCase refuses them unless
// told to adopt them.
func OpenCase(ctx context.Context, opts CaseOptions) (*Case, error) {
	if err := ValidIncidentID(opts.Incident); err != nil {
		return nil, err
	}
	if opts.Signer == nil {
		return nil, errNoKey()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Actor = Actor(opts.Actor)
	root := filepath.Join(opts.Dir, opts.Incident)
	_, statErr := os.Lstat(root)
	created := errors.Is(statErr, fs.ErrNotExist)
	for _, d := range []string{opts.Dir, root, filepath.Join(root, "data"), filepath.Join(root, "metadata")} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("create case folder: %w", err)
		}
	}
	log, err := OpenLog(filepath.Join(root, "metadata", "custody.jsonl"), opts.Signer, opts.Actor, opts.Now)
	if err != nil {
		return nil, err
	}
	c := &Case{root: root, opts: opts, log: log, created: created, pending: map[string]bool{}}
	if c.items, err = indexRecords(log.Records()); err != nil {
		log.Close()
		return nil, err
	}
	return c, nil
}

// indexRecords builds the items index from custody records, the one way
// both OpenCase and ReadCase derive items from a log.
func indexRecords(recs []Record) (map[string]Item, error) {
	items := map[string]Item{}
	for _, rec := range recs {
		if rec.Action != ActionAcquired && rec.Action != ActionNotCollected && rec.Action != ActionRecovered {
			continue
		}
		var it Item
		if err := json.Unmarshal(rec.Details, &it); err != nil {
			if rec.Action == ActionRecovered {
				continue // a torn-record note, not an item
			}
			return nil, fmt.Errorf("custody record %d: %w", rec.Seq, err)
		}
		if it.Path == "" {
			continue
		}
		indexItem(items, it)
	}
	return items, nil
}

// indexItem puts it in the items index. A later acquisition of an item once
// recorded as not collected supersedes that record (a resume retried it);
// a not-collected record never supersedes a collected item.
func indexItem(items map[string]Item, it Item) {
	if old, ok := items[it.Path]; ok && old.Status == StatusCollected && it.Status != StatusCollected {
		return
	}
	items[it.Path] = it
}

// index puts it in the case's items index (indexItem). Callers hold c.mu
// or own c.
func (c *Case) index(it Item) { indexItem(c.items, it) }

// collected reports whether bagPath is a collected (acquired or recovered)
// item. Callers hold c.mu.
func (c *Case) collected(bagPath string) bool {
	it, ok := c.items[bagPath]
	return ok && it.Status == StatusCollected
}

// Created reports whether OpenCase created the case folder.
func (c *Case) Created() bool { return c.created }

func errNoKey() error {
	return invalidf("create a key with 'eksir keygen --out FILE', then pass --key FILE or set EKSIR_SIGNING_KEY", "no signing key: evidence is never written unsigned")
}

// Unrecorded is what Unrecorded found in data/ that no custody record
// accounts for.
type Unrecorded struct {
	// Files are regular files no custody record acquired (bag paths).
	Files []string
	// Others are links, devices, FIFOs and sockets, which are never
	// followed or read: "data/x (symbolic link)".
	Others []string
}

// Unrecorded walks data/ without following links and lists what no custody
// record acquired. Temporary files of interrupted writes are skipped: they
// are never sealed.
func (c *Case) Unrecorded(ctx context.Context) (Unrecorded, error) {
	var u Unrecorded
	err := filepath.WalkDir(filepath.Join(c.root, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read case folder: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.Contains(d.Name(), tempSuffix) {
			return nil
		}
		rel, _ := filepath.Rel(c.root, p)
		bagPath := filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			u.Others = append(u.Others, fmt.Sprintf("%s (%s)", bagPath, fileKind(d.Type())))
			return nil
		}
		c.mu.Lock()
		known := c.collected(bagPath)
		c.mu.Unlock()
		if !known {
			u.Files = append(u.Files, bagPath)
		}
		return nil
	})
	return u, err
}

// fileKind names a non-regular file type for a message.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "not a regular file"
}

// Adopt hashes the regular file at bagPath, which no custody record
// acquired, and records it as "recovered" with its hash. The file is opened
// without following links or blocking, and refused unless regular.
func (c *Case) Adopt(ctx context.Context, bagPath string) (Item, error) {
	rel := strings.TrimPrefix(bagPath, "data/")
	if err := ValidItemPath(rel); err != nil || rel == bagPath {
		return Item{}, invalidf("rename or remove it", "cannot adopt %s: not a payload path a bag can hold", bagPath)
	}
	c.mu.Lock()
	known := c.collected(bagPath)
	c.mu.Unlock()
	if known {
		return Item{}, errExists(bagPath, "already acquired")
	}
	start := c.opts.Now()
	size, sum, err := hashNoFollow(ctx, filepath.Join(c.root, filepath.FromSlash(bagPath)), bagPath)
	if err != nil {
		return Item{}, err
	}
	it := c.newItem(bagPath, ItemInfo{Method: "recovered: found in the case without a custody record and adopted by the examiner (seal --adopt); its origin is not recorded"}, start)
	it.Size, it.SHA256, it.AcquisitionEnd = size, sum, FormatTime(c.opts.Now())
	if _, err := c.log.appendNow(ActionRecovered, it, map[string]string{bagPath: sum}); err != nil {
		return Item{}, err
	}
	c.mu.Lock()
	c.items[bagPath] = it
	c.mu.Unlock()
	return it, c.writeIndex()
}

// hashNoFollow hashes a regular file without following a final link or
// waiting on a FIFO.
func hashNoFollow(ctx context.Context, path, name string) (int64, string, error) {
	var o fastio.Opener
	defer o.Close()
	f, err := o.Open(path)
	if err != nil {
		return 0, "", &Error{Kind: ErrVerification, Msg: fmt.Sprintf("cannot read %s without following links", name), Err: err,
			hint: "preserve the case folder and investigate what put it there"}
	}
	defer f.Close()
	if !f.Regular() {
		return 0, "", &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s is not a regular file", name),
			hint: "preserve the case folder and investigate what put it there"}
	}
	h := NewHash()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
		m, err := f.ReadFull(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err != nil {
			return 0, "", fmt.Errorf("read %s: %w", name, err)
		}
		if m < len(buf) {
			break
		}
	}
	return n, hexSum(h), nil
}

// Dir returns the case folder.
func (c *Case) Dir() string { return c.root }

// Incident returns the incident ID.
func (c *Case) Incident() string { return c.opts.Incident }

// Log returns the custody log.
func (c *Case) Log() *Log { return c.log }

// Items returns the index entries sorted by path.
func (c *Case) Items() []Item {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Item, 0, len(c.items))
	for _, it := range c.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Has reports whether the item at data/<rel> is collected; actions use it to
// stay idempotent across resumes. An item recorded as not collected is not
// present: a resume retries it, and a successful acquisition supersedes the
// not-collected record in the index (the custody log keeps both). rel is
// the payload-relative path that Create, Add and NotCollected take.
func (c *Case) Has(rel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.collected("data/" + rel)
}

// Lookup returns the index entry of the item at data/<rel>, collected or
// not: an action resuming after a crash reads where an item came from and
// its hash.
func (c *Case) Lookup(rel string) (Item, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items["data/"+rel]
	return it, ok
}

// Record appends a custody record of any action (step records, releases),
// dated by the case's clock. A clock behind the last record is refused
// (ErrClockBackwards).
func (c *Case) Record(action string, details any, items map[string]string) (Record, error) {
	return c.log.appendNow(action, details, items)
}

// ValidItemPath decides which payload paths (relative to data/) a bag may
// hold; acquire, Create, NotCollected and SealDir all ask it. A path must be
// clean, relative, UTF-8, free of control characters other than CR, LF and
// tab (which manifests percent-encode or carry as they are), and must not use
// the marker of eksir's temporary files. Hidden names (.bash_history) are
// allowed: they are evidence like any other file.
func ValidItemPath(rel string) error {
	const hint = "use a relative path such as k8s/pods/NAME.json, or rename the file"
	switch {
	case rel == "" || !utf8.ValidString(rel):
		return invalidf(hint, "item path %q is empty or not UTF-8", rel)
	case path.IsAbs(rel) || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." || rel == ".":
		return invalidf(hint, "item path %q is not a clean relative path", rel)
	case strings.Contains(rel, tempSuffix):
		return invalidf(hint, "item path %q uses a name reserved for eksir's temporary files (%s)", rel, tempSuffix)
	}
	for _, r := range rel {
		if (r < 0x20 && r != '\r' && r != '\n' && r != '\t') || r == 0x7f {
			return invalidf(hint, "item path %q has a control character", rel)
		}
	}
	return nil
}

// ErrExists is returned by Create when the item is already in the case.
// Errors that wrap it are also ErrInvalidInput.
var ErrExists = errors.New("item already in the case")

func errExists(bagPath, why string) error {
	return &Error{Kind: ErrInvalidInput, Msg: bagPath + ": " + why, Err: ErrExists,
		hint: "name the item differently with --as PATH; evidence is never replaced"}
}

// Create starts a new item at data/<rel>. Bytes written are hashed as they
// are written, into a temporary file that Commit fsyncs and renames; the
// data is never read a second time.
func (c *Case) Create(rel string, info ItemInfo) (*ItemWriter, error) {
	if err := ValidItemPath(rel); err != nil {
		return nil, err
	}
	bagPath := "data/" + rel
	c.mu.Lock()
	exists := c.collected(bagPath) || c.pending[bagPath]
	if !exists {
		c.pending[bagPath] = true
	}
	c.mu.Unlock()
	if exists {
		return nil, errExists(bagPath, "already acquired")
	}
	final := filepath.Join(c.root, filepath.FromSlash(bagPath))
	if _, err := os.Lstat(final); err == nil {
		c.release(bagPath)
		return nil, errExists(bagPath, "a file is already there without a custody record (see seal --adopt)")
	}
	// The last record's time is read before the clock: a record appended
	// in between is then no false alarm.
	last := c.log.LastTime()
	start := c.opts.Now()
	if err := notBefore(start, last, "the acquisition of "+bagPath); err != nil {
		c.release(bagPath)
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(final), dirMode); err != nil {
		c.release(bagPath)
		return nil, fmt.Errorf("create %s: %w", bagPath, err)
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+tempSuffix+"*")
	if err != nil {
		c.release(bagPath)
		return nil, fmt.Errorf("create %s: %w", bagPath, err)
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		os.Remove(f.Name())
		c.release(bagPath)
		return nil, fmt.Errorf("create %s: %w", bagPath, err)
	}
	return &ItemWriter{c: c, f: f, final: final, h: NewHash(), item: c.newItem(bagPath, info, start)}, nil
}

func (c *Case) release(bagPath string) {
	c.mu.Lock()
	delete(c.pending, bagPath)
	c.mu.Unlock()
}

func (c *Case) newItem(bagPath string, info ItemInfo, start time.Time) Item {
	return Item{
		Path: bagPath, Status: StatusCollected, AcquisitionStart: FormatTime(start),
		Source: info.Source, Method: info.Method, Tool: c.opts.Tool, Collector: c.opts.Collector,
	}
}

// Add acquires everything r yields as data/<rel>.
func (c *Case) Add(ctx context.Context, rel string, info ItemInfo, r io.Reader) (Item, error) {
	w, err := c.Create(rel, info)
	if err != nil {
		return Item{}, err
	}
	if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
		w.Abort()
		return Item{}, err
	}
	return w.Commit()
}

// NotCollected records that an item could not be acquired, and why. An
// item already collected is refused (ErrExists); one already recorded as
// not collected gets a further record (a retry failed again).
func (c *Case) NotCollected(rel string, info ItemInfo, reason string) (Item, error) {
	if err := ValidItemPath(rel); err != nil {
		return Item{}, err
	}
	c.mu.Lock()
	exists := c.collected("data/" + rel)
	c.mu.Unlock()
	if exists {
		return Item{}, errExists("data/"+rel, "already acquired")
	}
	now := c.opts.Now()
	it := c.newItem("data/"+rel, info, now)
	it.Status, it.Reason, it.AcquisitionEnd = StatusNotCollected, reason, FormatTime(now)
	return it, c.commit(it)
}

func (c *Case) commit(it Item) error {
	action, items := ActionAcquired, map[string]string{it.Path: it.SHA256}
	if it.Status == StatusNotCollected {
		action, items = ActionNotCollected, nil
	}
	if _, err := c.log.appendNow(action, it, items); err != nil {
		return err
	}
	c.mu.Lock()
	c.index(it)
	delete(c.pending, it.Path)
	c.mu.Unlock()
	return nil
}

// Close writes metadata/items.json and closes the custody log.
func (c *Case) Close() error {
	err := c.writeIndex()
	return errors.Join(err, c.log.Close())
}

func (c *Case) writeIndex() error {
	b, err := MarshalIndex(Index{Incident: c.opts.Incident, Items: c.Items()})
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(c.root, "metadata", "items.json"), b, fileMode)
}

// MarshalIndex encodes an index the way it is stored: valid JSON with one
// item per line, so that a 100,000-item index is cheap to write and easy to
// grep.
func MarshalIndex(ix Index) ([]byte, error) {
	id, err := json.Marshal(ix.Incident)
	if err != nil {
		return nil, fmt.Errorf("encode items index: %w", err)
	}
	// Large indexes are encoded in one part per core and joined.
	parts := 1
	if len(ix.Items) >= 10000 {
		parts = runtime.GOMAXPROCS(0)
	}
	bufs := make([][]byte, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*len(ix.Items)/parts, (p+1)*len(ix.Items)/parts
		wg.Go(func() { bufs[p], errs[p] = encodeItems(ix.Items[lo:hi], lo == 0) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(64 + len(bufs[0])*parts)
	b.WriteString(`{"incident":`)
	b.Write(id)
	b.WriteString(`,"items":[`)
	for _, part := range bufs {
		b.Write(part)
	}
	b.WriteString("\n]}\n")
	return b.Bytes(), nil
}

// encodeItems writes items one per line, each preceded by a comma unless
// first is set and it is the first.
func encodeItems(items []Item, first bool) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range items {
		if i == 1 {
			// Size the buffer from the first item: growing a large
			// buffer step by step cost more than encoding into it.
			b.Grow((b.Len() + 64) * len(items))
		}
		if i > 0 || !first {
			b.WriteByte(',')
		}
		b.WriteString("\n  ")
		if err := enc.Encode(&items[i]); err != nil {
			return nil, fmt.Errorf("encode items index: %w", err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return b.Bytes(), nil
}

// ItemWriter streams one item into the case.
type ItemWriter struct {
	c     *Case
	f     *os.File
	final string
	h     hash.Hash
	n     int64
	item  Item
	done  bool
}

// Write writes p to the item and its hash.
func (w *ItemWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit makes the item durable and records it in the custody log.
func (w *ItemWriter) Commit() (Item, error) {
	if w.done {
		return Item{}, errors.New("item already committed or aborted")
	}
	w.done = true
	tmp := w.f.Name()
	fail := func(err error) (Item, error) {
		w.f.Close()
		os.Remove(tmp)
		w.c.release(w.item.Path)
		return Item{}, fmt.Errorf("commit %s: %w", w.item.Path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		return fail(err)
	}
	// A clock that moved back would stop the custody append after the
	// rename, leaving the file unrecorded: check before.
	last := w.c.log.LastTime()
	end := w.c.opts.Now()
	if err := notBefore(end, last, "the acquisition of "+w.item.Path); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, w.final); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(w.final)); err != nil {
		return Item{}, err
	}
	w.item.Size, w.item.SHA256, w.item.AcquisitionEnd = w.n, hexSum(w.h), FormatTime(end)
	return w.item, w.c.commit(w.item)
}

// Abort discards the partial item.
func (w *ItemWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
	w.c.release(w.item.Path)
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
