package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// decoders holds the zstd decoder of a File, made on first use and kept
// because making one per object is costly.
type decoders struct {
	z *zstd.Decoder
}

// zstd decodes one frame of at most limit bytes; the limit must be the
// same on every call.
func (d *decoders) zstd(src []byte, limit int64) ([]byte, error) {
	if d.z == nil {
		// The decoder refuses frames that declare or grow past the
		// limit before allocating for them.
		z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		d.z = z
	}
	out, err := d.z.DecodeAll(src, nil)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("zstd: payload larger than %d bytes", limit)
	}
	return out, nil
}

// decompressLZ4 decodes systemd's LZ4 framing: the decompressed size as a
// 64-bit little-endian number, then one LZ4 block.
func decompressLZ4(src []byte, limit int64) ([]byte, error) {
	if len(src) < 8 {
		return nil, errors.New("lz4: payload shorter than its size prefix")
	}
	size := binary.LittleEndian.Uint64(src)
	if size > uint64(limit) {
		return nil, fmt.Errorf("lz4: declared size %d exceeds the %d byte limit", size, limit)
	}
	out := make([]byte, size)
	n, err := lz4.UncompressBlock(src[8:], out)
	if err != nil {
		return nil, fmt.Errorf("lz4: %w", err)
	}
	if uint64(n) != size {
		return nil, fmt.Errorf("lz4: decoded %d bytes, declared %d", n, size)
	}
	return out, nil
}

// xzMagic opens every xz stream.
var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// decompressXZ decodes an xz stream as liblzma writes it for journald: one
// block with one LZMA2 filter. The container is parsed here rather than by
// an xz reader because the stream declares its own dictionary size, up to
// 4 GiB, and an xz reader would allocate that much on a hostile file; the
// dictionary never needs to exceed the output, which the limit bounds.
// Checksums and the index are not verified: the payload is what counts.
func decompressXZ(src []byte, limit int64) ([]byte, error) {
	const streamHeader = 12
	if len(src) < streamHeader+2 || !bytes.Equal(src[:6], xzMagic) {
		return nil, errors.New("xz: not an xz stream")
	}
	b := src[streamHeader:]
	if b[0] == 0 {
		// An index straight away: a stream without blocks.
		return []byte{}, nil
	}
	hsize := (int(b[0]) + 1) * 4
	if len(b) < hsize {
		return nil, errors.New("xz: block header past the end of the payload")
	}
	h := b[1:hsize]
	flags := h[0]
	if flags&0x03 != 0 {
		return nil, errors.New("xz: more than one filter")
	}
	p := 1
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			if _, n := binary.Uvarint(h[p:]); n <= 0 {
				return nil, errors.New("xz: bad size field in block header")
			} else {
				p += n
			}
		}
	}
	id, n := binary.Uvarint(h[p:])
	if n <= 0 || id != 0x21 {
		return nil, fmt.Errorf("xz: filter %#x is not LZMA2", id)
	}
	p += n
	psize, n := binary.Uvarint(h[p:])
	if n <= 0 || psize != 1 || p+n >= len(h) {
		return nil, errors.New("xz: bad LZMA2 filter properties")
	}
	dict, err := lzma.DecodeDictCap(h[p+n])
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	dict = max(min(dict, limit+1), lzma.MinDictCap)
	if dict > lzma.MaxDictCap {
		dict = lzma.MaxDictCap
	}
	r, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(bytes.NewReader(b[hsize:]))
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("xz: payload larger than %d bytes", limit)
	}
	return out, nil
}
