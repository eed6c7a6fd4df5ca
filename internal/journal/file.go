package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits bound the work and memory one File may take, so that a hostile
// file cannot exhaust the collector.
type Limits struct {
	// MaxDataSize is the largest payload of one data object, before and
	// after decompression.
	MaxDataSize int64
	// MaxFileData is the total of payload bytes (decompressed, counted
	// each time an entry lists them) one File may deliver over its life;
	// reading stops with a CorruptError past it. It bounds the work a file
	// whose entries all list the same large object can cause.
	MaxFileData int64
	// MaxItems is the largest number of fields one entry may have.
	MaxItems int
}

// DefaultLimits are the limits Open uses: 64 MiB per data object, 4 GiB
// of payload per file and 65536 fields per entry, far above what journald
// writes yet bounded for a collector pod.
var DefaultLimits = Limits{MaxDataSize: 64 << 20, MaxFileData: 4 << 30, MaxItems: 1 << 16}

// Field is one FIELD=VALUE pair of an entry.
type Field struct {
	Name  string
	Value []byte
}

// Entry is one journal entry: its metadata from the entry object and its
// fields in the order the entry lists them.
type Entry struct {
	// Offset is where the entry object starts in its file.
	Offset    int64
	Seqnum    uint64
	Realtime  uint64 // µs since the epoch
	Monotonic uint64 // µs since boot
	BootID    ID128
	XorHash   uint64
	Fields    []Field
}

// CorruptError says where a file stopped making sense; the entries before
// it have been delivered.
type CorruptError struct {
	Offset  int64  // offset of the object or item found inconsistent
	Reason  string // what was wrong
	Entries int    // entries delivered before the inconsistency
}

// Error says where and why reading stopped.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("inconsistent at offset %d: %s (reading stopped after %d entries)", e.Offset, e.Reason, e.Entries)
}

// File is an open journal file. It is not safe for concurrent use.
type File struct {
	h      Header
	size   int64
	lim    Limits
	p      pager
	cache  dataCache
	dec    decoders
	output int64 // payload bytes delivered so far, against lim.MaxFileData
}

// Open reads and checks the header of the journal file r of size bytes,
// with DefaultLimits. It fails (wrapping ErrNotJournal or ErrUnsupported)
// only when the file cannot be read at all; damage further in is reported
// by Walk.
func Open(r io.ReaderAt, size int64) (*File, error) {
	return OpenWithLimits(r, size, DefaultLimits)
}

// OpenWithLimits is Open with explicit limits; zero fields take the
// default.
func OpenWithLimits(r io.ReaderAt, size int64, lim Limits) (*File, error) {
	if lim.MaxDataSize <= 0 {
		lim.MaxDataSize = DefaultLimits.MaxDataSize
	}
	if lim.MaxFileData <= 0 {
		lim.MaxFileData = DefaultLimits.MaxFileData
	}
	if lim.MaxItems <= 0 {
		lim.MaxItems = DefaultLimits.MaxItems
	}
	f := &File{size: size, lim: lim, p: pager{r: r, size: size}}
	var b [minHeaderSize]byte
	if size < minHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a header", ErrNotJournal, size)
	}
	if err := f.p.read(0, b[:]); err != nil {
		return nil, fmt.Errorf("read journal header: %w", err)
	}
	h, err := parseHeader(b[:], size)
	if err != nil {
		return nil, err
	}
	f.h = h
	return f, nil
}

// Header returns the file header.
func (f *File) Header() Header { return f.h }

// itemSize is the size of an entry array item and an entry item.
func (f *File) itemSizes() (arrayItem, entryItem int64) {
	if f.h.Compact() {
		return 4, 4
	}
	return 8, 16
}

