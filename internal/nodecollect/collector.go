// Package nodecollect builds the volatile-evidence artefacts of an EKS node
// from a /proc tree (process list, sockets, open files, memory maps, mounts,
// environment names, kernel modules, routes, neighbours) and host files for
// node logs. Each artefact is one JSON document with a common envelope; the
// eksir-collector command writes exactly one per run so that eksir can hash
// it as it streams into the evidence case.
//
// The package reads only text under /proc and files under a host root; it
// needs no tool in the container image and links nothing but the standard
// library and golang.org/x/sys.
package nodecollect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SchemaURL identifies version 1 of the document layout described by
// docs/collector.schema.json.
const SchemaURL = "https://eksir.io/schemas/collector/v1"

// ClockTicks is USER_HZ, the unit of the times in /proc/PID/stat. The kernel
// fixes it at 100 for every architecture EKS runs on (amd64, arm64), so it
// is a constant rather than a sysconf call, which would need cgo.
const ClockTicks = 100

// Collector reads one /proc tree. The zero value is not usable: set Proc.
type Collector struct {
	// Proc is the proc root, normally "/proc".
	Proc string
	// Self is the collector's own PID as seen in Proc; 0 resolves it from
	// Proc/self and falls back to os.Getpid.
	Self int
	// Now stamps collected_at; nil means time.Now.
	Now func() time.Time
	// Redact replaces secret-looking command-line values (see RedactArgs).
	Redact bool
	// Version is the collector's build version, reported in every document.
	Version string
	// SelfExe is the file hashed as the collector binary; "" means
	// /proc/self/exe (the running binary, whatever Proc is).
	SelfExe string
}

// Selector chooses the processes an artefact is about. At most one field is
// set; the zero Selector selects nothing.
type Selector struct {
	// PodUID selects processes whose cgroup maps to this pod UID; '-' and
	// '_' are interchangeable and case is ignored.
	PodUID string
	// AllExceptSelf selects every visible process except the collector and
	// those of its ancestors that run in its own container (same mount
	// namespace and cgroups), for a collector in an ephemeral container
	// sharing the suspect's PID namespace.
	AllExceptSelf bool
	// Node, for sockets only, selects the network namespace of PID 1.
	Node bool
}

// IsZero reports whether the selector selects nothing.
func (s Selector) IsZero() bool { return s.PodUID == "" && !s.AllExceptSelf && !s.Node }

// ErrNoSelector is returned by an artefact that needs processes selected
// when the selector is empty.
var ErrNoSelector = errors.New("no processes selected: a pod UID or all-except-self is required")

// Envelope is the part common to every document.
type Envelope struct {
	Schema      string        `json:"schema"`
	Artefact    string        `json:"artefact"`
	Collector   CollectorInfo `json:"collector"`
	Host        HostInfo      `json:"host"`
	CollectedAt string        `json:"collected_at"`
	Proc        string        `json:"proc"`
	Selector    SelectorInfo  `json:"selector"`
	// Errors lists what could not be read. A process that exited while it
	// was read is not an error and is left out silently.
	Errors []ItemError `json:"errors"`
}

// CollectorInfo identifies the binary that wrote a document.
type CollectorInfo struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// HostInfo identifies the node, as seen through Proc.
type HostInfo struct {
	Hostname string `json:"hostname"`
	Kernel   string `json:"kernel"`
	BootID   string `json:"boot_id"`
}

// SelectorInfo records how processes were selected.
type SelectorInfo struct {
	// Kind is "none", "pod-uid", "all-except-self" or "node".
	Kind   string `json:"kind"`
	PodUID string `json:"pod_uid,omitempty"`
	// SelfPID and Excluded are set for all-except-self.
	SelfPID  int   `json:"self_pid,omitempty"`
	Excluded []int `json:"excluded_pids,omitempty"`
}

// ItemError is one thing that could not be read.
type ItemError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// errs accumulates per-item errors.
type errs struct{ list []ItemError }

// add records err for path unless it only says the process is gone.
func (e *errs) add(path string, err error) {
	if err == nil || vanished(err) {
		return
	}
	e.list = append(e.list, ItemError{Path: path, Error: errText(err)})
}

// errText drops the path os errors repeat, which the Path field holds.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// vanished reports whether err means the process exited under us: its
// /proc directory is gone (ENOENT) or the task is being reaped (ESRCH).
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) path(elem ...string) string {
	return filepath.Join(append([]string{c.Proc}, elem...)...)
}

func (c *Collector) pidPath(pid int, elem ...string) string {
	return filepath.Join(append([]string{c.Proc, strconv.Itoa(pid)}, elem...)...)
}

// selfPID returns the collector's PID in Proc's PID namespace.
func (c *Collector) selfPID() int {
	if c.Self > 0 {
		return c.Self
	}
	if t, err := os.Readlink(c.path("self")); err == nil {
		if n, err := strconv.Atoi(t); err == nil {
			return n
		}
	}
	return os.Getpid()
}

// envelope fills the common part of a document.
func (c *Collector) envelope(artefact string, e *errs) Envelope {
	env := Envelope{
		Schema:      SchemaURL,
		Artefact:    artefact,
		Collector:   CollectorInfo{Version: c.Version},
		CollectedAt: c.now().UTC().Format(time.RFC3339Nano),
		Proc:        c.Proc,
		Selector:    SelectorInfo{Kind: "none"},
	}
	sum, err := c.selfSHA256()
	e.add("collector sha256", err)
	env.Collector.SHA256 = sum
	read := func(p string) string {
		b, err := os.ReadFile(c.path(p))
		e.add(c.path(p), err)
		return strings.TrimSpace(string(b))
	}
	env.Host = HostInfo{
		Hostname: read("sys/kernel/hostname"),
		Kernel:   read("sys/kernel/osrelease"),
		BootID:   read("sys/kernel/random/boot_id"),
	}
	return env
}

func (c *Collector) selfSHA256() (string, error) {
	p := c.SelfExe
	if p == "" {
		p = "/proc/self/exe"
	}
	return hashFile(p)
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// finish attaches the collected errors, in the order they were met (by PID).
func finish(env *Envelope, e *errs) {
	env.Errors = e.list
	if env.Errors == nil {
		env.Errors = []ItemError{}
	}
}

// Write encodes doc as one JSON document followed by a newline. It encodes
// into memory first so that a document that cannot be encoded leaves
// nothing half-written on w.
func Write(w io.Writer, doc any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode document: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	return nil
}

// VersionDoc is the document of the version artefact.
type VersionDoc struct {
	Envelope
	Version VersionInfo `json:"version"`
}

// VersionInfo lets eksir check that the binary it delivered arrived intact.
type VersionInfo struct {
	Version   string `json:"version"`
	SHA256    string `json:"sha256"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
}

// VersionDocument reports the collector's version and the SHA-256 of its
// own executable. Unlike the other artefacts it fails when the hash cannot
// be computed, since the hash is its whole point.
func (c *Collector) VersionDocument() (*VersionDoc, error) {
	var e errs
	env := c.envelope("version", &e)
	if env.Collector.SHA256 == "" {
		_, err := c.selfSHA256()
		return nil, fmt.Errorf("hash the collector binary: %w", err)
	}
	finish(&env, &e)
	return &VersionDoc{Envelope: env, Version: VersionInfo{
		Version:   c.Version,
		SHA256:    env.Collector.SHA256,
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
	}}, nil
}
