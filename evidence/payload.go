package evidence

import (
	"context"
	"fmt"
	"sync"

	"github.com/eksir/eksir/internal/fastio"
)

// tarBlock is tar's record unit: every entry's content is padded to it.
const tarBlock = 512

// zeroPad feeds the padding after an entry's content.
var zeroPad [tarBlock]byte

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
			var opener fastio.Opener
			defer opener.Close()
			headers := fastio.NewHeaderRenderer()
			render := func(name string, size int64) ([]byte, error) {
				hdr, err := headers.Render(aw.header(name, size, false))
				if err != nil {
					return nil, fmt.Errorf("write archive: %w", err)
				}
				return hdr, nil
			}
			for j := range work {
				readFile(ctx, &opener, j, render)
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
		// Headers come pre-rendered by the readers, which keeps their
		// formatting off this loop; the tar writer only pads its last
		// entry before the raw header goes out.
		if err := aw.tw.Flush(); err != nil {
			return nil, fmt.Errorf("write archive: %w", err)
		}
		if _, err := aw.raw.Write(j.header); err != nil {
			return nil, fmt.Errorf("write archive: %w", err)
		}
		write := func(c chunk) error {
			_, err := aw.raw.Write((*c.buf)[:c.n])
			fastio.PutBuffer(c.buf)
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
			if _, err := aw.raw.Write(zeroPad[:pad]); err != nil {
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
func readFile(ctx context.Context, opener *fastio.Opener, j *readJob, render func(name string, size int64) ([]byte, error)) {
	f, err := j.open(opener)
	if err == nil {
		j.header, err = render(j.pf.bagPath, j.pf.size)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		j.err = err
		close(j.ready)
		return
	}
	defer f.Close()
	h := NewHash()
	if j.pf.size <= fastio.WholeFile {
		buf := fastio.GetBuffer(j.pf.size)
		m, err := j.read(f, (*buf)[:j.pf.size], 0)
		if err != nil {
			fastio.PutBuffer(buf)
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
		buf := fastio.GetBuffer(j.pf.size - n)
		want := min(int64(len(*buf)), j.pf.size-n)
		m, err := j.read(f, (*buf)[:want], n)
		if err != nil {
			fastio.PutBuffer(buf)
			j.err = err
			return
		}
		h.Write((*buf)[:m])
		n += int64(m)
		select {
		case j.chunks <- chunk{buf, m}:
		case <-ctx.Done():
			fastio.PutBuffer(buf)
			j.err = ctx.Err()
			return
		}
	}
	j.sum = hexSum(h)
}

// read fills p from f, which is at offset done of the file.
func (j *readJob) read(f fastio.File, p []byte, done int64) (int, error) {
	m, err := f.ReadFull(p)
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
func (j *readJob) open(opener *fastio.Opener) (fastio.File, error) {
	f, err := opener.Open(j.pf.diskPath)
	if err != nil {
		return f, invalidErr(err, "check that the file is readable and not a link", "cannot read %s", j.pf.bagPath)
	}
	switch {
	case !f.Regular():
		f.Close()
		return f, invalidf("remove it or copy its content into a regular file", "%s is not a regular file", j.pf.bagPath)
	case j.pf.size >= 0 && f.Size() != j.pf.size:
		f.Close()
		return f, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s changed after acquisition (size %d, acquired %d)", j.pf.bagPath, f.Size(), j.pf.size),
			hint: "the seal was aborted and nothing was written; preserve the case folder and investigate"}
	}
	j.pf.size = f.Size()
	return f, nil
}
