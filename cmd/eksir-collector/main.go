// Command eksir-collector is the static collector eksir delivers into a
// collector pod on an EKS node. Each run writes one artefact, as one JSON
// document on stdout (read writes raw bytes), and needs nothing from the
// container image. See docs/collector.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/eksir/eksir/internal/journal"
	"github.com/eksir/eksir/internal/nodecollect"
)

// version is stamped with -ldflags '-X main.version=...'.
var version = "dev"

const usage = `usage: eksir-collector [--proc DIR] [--no-redact] COMMAND [flags] [args]

artefacts (one JSON document on stdout):
  version                                   version and sha256 of this binary
  processes  [--pod-uid UID | --all-except-self]
  sockets    --pod-uid UID | --all-except-self | --node
  files      --pod-uid UID | --all-except-self
  maps       --pod-uid UID | --all-except-self
  mounts     --pod-uid UID | --all-except-self
  environ    --pod-uid UID | --all-except-self
  modules | routes | neighbours
  journal --root DIR [--unit U]... PATH     journal entries of the files under PATH, as journalctl -o json lines
  list   --root DIR PATH                    files under PATH (symlinks not followed)
  remove --root DIR [--sha256 HEX] PATH     delete one regular file under DIR (only if it hashes to HEX)
other:
  read   --root DIR PATH                    raw bytes of one regular file under DIR
  idle                                      wait for SIGTERM or SIGINT

global flags (before or after COMMAND):
  --proc DIR     proc root (default /proc)
  --no-redact    keep secret-looking command-line values
`

// usageError is bad usage: exit 2 with a hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and maps its outcome to the exit code: 0 when
// the artefact was written (even with per-item errors inside it), 1 when it
// could not be produced, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue) || errors.Is(err, nodecollect.ErrNoSelector):
		fmt.Fprintf(stderr, "eksir-collector: error: %v\nhint: run 'eksir-collector --help' for usage\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "eksir-collector: error: %v\n", err)
		return 1
	}
}