// Walk calls fn for every entry of the file in file order, following the
// entry array chain from the header. It returns nil when the chain ends
// cleanly after the header's entry count, a *CorruptError when it stops at
// an inconsistency (the entries before it have been passed to fn), ctx's
// error when cancelled, or fn's error.
func (f *File) Walk(ctx context.Context, fn func(*Entry) error) error {
	arrayItem, _ := f.itemSizes()
	want := f.h.NEntries
	var seen uint64
	corrupt := func(off int64, format string, args ...any) error {
		return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...), Entries: int(seen)}
	}
	// Arrays and entries are appended, so the chain and the entries it
	// lists move forward through the file, each object past the end of
	// the one before; insisting on that bounds the walk by the file size
	// and rules out cycles and overlapping objects.
	var lastArray, arrayEnd, lastEntry, entryEnd int64
	arr := f.h.EntryArrayOffset
	var items [512]byte
	for arr != 0 && seen < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		off, err := f.checkOffset(arr)
		if err != nil {
			return corrupt(int64(min(arr, 1<<62)), "entry array: %v", err)
		}
		if off < arrayEnd || off <= lastArray {
			return corrupt(off, "entry array chain goes backwards (from %d)", lastArray)
		}
		var hdr [arrayItemsOffset]byte
		size, err := f.objectHeader(off, objectEntryArray, hdr[:])
		if err != nil {
			return corrupt(off, "entry array: %v", err)
		}
		next := binary.LittleEndian.Uint64(hdr[16:])
		n := (size - arrayItemsOffset) / arrayItem
		for i := int64(0); i < n && seen < want; {
			chunk := min(n-i, int64(len(items))/arrayItem)
			buf := items[:chunk*arrayItem]
			if err := f.p.read(off+arrayItemsOffset+i*arrayItem, buf); err != nil {
				return corrupt(off, "entry array items: %v", err)
			}
			for j := int64(0); j < chunk && seen < want; j++ {
				var p uint64
				if arrayItem == 4 {
					p = uint64(binary.LittleEndian.Uint32(buf[j*4:]))
				} else {
					p = binary.LittleEndian.Uint64(buf[j*8:])
				}
				if p == 0 {
					// The unused tail of an array: the file ends here.
					return corrupt(off+arrayItemsOffset+(i+j)*arrayItem,
						"entry array ends after %d of the %d entries the header counts", seen, want)
				}
				eoff, err := f.checkOffset(p)
				if err != nil {
					return corrupt(off, "entry array item %d: %v", i+j, err)
				}
				if eoff < entryEnd || eoff <= lastEntry {
					return corrupt(eoff, "entry array item %d goes backwards (from %d)", i+j, lastEntry)
				}
				e, esize, err := f.readEntry(eoff)
				if err != nil {
					var ce *CorruptError
					if errors.As(err, &ce) {
						ce.Entries = int(seen)
						return ce
					}
					return corrupt(eoff, "entry: %v", err)
				}
				lastEntry, entryEnd = eoff, eoff+esize
				seen++
				if err := fn(e); err != nil {
					return err
				}
				if seen%256 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
			}
			i += chunk
		}
		lastArray, arrayEnd = off, off+size
		arr = next
	}
	if seen < want {
		return corrupt(lastArray, "entry array chain ends after %d of the %d entries the header counts", seen, want)
	}
	return nil
}

// checkOffset validates an object offset: aligned, past the header, inside
// the file.
func (f *File) checkOffset(p uint64) (int64, error) {
	if p%8 != 0 {
		return 0, fmt.Errorf("offset %d not 8-byte aligned", p)
	}
	if p < f.h.HeaderSize || p > uint64(f.size)-objectHeaderSize || f.size < objectHeaderSize {
		return 0, fmt.Errorf("offset %d outside the file (%d bytes)", p, f.size)
	}
	return int64(p), nil
}

// objectHeader reads the first len(buf) bytes of the object at off and
// checks its type and size; it returns the object size.
func (f *File) objectHeader(off int64, typ byte, buf []byte) (int64, error) {
	if off > f.size-int64(len(buf)) {
		return 0, fmt.Errorf("object header past the end of the file (%d bytes)", f.size)
	}
	if err := f.p.read(off, buf); err != nil {
		return 0, err
	}
	if buf[0] != typ {
		return 0, fmt.Errorf("object type %d, want %d", buf[0], typ)
	}
	size := binary.LittleEndian.Uint64(buf[8:])
	if size < uint64(len(buf)) {
		return 0, fmt.Errorf("object size %d too small", size)
	}
	if size > uint64(f.size-off) {
		return 0, fmt.Errorf("object size %d runs past the end of the file (%d bytes)", size, f.size)
	}
	return int64(size), nil
}

