package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Read buffers come in three sizes, so that 100,000 small files do not each
// take (and zero) a megabyte, and big files move in few large reads.
const (
	tinyBuf  = 4 << 10
	smallBuf = 64 << 10
	bigBuf   = 1 << 20
)

var bufPools = [...]struct {
	size int
	pool sync.Pool
}{{size: tinyBuf}, {size: smallBuf}, {size: bigBuf}}

func getBuf(remaining int64) *[]byte {
	i := 0
	for i < len(bufPools)-1 && remaining > int64(bufPools[i].size) {
		i++
	}
	if b, ok := bufPools[i].pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, bufPools[i].size)
	return &b
}

func putBuf(b *[]byte) {
	for i := range bufPools {
		if cap(*b) == bufPools[i].size {
			bufPools[i].pool.Put(b)
			return
		}
	}
}

// tarBlock is tar's record unit: every entry's content is padded to it.
const tarBlock = 512

// headerRenderer renders a file's tar header (with any PAX records) with
// archive/tar on a reader goroutine. One tar.Writer serves every file of a
// reader: what WriteHeader writes is captured, then the entry's content is
// "written" as zeros that go nowhere, which leaves the writer ready for the
// next header. A new tar.Writer per file was a quarter of seal's garbage with
// 100,000 files.
type headerRenderer struct {
	aw      *archiveWriter
	tw      *tar.Writer
	capture bool
	buf     []byte
}

func newHeaderRenderer(aw *archiveWriter) *headerRenderer {
	r := &headerRenderer{aw: aw}
	r.tw = tar.NewWriter(r)
	return r
}

func (r *headerRenderer) Write(p []byte) (int, error) {
	if r.capture {
		r.buf = append(r.buf, p...)
	}
	return len(p), nil
}