// options are the flags every command accepts.
type options struct {
	proc          string
	noRedact      bool
	podUID        string
	allExceptSelf bool
	node          bool
	root          string
	sha256        string
	units         stringList
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	global := newFlagSet("eksir-collector", &o)
	if err := global.Parse(args); err != nil {
		return flagError(err)
	}
	if global.NArg() == 0 {
		return usageError{"no command given"}
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	fs := newFlagSet(cmd, &o)
	switch cmd {
	case "processes", "sockets", "files", "maps", "mounts", "environ":
		fs.StringVar(&o.podUID, "pod-uid", "", "select the processes of the pod with this UID")
		fs.BoolVar(&o.allExceptSelf, "all-except-self", false, "select every process but the collector's own")
		if cmd == "sockets" {
			fs.BoolVar(&o.node, "node", false, "the node's network namespace (PID 1's)")
		}
	case "list", "read", "remove", "journal":
		fs.StringVar(&o.root, "root", "", "host root directory that PATH is resolved under")
		if cmd == "journal" {
			fs.Var(&o.units, "unit", "a systemd unit whose entries to export (repeatable; none: every entry)")
		}
		if cmd == "remove" {
			fs.StringVar(&o.sha256, "sha256", "", "remove only if the file hashes to this SHA-256")
		}
	case "version", "modules", "routes", "neighbours", "idle":
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if err := fs.Parse(rest); err != nil {
		return flagError(err)
	}
	c := &nodecollect.Collector{Proc: o.proc, Redact: !o.noRedact, Version: version}
	sel, err := o.selector(cmd)
	if err != nil {
		return err
	}
	var hostPath string
	switch cmd {
	case "list", "read", "remove", "journal":
		if o.root == "" || fs.NArg() != 1 {
			return usageError{cmd + " needs --root DIR and one PATH"}
		}
		hostPath = fs.Arg(0)
	default:
		if fs.NArg() != 0 {
			return usageError{fmt.Sprintf("%s takes no arguments, got %q", cmd, strings.Join(fs.Args(), " "))}
		}
	}

	var doc any
	switch cmd {
	case "idle":
		<-ctx.Done()
		return nil
	case "read":
		_, err := nodecollect.ReadFile(ctx, stdout, o.root, hostPath)
		return err
	case "journal":
		return exportJournal(ctx, stdout, stderr, o.root, hostPath, o.units)
	case "version":
		doc, err = c.VersionDocument()
	case "processes":
		var pd *nodecollect.ProcessesDoc
		if pd, err = c.Processes(ctx, sel); err == nil {
			n := 0
			for _, p := range pd.Processes {
				if p.Selected {
					n++
				}
			}
			// eksir warns when a pod's processes are not found.
			fmt.Fprintf(stderr, "eksir-collector: processes: %d selected\n", n)
		}
		doc = pd
	case "sockets":
		doc, err = c.Sockets(ctx, sel)
	case "files":
		doc, err = c.Files(ctx, sel)
	case "maps":
		doc, err = c.Maps(ctx, sel)
	case "mounts":
		doc, err = c.Mounts(ctx, sel)
	case "environ":
		doc, err = c.Environ(ctx, sel)
	case "modules":
		doc, err = c.Modules(ctx)
	case "routes":
		doc, err = c.Routes(ctx)
	case "neighbours":
		doc, err = c.Neighbours(ctx)
	case "list":
		doc, err = c.List(ctx, o.root, hostPath)
	case "remove":
		doc, err = c.RemoveFile(ctx, o.root, hostPath, o.sha256)
	}
	if err != nil {
		return err
	}
	return nodecollect.Write(stdout, doc)
}

// exportJournal writes the entries of the units from the journal files
// under p (inside the host root dir) as JSON lines, and says on stderr what
// it read and where a damaged file stopped being read.
func exportJournal(ctx context.Context, stdout, stderr io.Writer, dir, p string, units []string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("journal: open root: %w", err)
	}
	defer root.Close()
	st, err := journal.Export(ctx, root, p, journal.Query{Units: units}, stdout)
	if err != nil {
		return fmt.Errorf("journal %s: %w", p, err)
	}
	fmt.Fprintf(stderr, "eksir-collector: journal: %d files, %d entries, %d matched\n", st.Files, st.Entries, st.Matched)
	for _, pr := range st.Problems {
		fmt.Fprintf(stderr, "eksir-collector: journal: %s\n", pr)
	}
	return nil
}

// flagError turns a flag parsing error into a usage error; --help stays
// flag.ErrHelp.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

// selector checks that at most one selector flag is set, and exactly one
// for the artefacts about selected processes.
func (o options) selector(cmd string) (nodecollect.Selector, error) {
	n := 0
	for _, set := range []bool{o.podUID != "", o.allExceptSelf, o.node} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nodecollect.Selector{}, usageError{"--pod-uid, --all-except-self and --node exclude each other"}
	}
	switch cmd {
	case "sockets":
		if n == 0 {
			return nodecollect.Selector{}, usageError{"sockets needs --pod-uid UID, --all-except-self or --node"}
		}
	case "files", "maps", "mounts", "environ":
		if n == 0 {
			return nodecollect.Selector{}, usageError{cmd + " needs --pod-uid UID or --all-except-self"}
		}
	}
	return nodecollect.Selector{PodUID: o.podUID, AllExceptSelf: o.allExceptSelf, Node: o.node}, nil
}

// newFlagSet returns a flag set holding the global flags, so that they are
// accepted on either side of the command name.
func newFlagSet(name string, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if o.proc == "" {
		o.proc = "/proc"
	}
	fs.StringVar(&o.proc, "proc", o.proc, "proc root")
	fs.BoolVar(&o.noRedact, "no-redact", o.noRedact, "keep secret-looking command-line values")
	return fs
}