// readEntry reads the entry object at off and the data objects it lists;
// it returns the entry and the size of its object.
func (f *File) readEntry(off int64) (*Entry, int64, error) {
	_, entryItem := f.itemSizes()
	var hdr [entryItemsOffset]byte
	size, err := f.objectHeader(off, objectEntry, hdr[:])
	if err != nil {
		return nil, 0, &CorruptError{Offset: off, Reason: "entry: " + err.Error()}
	}
	body := size - entryItemsOffset
	if body%entryItem != 0 {
		return nil, 0, &CorruptError{Offset: off, Reason: fmt.Sprintf("entry size %d is not a whole number of items", size)}
	}
	n := body / entryItem
	if n > int64(f.lim.MaxItems) {
		return nil, 0, &CorruptError{Offset: off, Reason: fmt.Sprintf("entry has %d items, more than %d", n, f.lim.MaxItems)}
	}
	le := binary.LittleEndian
	e := &Entry{
		Offset:    off,
		Seqnum:    le.Uint64(hdr[16:]),
		Realtime:  le.Uint64(hdr[24:]),
		Monotonic: le.Uint64(hdr[32:]),
		XorHash:   le.Uint64(hdr[56:]),
		Fields:    make([]Field, 0, n),
	}
	copy(e.BootID[:], hdr[40:56])
	items := make([]byte, body)
	if err := f.p.read(off+entryItemsOffset, items); err != nil {
		return nil, 0, &CorruptError{Offset: off, Reason: "entry items: " + err.Error()}
	}
	var xor uint64
	hashes := make([]uint64, 0, n)
	for i := int64(0); i < n; i++ {
		var p uint64
		if entryItem == 4 {
			p = uint64(le.Uint32(items[i*4:]))
		} else {
			p = le.Uint64(items[i*16:])
		}
		doff, err := f.checkOffset(p)
		if err != nil {
			return nil, 0, &CorruptError{Offset: off, Reason: fmt.Sprintf("entry item %d: %v", i, err)}
		}
		payload, err := f.readData(doff)
		if err != nil {
			return nil, 0, &CorruptError{Offset: doff, Reason: fmt.Sprintf("data object of entry at %d: %v", off, err)}
		}
		h := jenkins64(payload)
		xor ^= h
		hashes = append(hashes, h)
		eq := bytes.IndexByte(payload, '=')
		if eq <= 0 {
			// Not a FIELD=VALUE pair: journalctl has nothing to show
			// for it either, and it says nothing about the rest.
			continue
		}
		e.Fields = append(e.Fields, Field{Name: string(payload[:eq]), Value: bytes.Clone(payload[eq+1:])})
	}
	if xor != e.XorHash && !inSpan(xor^e.XorHash, hashes) {
		return nil, 0, &CorruptError{Offset: off, Reason: fmt.Sprintf("entry hash %#x does not match its data (%#x)", e.XorHash, xor)}
	}
	return e, size, nil
}

// readData returns the (decompressed) payload of the data object at off.
// The result may be shared with the cache and must not be modified.
func (f *File) readData(off int64) ([]byte, error) {
	b, err := f.readPayload(off)
	if err != nil {
		return nil, err
	}
	f.output += int64(len(b))
	if f.output > f.lim.MaxFileData {
		return nil, fmt.Errorf("payloads of the file exceed the %d byte limit", f.lim.MaxFileData)
	}
	return b, nil
}

func (f *File) readPayload(off int64) ([]byte, error) {
	if b, ok := f.cache.get(off); ok {
		return b, nil
	}
	payloadOff := int64(dataPayloadRegular)
	if f.h.Compact() {
		payloadOff = dataPayloadCompact
	}
	var hdr [dataPayloadCompact]byte
	size, err := f.objectHeader(off, objectData, hdr[:payloadOff])
	if err != nil {
		return nil, err
	}
	n := size - payloadOff
	if n > f.lim.MaxDataSize {
		return nil, fmt.Errorf("data object of %d bytes exceeds the %d byte limit", n, f.lim.MaxDataSize)
	}
	raw := make([]byte, n)
	if err := f.p.read(off+payloadOff, raw); err != nil {
		return nil, err
	}
	flags := hdr[1] & objCompressedMask
	if flags != 0 {
		raw, err = f.decompress(flags, raw)
		if err != nil {
			return nil, err
		}
	}
	f.cache.put(off, raw)
	return raw, nil
}

