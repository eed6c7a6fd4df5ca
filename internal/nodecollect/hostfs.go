package nodecollect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

// ErrNotRegular is returned by ReadFile and RemoveFile for anything that is
// not a regular file, symlinks included.
var ErrNotRegular = errors.New("not a regular file")

// hostPath turns a user path ("/var/log/pods" or "var/log/pods") into a
// name relative to the root. Escapes ("..", symlinks leaving the root) are
// left for os.Root to refuse.
func hostPath(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// ListDoc is the document of the list artefact.
type ListDoc struct {
	Envelope
	Root    string      `json:"root"`
	Path    string      `json:"path"`
	Entries []FileEntry `json:"entries"`
}

// FileEntry is one non-directory entry under the listed path.
type FileEntry struct {
	// Path is relative to the root, '/'-separated.
	Path string `json:"path"`
	// Type is file, symlink, fifo, socket, char, block or other (modeType).
	Type  string `json:"type"`
	Size  int64  `json:"size"`
	Mode  string `json:"mode"`
	MTime string `json:"mtime"`
	// Target is a symlink's target, which is never followed.
	Target string `json:"target,omitempty"`
}

// List walks p under the host root dir and lists every non-directory
// entry, recursively, without following symlinks. Unreadable directories
// are reported in errors and skipped.
func (c *Collector) List(ctx context.Context, dir, p string) (*ListDoc, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("list: open root: %w", err)
	}
	defer root.Close()
	var e errs
	env := c.envelope("list", &e)
	rel := hostPath(p)
	top, err := root.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", rel, err)
	}
	doc := &ListDoc{Root: dir, Path: rel, Entries: []FileEntry{}}
	if !top.IsDir() {
		// fs.WalkDir would stat, and so follow, a symlink given as PATH.
		doc.Entries = append(doc.Entries, c.fileEntry(root, rel, top, &e))
		finish(&env, &e)
		doc.Envelope = env
		return doc, nil
	}
	fsys := root.FS()
	err = fs.WalkDir(fsys, rel, func(name string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			e.list = append(e.list, ItemError{Path: name, Error: errText(err)})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			e.list = append(e.list, ItemError{Path: name, Error: errText(err)})
			return nil
		}
		doc.Entries = append(doc.Entries, c.fileEntry(root, name, fi, &e))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", rel, err)
	}
	finish(&env, &e)
	doc.Envelope = env
	return doc, nil
}

func (c *Collector) fileEntry(root *os.Root, name string, fi fs.FileInfo, e *errs) FileEntry {
	ent := FileEntry{Path: name, Type: modeType(fi.Mode()), Size: fi.Size(), Mode: fi.Mode().String(),
		MTime: fi.ModTime().UTC().Format(time.RFC3339Nano)}
	if ent.Type == "symlink" {
		t, err := root.Readlink(name)
		if err != nil {
			e.list = append(e.list, ItemError{Path: name, Error: errText(err)})
		}
		ent.Target = t
	}
	return ent
}

// openRegular opens p under root for reading, refusing anything whose own
// entry (not a symlink's target) is not a regular file, and checks that
// what was opened is the file that was checked.
func openRegular(root *os.Root, p string) (*os.File, fs.FileInfo, error) {
	before, err := root.Lstat(p)
	if err != nil {
		return nil, nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w (%s)", p, ErrNotRegular, modeType(before.Mode()))
	}
	// O_NONBLOCK so that a FIFO swapped in after the check cannot hang us.
	f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	after, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !after.Mode().IsRegular() || !os.SameFile(before, after) {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (changed while opened)", p, ErrNotRegular)
	}
	return f, after, nil
}

// ReadFile copies the regular file p under the host root dir to w, raw.
// It returns the number of bytes copied.
func ReadFile(ctx context.Context, w io.Writer, dir, p string) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("read: open root: %w", err)
	}
	defer root.Close()
	f, _, err := openRegular(root, hostPath(p))
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, ctxReader{ctx, f})
	if err != nil {
		return n, fmt.Errorf("read %s: %w", p, err)
	}
	return n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

// RemoveDoc is the document of the remove artefact.
type RemoveDoc struct {
	Envelope
	Path string `json:"path"`
	Size int64  `json:"size"`
	// SHA256 is the hash of the file as removed, when a hash was required.
	SHA256 string `json:"sha256,omitempty"`
	// Removed is false when the file was already gone, which is success:
	// removing twice leaves the node as removing once does.
	Removed bool `json:"removed"`
}

// ErrHashMismatch is returned by RemoveFile when the file does not hash
// to the SHA-256 it must have; the file is left in place.
var ErrHashMismatch = errors.New("file does not hash to the expected SHA-256")

// RemoveFile deletes the regular file p under the host root dir. It exists
// for checkpoint archives, which hold a container's memory and must not
// stay on the node once copied. With wantSHA256 set, the file is removed
// only if it hashes to it: eksir removes exactly the bytes it holds a copy
// of, never a file swapped in meanwhile.
func (c *Collector) RemoveFile(ctx context.Context, dir, p, wantSHA256 string) (*RemoveDoc, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("remove: open root: %w", err)
	}
	defer root.Close()
	var e errs
	env := c.envelope("remove", &e)
	rel := hostPath(p)
	doc := &RemoveDoc{Path: path.Clean(rel)}
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("remove: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("remove %s: %w (%s)", rel, ErrNotRegular, modeType(fi.Mode()))
	default:
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if wantSHA256 != "" {
			sum, err := hashRegular(ctx, root, rel)
			if err != nil {
				return nil, fmt.Errorf("remove: %w", err)
			}
			if sum != wantSHA256 {
				return nil, fmt.Errorf("remove %s: %w: it hashes to %s, not %s; left in place", rel, ErrHashMismatch, sum, wantSHA256)
			}
			doc.SHA256 = sum
		}
		if err := root.Remove(rel); err != nil {
			return nil, fmt.Errorf("remove: %w", err)
		}
		doc.Size, doc.Removed = fi.Size(), true
	}
	finish(&env, &e)
	doc.Envelope = env
	return doc, nil
}

// hashRegular returns the SHA-256 of the regular file rel under root.
func hashRegular(ctx context.Context, root *os.Root, rel string) (string, error) {
	f, _, err := openRegular(root, rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("hash %s: %w", rel, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
