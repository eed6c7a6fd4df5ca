package fastio

import (
	"archive/tar"
	"bytes"
)

// HeaderRenderer renders tar headers (with any PAX records) with
// archive/tar, so that goroutines other than the one writing the archive
// can format them. One tar.Writer serves every header: what WriteHeader
// writes is captured, then the entry's content is "written" as zeros that
// go nowhere, which leaves the writer ready for the next header. A new
// tar.Writer per file was a large part of sealing's garbage with many small
// files. A HeaderRenderer is for one goroutine.
type HeaderRenderer struct {
	tw      *tar.Writer
	capture bool
	buf     []byte
}

// NewHeaderRenderer returns a renderer.
func NewHeaderRenderer() *HeaderRenderer {
	r := &HeaderRenderer{}
	r.tw = tar.NewWriter(headerSink{r})
	return r
}

// headerSink keeps Write off HeaderRenderer's exported methods.
type headerSink struct{ r *HeaderRenderer }

func (s headerSink) Write(p []byte) (int, error) {
	if s.r.capture {
		s.r.buf = append(s.r.buf, p...)
	}
	return len(p), nil
}

// Render returns exactly the bytes a tar.Writer writes for h before the
// entry's content. The content, padded with zeros to a multiple of 512
// bytes, must follow it in the archive.
func (r *HeaderRenderer) Render(h *tar.Header) ([]byte, error) {
	r.buf, r.capture = r.buf[:0], true
	err := r.tw.WriteHeader(h)
	r.capture = false
	if err != nil {
		return nil, err
	}
	hdr := bytes.Clone(r.buf)
	for left := h.Size; left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := r.tw.Write(zeros[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	return hdr, r.tw.Flush()
}

// zeros feeds the renderer's skipped content.
var zeros [64 << 10]byte
