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

	mu      sync.Mutex
	items   map[string]Item
	pending map[string]bool
}

// OpenCase opens the incident's case folder, creating it if needed, and
// recovers from an interrupted run: files that reached data/ without a
// custody record are hashed and recorded, so nothing acquired is lost.
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
	for _, d := range []string{opts.Dir, root, filepath.Join(root, "data"), filepath.Join(root, "metadata")} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("create case folder: %w", err)
		}
	}
	log, err := OpenLog(filepath.Join(root, "metadata", "custody.jsonl"), opts.Signer, opts.Actor, opts.Now)
	if err != nil {
		return nil, err
	}
	c := &Case{root: root, opts: opts, log: log, items: map[string]Item{}, pending: map[string]bool{}}
	for _, rec := range log.Records() {
		if rec.Action != ActionAcquired && rec.Action != ActionNotCollected {
			continue
		}
		var it Item
		if err := json.Unmarshal(rec.Details, &it); err != nil {
			log.Close()
			return nil, fmt.Errorf("custody record %d: %w", rec.Seq, err)
		}
		c.items[it.Path] = it
	}
	recovered, err := c.recoverUnrecorded(ctx)
	if err != nil {
		log.Close()
		return nil, err
	}
	// Close writes the index; only a recovery changes it before then.
	if recovered > 0 {
		return c, c.writeIndex()
	}
	return c, nil
}

func errNoKey() error {
	return invalidf("create a key with 'eksir keygen --out FILE', then pass --key FILE or set EKSIR_SIGNING_KEY", "no signing key: evidence is never written unsigned")
}

// recoverUnrecorded records files in data/ that a crash left without a
// custody record (the crash came between rename and append). Temporary files
// of interrupted writes are left in place and never sealed.
func (c *Case) recoverUnrecorded(ctx context.Context) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(c.root, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(d.Name(), tempSuffix) {
			return err
		}
		rel, _ := filepath.Rel(c.root, p)
		bagPath := filepath.ToSlash(rel)
		if _, ok := c.items[bagPath]; ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("recover %s: %w", bagPath, err)
		}
		defer f.Close()
		h := NewHash()
		start := c.opts.Now()
		size, err := io.Copy(h, f)
		if err != nil {
			return fmt.Errorf("recover %s: %w", bagPath, err)
		}
		it := c.newItem(bagPath, ItemInfo{Method: "recovered: found in the case without a custody record after an interrupted acquisition"}, start)
		it.Size, it.SHA256, it.AcquisitionEnd = size, hexSum(h), FormatTime(c.opts.Now())
		n++
		return c.commit(it)
	})
	return n, err
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

// Has reports whether the item at data/<rel> is already recorded, collected
// or not collected; actions use it to stay idempotent across resumes. rel
// is the payload-relative path that Create, Add and NotCollected take.
func (c *Case) Has(rel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items["data/"+rel]
	return ok
}

// Record appends a custody record of any action (step records, releases).
func (c *Case) Record(action string, details any, items map[string]string) (Record, error) {
	return c.log.Append(action, c.opts.Now(), details, items)
}

// ValidItemPath checks a payload path relative to data/: clean, relative,
// UTF-8, no control characters, no hidden components.
func ValidItemPath(rel string) error {
	const hint = "use a relative path such as k8s/pods/NAME.json"
	switch {
	case rel == "" || !utf8.ValidString(rel):
		return invalidf(hint, "item path %q is empty or not UTF-8", rel)
	case path.IsAbs(rel) || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == "..":
		return invalidf(hint, "item path %q is not a clean relative path", rel)
	case strings.Contains(rel, tempSuffix):
		return invalidf(hint, "item path %q uses a reserved name", rel)
	}
	for _, r := range rel {
		if r < 0x20 || r == 0x7f {
			return invalidf(hint, "item path %q has a control character", rel)
		}
	}
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return invalidf(hint, "item path %q has a hidden component", rel)
		}
	}
	return nil
}

// ErrExists is returned by Create when the item is already in the case.
var ErrExists = errors.New("item already in the case")

// Create starts a new item at data/<rel>. Bytes written are hashed as they
// are written, into a temporary file that Commit fsyncs and renames; the
// data is never read a second time.
func (c *Case) Create(rel string, info ItemInfo) (*ItemWriter, error) {
	if err := ValidItemPath(rel); err != nil {
		return nil, err
	}
	bagPath := "data/" + rel
	c.mu.Lock()
	_, exists := c.items[bagPath]
	exists = exists || c.pending[bagPath]
	if !exists {
		c.pending[bagPath] = true
	}
	c.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("%s: %w", bagPath, ErrExists)
	}
	final := filepath.Join(c.root, filepath.FromSlash(bagPath))
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
	return &ItemWriter{c: c, f: f, final: final, h: NewHash(), item: c.newItem(bagPath, info, c.opts.Now())}, nil
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

// NotCollected records that an item could not be acquired, and why.
func (c *Case) NotCollected(rel string, info ItemInfo, reason string) (Item, error) {
	if err := ValidItemPath(rel); err != nil {
		return Item{}, err
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
	if _, err := c.log.Append(action, c.opts.Now(), it, items); err != nil {
		return err
	}
	c.mu.Lock()
	c.items[it.Path] = it
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
	if err := os.Rename(tmp, w.final); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(w.final)); err != nil {
		return Item{}, err
	}
	w.item.Size, w.item.SHA256, w.item.AcquisitionEnd = w.n, hexSum(w.h), FormatTime(w.c.opts.Now())
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