// decompress undoes the compression flags names, within the limits.
func (f *File) decompress(flags byte, src []byte) ([]byte, error) {
	budget := min(f.lim.MaxDataSize, f.lim.MaxFileData-f.output)
	if budget <= 0 {
		return nil, fmt.Errorf("payloads of the file exceed the %d byte limit", f.lim.MaxFileData)
	}
	var out []byte
	var err error
	switch flags {
	case objCompressedXZ:
		out, err = decompressXZ(src, budget)
	case objCompressedLZ4:
		out, err = decompressLZ4(src, budget)
	case objCompressedZSTD:
		out, err = f.dec.zstd(src, f.lim.MaxDataSize)
		if err == nil && int64(len(out)) > budget {
			err = fmt.Errorf("zstd: payload larger than %d bytes", budget)
		}
	default:
		return nil, fmt.Errorf("object flags %#x name more than one compression", flags)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pager reads the file in pages it keeps a few of, because an entry, its
// new data objects and the array pointing at it usually sit close together
// and each ReadAt is a system call.
type pager struct {
	r     io.ReaderAt
	size  int64
	pages [pagerPages]page
	clock int
}

const (
	pageSize   = 64 << 10
	pagerPages = 16
)

type page struct {
	off  int64
	data []byte // nil when unused
	used bool
}

// read fills buf from off, which the caller has bounds-checked.
func (p *pager) read(off int64, buf []byte) error {
	if off < 0 || off > p.size-int64(len(buf)) {
		return fmt.Errorf("read of %d bytes at %d past the end of the file (%d bytes)", len(buf), off, p.size)
	}
	// Big reads bypass the cache: they would only evict useful pages.
	if len(buf) > pageSize {
		n, err := p.r.ReadAt(buf, off)
		switch {
		case n == len(buf):
			return nil
		case err == nil || errors.Is(err, io.EOF):
			return fmt.Errorf("read at %d: file shorter than its size", off)
		default:
			return fmt.Errorf("read at %d: %w", off, err)
		}
	}
	for len(buf) > 0 {
		base := off - off%pageSize
		pg, err := p.page(base)
		if err != nil {
			return err
		}
		in := off - base
		if in >= int64(len(pg)) {
			return fmt.Errorf("read at %d: file shorter than its size", off)
		}
		c := copy(buf, pg[in:])
		buf = buf[c:]
		off += int64(c)
	}
	return nil
}

func (p *pager) page(base int64) ([]byte, error) {
	for i := range p.pages {
		if pg := &p.pages[i]; pg.data != nil && pg.off == base {
			pg.used = true
			return pg.data, nil
		}
	}
	// Second-chance eviction: cheap and good enough for 16 pages.
	for {
		pg := &p.pages[p.clock]
		p.clock = (p.clock + 1) % pagerPages
		if pg.used {
			pg.used = false
			continue
		}
		n := min(int64(pageSize), p.size-base)
		if pg.data == nil {
			pg.data = make([]byte, pageSize)
		}
		got, err := p.r.ReadAt(pg.data[:n], base)
		if err != nil && !(errors.Is(err, io.EOF) && got == int(n)) {
			pg.data = nil
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read at %d: file shorter than its size", base)
			}
			return nil, fmt.Errorf("read at %d: %w", base, err)
		}
		pg.off, pg.used = base, true
		pg.data = pg.data[:n]
		return pg.data, nil
	}
}

// dataCache keeps the payloads of small data objects, because the same
// few (host name, unit, boot ID, UID) are listed by nearly every entry.
type dataCache struct {
	m map[int64][]byte
}

const (
	cacheMaxPayload = 512
	cacheMaxObjects = 4096
)

func (c *dataCache) get(off int64) ([]byte, bool) {
	b, ok := c.m[off]
	return b, ok
}

func (c *dataCache) put(off int64, b []byte) {
	if len(b) > cacheMaxPayload {
		return
	}
	if c.m == nil || len(c.m) >= cacheMaxObjects {
		c.m = make(map[int64][]byte, 256)
	}
	c.m[off] = b
}

// inSpan reports whether x is the XOR of some of the values vs. journald
// hashes an entry's fields before it drops repeated identical ones, so an
// entry that was logged with a field twice has an xor_hash that leaves
// that field's hash out (or counts it once too often); the difference is
// then the XOR of some item hashes. Any other difference means damage: for
// a few dozen items a random 64-bit difference passes with odds of about
// 2^-40.
func inSpan(x uint64, vs []uint64) bool {
	var basis [64]uint64 // basis[b] has b as its highest bit
	for _, v := range vs {
		for b := 63; b >= 0 && v != 0; b-- {
			if v>>b&1 == 0 {
				continue
			}
			if basis[b] == 0 {
				basis[b] = v
				break
			}
			v ^= basis[b]
		}
	}
	for b := 63; b >= 0 && x != 0; b-- {
		if x>>b&1 == 1 {
			if basis[b] == 0 {
				return false
			}
			x ^= basis[b]
		}
	}
	return x == 0
}
