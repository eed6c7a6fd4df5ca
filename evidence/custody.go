package evidence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"
)

// Custody actions. Later packages add step records through Case.Record.
const (
	ActionAcquired     = "acquired"
	ActionNotCollected = "not-collected"
	ActionSealed       = "sealed"
	ActionTransferred  = "transferred"
	ActionVerified     = "verified"
	ActionReleased     = "released"
	ActionRecovered    = "recovered"
	// ActionReceived is the receiving side of a hand-over: a lab that
	// fetched the archive and re-verified it.
	ActionReceived = "received"
)

// TimeFormat is RFC 3339 in UTC with nanoseconds, fixed width so that records
// and indexes sort and compare as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime renders t in TimeFormat, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// GenesisPrev is the prev value of a chain's first record.
const GenesisPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one line of a custody log. On disk a record is one line of JSON
// with the members in this order and "sig" last. The signature is Ed25519
// over the line with its `,"sig":"..."` member removed; prev is the SHA-256
// of the previous line (without its newline). See docs/evidence-format.md.
type Record struct {
	Seq     int64             `json:"seq"`
	Time    string            `json:"time"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Details json.RawMessage   `json:"details,omitempty"`
	Items   map[string]string `json:"items,omitempty"`
	Prev    string            `json:"prev"`
	Key     string            `json:"key"`
	Sig     string            `json:"sig,omitempty"`
}

const sigMember = `,"sig":"`

// chainHead is the position a new record continues from.
type chainHead struct {
	Seq  int64  // seq of the last record, 0 for an empty chain
	Hash string // SHA-256 of the last line, GenesisPrev for an empty chain
}

func emptyHead() chainHead { return chainHead{Hash: GenesisPrev} }

// next returns the head after line.
func (h chainHead) next(line []byte) chainHead { return chainHead{Seq: h.Seq + 1, Hash: SumHex(line)} }

// signRecord fills seq, prev and key from head and signer, and returns the
// signed line (without newline).
func signRecord(head chainHead, signer *Signer, rec Record) ([]byte, Record, error) {
	rec.Seq = head.Seq + 1
	rec.Prev = head.Hash
	rec.Key = signer.ID()
	rec.Sig = ""
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, rec, fmt.Errorf("encode custody record: %w", err)
	}
	sig := ed25519.Sign(signer.priv, body)
	rec.Sig = base64.StdEncoding.EncodeToString(sig)
	line := make([]byte, 0, len(body)+len(sigMember)+len(rec.Sig)+2)
	line = append(line, body[:len(body)-1]...)
	line = append(line, sigMember...)
	line = append(line, rec.Sig...)
	line = append(line, '"', '}')
	return line, rec, nil
}

// newRecord builds a record whose details are v encoded as JSON.
func newRecord(actor, action string, at time.Time, details any, items map[string]string) (Record, error) {
	rec := Record{Time: FormatTime(at), Actor: actor, Action: action, Items: items}
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return rec, fmt.Errorf("encode %s details: %w", action, err)
		}
		rec.Details = b
	}
	return rec, nil
}

// splitSigned separates a line into the signed body and the signature.
func splitSigned(line []byte) (body, sig []byte, err error) {
	i := bytes.LastIndex(line, []byte(sigMember))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, nil, errors.New("no signature member at the end of the record")
	}
	sig, err = base64.StdEncoding.DecodeString(string(line[i+len(sigMember) : len(line)-2]))
	if err != nil {
		return nil, nil, fmt.Errorf("signature is not base64: %w", err)
	}
	body = make([]byte, 0, i+1)
	body = append(append(body, line[:i]...), '}')
	return body, sig, nil
}

