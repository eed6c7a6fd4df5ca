package journal

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// signature opens every journal file.
const signature = "LPKSHHRH"

// Header incompatible flags: a reader that does not know one of them must
// not read the file, because objects would be misread.
const (
	IncompatibleCompressedXZ   = 1 << 0
	IncompatibleCompressedLZ4  = 1 << 1
	IncompatibleKeyedHash      = 1 << 2
	IncompatibleCompressedZSTD = 1 << 3
	IncompatibleCompact        = 1 << 4

	knownIncompatible = IncompatibleCompressedXZ | IncompatibleCompressedLZ4 |
		IncompatibleKeyedHash | IncompatibleCompressedZSTD | IncompatibleCompact
)

// File states as the header records them.
const (
	StateOffline  = 0
	StateOnline   = 1
	StateArchived = 2
)

// Object types used here.
const (
	objectData       = 1
	objectEntry      = 3
	objectEntryArray = 6
)

// Object flags: the compression of a data object's payload.
const (
	objCompressedXZ   = 1 << 0
	objCompressedLZ4  = 1 << 1
	objCompressedZSTD = 1 << 2
	objCompressedMask = objCompressedXZ | objCompressedLZ4 | objCompressedZSTD
)

// Layout sizes and offsets (little endian throughout).
const (
	objectHeaderSize = 16
	// minHeaderSize covers every header field this reader uses (up to
	// tail_entry_monotonic); the oldest files still in use are larger.
	minHeaderSize = 208

	dataPayloadRegular = 64
	dataPayloadCompact = 72
	entryItemsOffset   = 64
	arrayItemsOffset   = 24
)

// ErrUnsupported is wrapped by Open when a file uses an incompatible
// feature this reader does not implement.
var ErrUnsupported = errors.New("unsupported journal file")

// ErrNotJournal is wrapped by Open when the data is not a journal file at
// all (wrong signature or an impossible header).
var ErrNotJournal = errors.New("not a journal file")

// ID128 is a systemd 128-bit ID (machine, boot, file or seqnum source).
type ID128 [16]byte

// String formats the ID as 32 lowercase hex digits, as journalctl does.
func (id ID128) String() string { return hex.EncodeToString(id[:]) }

// Header is the part of a journal file header that describes the file.
type Header struct {
	CompatibleFlags   uint32
	IncompatibleFlags uint32
	State             uint8
	FileID            ID128
	MachineID         ID128
	SeqnumID          ID128
	HeaderSize        uint64
	ArenaSize         uint64
	NEntries          uint64
	EntryArrayOffset  uint64
	HeadSeqnum        uint64
	TailSeqnum        uint64
	HeadRealtime      uint64
	TailRealtime      uint64
}

// Compact reports whether the file uses compact mode (32-bit offsets in
// entry items and entry arrays).
func (h Header) Compact() bool { return h.IncompatibleFlags&IncompatibleCompact != 0 }

func parseHeader(b []byte, size int64) (Header, error) {
	var h Header
	if len(b) < minHeaderSize || string(b[:8]) != signature {
		return h, fmt.Errorf("%w: bad signature", ErrNotJournal)
	}
	le := binary.LittleEndian
	h.CompatibleFlags = le.Uint32(b[8:])
	h.IncompatibleFlags = le.Uint32(b[12:])
	h.State = b[16]
	copy(h.FileID[:], b[24:40])
	copy(h.MachineID[:], b[40:56])
	copy(h.SeqnumID[:], b[72:88])
	h.HeaderSize = le.Uint64(b[88:])
	h.ArenaSize = le.Uint64(b[96:])
	h.NEntries = le.Uint64(b[152:])
	h.TailSeqnum = le.Uint64(b[160:])
	h.HeadSeqnum = le.Uint64(b[168:])
	h.EntryArrayOffset = le.Uint64(b[176:])
	h.HeadRealtime = le.Uint64(b[184:])
	h.TailRealtime = le.Uint64(b[192:])

	if unknown := h.IncompatibleFlags &^ knownIncompatible; unknown != 0 {
		return h, fmt.Errorf("%w: unknown incompatible flags %#x (known: %s)",
			ErrUnsupported, unknown, flagNames(knownIncompatible))
	}
	if h.HeaderSize < minHeaderSize || h.HeaderSize > uint64(size) || h.HeaderSize%8 != 0 {
		return h, fmt.Errorf("%w: header size %d in a file of %d bytes", ErrNotJournal, h.HeaderSize, size)
	}
	return h, nil
}

// flagNames names incompatible flags for messages.
func flagNames(f uint32) string {
	var names []string
	for _, n := range []struct {
		bit  uint32
		name string
	}{
		{IncompatibleCompressedXZ, "COMPRESSED-XZ"},
		{IncompatibleCompressedLZ4, "COMPRESSED-LZ4"},
		{IncompatibleKeyedHash, "KEYED-HASH"},
		{IncompatibleCompressedZSTD, "COMPRESSED-ZSTD"},
		{IncompatibleCompact, "COMPACT"},
	} {
		if f&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, " ")
}