func (r *headerRenderer) render(name string, size int64) ([]byte, error) {
	r.buf, r.capture = r.buf[:0], true
	err := r.tw.WriteHeader(r.aw.header(name, size, false))
	r.capture = false
	if err != nil {
		return nil, fmt.Errorf("write archive: %w", err)
	}
	hdr := bytes.Clone(r.buf)
	for left := size; left > 0; {
		n := min(left, int64(len(zeroChunk)))
		if _, err := r.tw.Write(zeroChunk[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	return hdr, r.tw.Flush()
}

// zeroChunk feeds headerRenderer's skipped content and the writer's padding.
var zeroChunk [64 << 10]byte

type chunk struct {
	buf *[]byte
	n   int
}

// readJob is one payload file travelling from a reader to the writer.
type readJob struct {
	pf payloadFile
	// ready is closed once pf.size is known (or err is set). A file that
	// fits one buffer is read whole before that, into whole, so the writer
	// needs no channel for it; bigger files stream through chunks.
	ready  chan struct{}
	header []byte // the file's tar header, rendered by the reader
	whole  *chunk
	chunks chan chunk
	sum    string
	err    error
}

// writePayload reads and hashes files on opts.Workers goroutines and writes
// them into the tar in order. Lookahead is bounded: at most 2 chunks per
// file in flight and 256 files queued, so memory stays small.
func (aw *archiveWriter) writePayload(ctx context.Context, files []payloadFile, opts SealOptions) (map[string]string, error) {
	var total int64
	for _, f := range files {
		total += max(f.size, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *readJob)
	ordered := make(chan *readJob, 256)
	var wg sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dirs dirCache
			defer dirs.close()
			headers := newHeaderRenderer(aw)
			for j := range work {
				readFile(ctx, &dirs, j, headers.render)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		for _, pf := range files {
			j := &readJob{pf: pf, ready: make(chan struct{})}
			select {
			case work <- j:
			case <-ctx.Done():
				return
			}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	sums := make(map[string]string, len(files))
	var done int64
	i := 0
	for j := range ordered {
		<-j.ready
		if j.err != nil {
			return nil, j.err
		}
		files[i].size = j.pf.size
		i++
		name := j.pf.bagPath
		if err := aw.parents(name); err != nil {
			return nil, err
		}
		// Headers come pre-rendered by the readers (formatting 100,000 of
		// them here was a fifth of this loop); the tar writer only pads
		// its last entry before the raw header goes out.
		if err := aw.tw.Flush(); err != nil {
			return nil, fmt.Errorf("write archive: %w", err)
		}
		if _, err := aw.raw.Write(j.header); err != nil {
			return nil, fmt.Errorf("write archive: %w", err)
		}
		write := func(c chunk) error {
			_, err := aw.raw.Write((*c.buf)[:c.n])
			putBuf(c.buf)
			if err != nil {
				return fmt.Errorf("write %s into archive: %w", j.pf.bagPath, err)
			}
			done += int64(c.n)
			return nil
		}
		if j.whole != nil {
			if err := write(*j.whole); err != nil {
				return nil, err
			}
		} else if j.chunks != nil {
			for c := range j.chunks {
				if err := write(c); err != nil {
					return nil, err
				}
			}
		}
		if j.err != nil {
			return nil, j.err
		}
		if pad := -j.pf.size & (tarBlock - 1); pad > 0 {
			if _, err := aw.raw.Write(zeroChunk[:pad]); err != nil {
				return nil, fmt.Errorf("write archive: %w", err)
			}
		}
		if j.pf.want != "" && j.pf.want != j.sum {
			return nil, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s changed after acquisition: sha256 %s at acquisition, %s now", j.pf.bagPath, j.pf.want, j.sum),
				hint: "the seal was aborted and nothing was written; preserve the case folder and investigate"}
		}
		sums[j.pf.bagPath] = j.sum
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}

// readFile hashes one file while handing its bytes to the writer.
func readFile(ctx context.Context, dirs *dirCache, j *readJob, render func(name string, size int64) ([]byte, error)) {
	f, err := j.open(dirs)
	if err == nil {
		j.header, err = render(j.pf.bagPath, j.pf.size)
		if err != nil {
			f.close()
		}
	}
	if err != nil {
		j.err = err
		close(j.ready)
		return
	}
	defer f.close()
	h := NewHash()
	if j.pf.size <= smallBuf {
		buf := getBuf(j.pf.size)
		m, err := j.read(f, (*buf)[:j.pf.size], 0)
		if err != nil {
			putBuf(buf)
			j.err = err
		} else {
			h.Write((*buf)[:m])
			j.sum = hexSum(h)
			j.whole = &chunk{buf, m}
		}
		close(j.ready)
		return
	}
	j.chunks = make(chan chunk, 2)
	close(j.ready)
	defer close(j.chunks)
	// Read exactly the size fstat gave: the tar header already promises it,
	// and it spares a read per file just to see EOF.
	var n int64
	for n < j.pf.size {
		buf := getBuf(j.pf.size - n)
		want := min(int64(len(*buf)), j.pf.size-n)
		m, err := j.read(f, (*buf)[:want], n)
		if err != nil {
			putBuf(buf)
			j.err = err
			return
		}
		h.Write((*buf)[:m])
		n += int64(m)
		select {
		case j.chunks <- chunk{buf, m}:
		case <-ctx.Done():
			putBuf(buf)
			j.err = ctx.Err()
			return
		}
	}
	j.sum = hexSum(h)
}

// read fills p from f, which is at offset done of the file.
func (j *readJob) read(f payloadHandle, p []byte, done int64) (int, error) {
	m, err := f.readFull(p)
	switch {
	case err != nil:
		return 0, invalidErr(err, "check that the file is readable", "cannot read %s", j.pf.bagPath)
	case m < len(p):
		return 0, fmt.Errorf("%s shrank while sealing (%d of %d bytes): %w", j.pf.bagPath, done+int64(m), j.pf.size, ErrInvalidInput)
	}
	return m, nil
}

// open opens the file without following links or blocking on a FIFO, and
// learns its size.
func (j *readJob) open(dirs *dirCache) (payloadHandle, error) {
	f, size, regular, err := dirs.open(j.pf.diskPath)
	if err != nil {
		return f, invalidErr(err, "check that the file is readable and not a link", "cannot read %s", j.pf.bagPath)
	}
	switch {
	case !regular:
		f.close()
		return f, invalidf("remove it or copy its content into a regular file", "%s is not a regular file", j.pf.bagPath)
	case j.pf.size >= 0 && size != j.pf.size:
		f.close()
		return f, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s changed after acquisition (size %d, acquired %d)", j.pf.bagPath, size, j.pf.size),
			hint: "the seal was aborted and nothing was written; preserve the case folder and investigate"}
	}
	j.pf.size = size
	return f, nil
}