// RecordCheck is the verdict on one custody record.
type RecordCheck struct {
	Record  Record `json:"record"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	// Source names the file the record came from.
	Source string `json:"source"`
}

// ChainResult is the outcome of replaying a custody chain.
type ChainResult struct {
	Records []RecordCheck `json:"records"`
	Head    chainHead     `json:"-"`
	OK      bool          `json:"ok"`
}

// replayChain replays lines from start. Records signed by keys outside keys
// fail (a nil keys checks the chain links and times only, not signatures), as do records whose times run backwards (from after, then from each
// other) and records longer than maxLine. Any problem marks that record and
// every later one as broken, since later links can no longer be trusted.
func replayChain(r io.Reader, source string, start chainHead, after string, keys KeyRing, maxLine int, res *ChainResult) error {
	br := bufio.NewReaderSize(r, 1<<16)
	head := start
	broken := false
	last := after
	for {
		line, err := readLine(br, maxLine)
		if len(line) == 0 && err == io.EOF {
			break
		}
		check := RecordCheck{Source: source, OK: true}
		switch {
		case errors.Is(err, errLineTooLong):
			check.OK, check.Problem = false, fmt.Sprintf("record longer than the %d bytes a custody record may have", maxLine)
			res.Records = append(res.Records, check)
			res.Head, res.OK = head, false
			return nil
		case err != nil && err != io.EOF:
			return err
		case !bytes.HasSuffix(line, []byte("\n")):
			check.OK, check.Problem = false, "last record is cut off (no newline)"
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		problem := checkLine(line, head, keys, &check.Record)
		if problem == "" {
			problem = checkTime(check.Record.Time, last)
		}
		if problem != "" && check.OK {
			check.OK, check.Problem = false, problem
		}
		if broken && check.OK {
			check.OK, check.Problem = false, "follows a broken record"
		}
		if !check.OK {
			broken = true
		}
		if check.Record.Time > last {
			last = check.Record.Time
		}
		head = head.next(line)
		res.Records = append(res.Records, check)
	}
	res.Head = head
	res.OK = !broken
	return nil
}

// checkTime returns what is wrong with a record's time t after a record
// of time last, or "". TimeFormat is fixed width: text order is time order.
func checkTime(t, last string) string {
	at, err := time.Parse(TimeFormat, t)
	switch {
	case err != nil || FormatTime(at) != t:
		return fmt.Sprintf("time %q is not a time as eksir writes it", t)
	case t < last:
		return fmt.Sprintf("time %s is before the previous record's %s: custody times never run backwards", t, last)
	}
	return ""
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line with its newline, of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// checkLine verifies one line against the expected head and the keys, and
// decodes it into rec. It returns "" or what is wrong.
func checkLine(line []byte, head chainHead, keys KeyRing, rec *Record) string {
	body, sig, err := splitSigned(line)
	if err != nil {
		_ = json.Unmarshal(line, rec)
		return err.Error()
	}
	if err := json.Unmarshal(body, rec); err != nil {
		return "not a JSON record: " + err.Error()
	}
	rec.Sig = base64.StdEncoding.EncodeToString(sig)
	switch {
	case rec.Seq != head.Seq+1:
		return fmt.Sprintf("seq %d where %d was expected (a record was removed, inserted or reordered)", rec.Seq, head.Seq+1)
	case rec.Prev != head.Hash:
		return "prev does not match the hash of the previous record (the chain was altered)"
	}
	if keys == nil {
		return "" // links only: ReadCase without a key to check signatures with
	}
	pub, ok := keys[rec.Key]
	if !ok {
		return fmt.Sprintf("signed by key %s, which is not trusted (pass its public key with --pubkey)", rec.Key)
	}
	if !ed25519.Verify(pub, body, sig) {
		return "signature does not verify (the record was edited)"
	}
	return ""
}

// Log is an append-only custody log file: one signed record per line,
// fsynced per record. It is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	signer *Signer
	actor  string
	head   chainHead
	recs   []Record
	now    func() time.Time
	// last is the time of the last record; a new record may not precede it.
	last time.Time
}

// ErrClockBackwards is returned when a record would be dated before the last
// record of its chain: the clock moved back, an event the examiner must see
// rather than one hidden by clamping.
var ErrClockBackwards = errors.New("clock is behind the custody log")

// notBefore refuses at when it precedes last, naming both times.
func notBefore(at, last time.Time, what string) error {
	if last.IsZero() || !at.Before(last) {
		return nil
	}
	return &Error{Kind: ErrInvalidInput, Err: ErrClockBackwards,
		Msg:  fmt.Sprintf("%s would be dated %s, before the last custody record (%s)", what, FormatTime(at), FormatTime(last)),
		hint: "custody records never run backwards: check the system clock (NTP) and try again; if the clock was wrong when the earlier record was written, note it in the case file"}
}

// recordTime parses a record's time; the zero time when it cannot.
func recordTime(rec Record) time.Time {
	t, err := time.Parse(time.RFC3339Nano, rec.Time)
	if err != nil {
		return time.Time{}
	}
	return t
}

// OpenLog opens or creates the log at path. A record cut off by a crash (no
// final newline) was never acknowledged: it is moved to path+".torn" and a
// "recovered" record says so, so nothing is silently dropped.
func OpenLog(path string, signer *Signer, actor string, now func() time.Time) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open custody log: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	l := &Log{f: f, path: path, signer: signer, actor: actor, head: emptyHead(), now: now}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read custody log: %w", err)
	}
	var torn []byte
	if i := bytes.LastIndexByte(data, '\n'); i != len(data)-1 {
		torn = data[i+1:]
		data = data[:i+1]
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec Record
		body, _, err := splitSigned(line)
		if err == nil {
			err = json.Unmarshal(body, &rec)
		}
		if err == nil && (rec.Seq != l.head.Seq+1 || rec.Prev != l.head.Hash) {
			err = errors.New("chain link broken")
		}
		if err != nil {
			f.Close()
			return nil, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("custody log %s: record %d", path, n+1), Err: err,
				hint: "the case's custody log was altered; preserve the folder as it is and escalate"}
		}
		l.recs = append(l.recs, rec)
		l.head = l.head.next(line)
		if t := recordTime(rec); t.After(l.last) {
			l.last = t
		}
	}
	if torn != nil {
		if err := l.recoverTorn(int64(len(data)), torn); err != nil {
			f.Close()
			return nil, err
		}
	}
	return l, nil
}

func (l *Log) recoverTorn(complete int64, torn []byte) error {
	saved := fmt.Sprintf("%s.torn-%d", l.path, l.head.Seq+1)
	if err := writeFileSync(saved, torn, fileMode); err != nil {
		return err
	}
	if err := l.f.Truncate(complete); err != nil {
		return fmt.Errorf("recover custody log: %w", err)
	}
	details := map[string]any{"torn_bytes": len(torn), "torn_sha256": SumHex(torn), "saved_as": saved,
		"reason": "a record was cut off by a crash before it was acknowledged"}
	_, err := l.appendNow(ActionRecovered, details, nil)
	return err
}

// Head returns the hash of the last record and the record count.
func (l *Log) Head() (hash string, count int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head.Hash, l.head.Seq
}

// Records returns a copy of the records read or written so far.
func (l *Log) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.recs...)
}

// Append signs and durably appends a record. It refuses (ErrClockBackwards)
// a time before the last record's.
func (l *Log) Append(action string, at time.Time, details any, items map[string]string) (Record, error) {
	return l.append(action, func() time.Time { return at }, details, items)
}

// appendNow appends a record dated by the log's clock, read under the lock
// so that concurrent writers' records stay in time order.
func (l *Log) appendNow(action string, details any, items map[string]string) (Record, error) {
	return l.append(action, l.now, details, items)
}

func (l *Log) append(action string, now func() time.Time, details any, items map[string]string) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := now()
	if err := notBefore(at, l.last, "the "+action+" record"); err != nil {
		return Record{}, err
	}
	rec, err := newRecord(l.actor, action, at, details, items)
	if err != nil {
		return rec, err
	}
	line, rec, err := signRecord(l.head, l.signer, rec)
	if err != nil {
		return rec, err
	}
	if err := l.appendLocked(line, rec); err != nil {
		return rec, err
	}
	return rec, nil
}

func (l *Log) appendLocked(line []byte, rec Record) error {
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("append custody record: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync custody log: %w", err)
	}
	l.head = l.head.next(line)
	l.recs = append(l.recs, rec)
	if t := recordTime(rec); t.After(l.last) {
		l.last = t
	}
	return nil
}

// LastTime returns the time of the last record, or the zero time.
func (l *Log) LastTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }

// Actor describes who acts: the OS user and host, unless told otherwise.
func Actor(name string) string {
	if name != "" {
		return name
	}
	host, _ := os.Hostname()
	name = "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return strings.TrimSuffix(name+"@"+host, "@")
}
