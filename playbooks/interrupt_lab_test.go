package playbooks_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eksir/eksir/playbooks"
)

// TestLabInterrupt runs the real eksir against the lab and sends it real
// SIGINTs while its isolate step is running (slowed down by the eksirtest
// hook). Once: isolate finishes, label never starts, exit 130, and resume
// completes. Twice: isolate is cancelled at once and journaled failed,
// nothing is contained, and resume completes with every side effect once.
func TestLabInterrupt(t *testing.T) {
	f := setupLab(t)
	pb := filepath.Join(f.dir, "interrupt.yaml")
	if err := os.WriteFile(pb, []byte(crashPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		signals int
		slow    string
	}{
		{name: "once", signals: 1, slow: "4s"},
		{name: "twice", signals: 2, slow: "10m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := "interrupt-" + tc.name
			p := f.start(t, crashingBin(t), []string{"EKSIR_TEST_SLOW_AT=isolate:" + tc.slow},
				"run", pb, "--pod", f.ns+"/"+f.pod, "--incident", inc, "--yes", "--parallel", "1")
			p.waitFor(t, "step=isolate action=isolate.pod-network state=running")
			p.signal(t, os.Interrupt)
			if tc.signals == 2 {
				p.waitFor(t, "interrupt again to cancel the running steps")
				p.signal(t, os.Interrupt)
			}
			start := time.Now()
			r := p.wait(t)
			if r.code != 130 || !strings.Contains(r.stderr, "eksir: interrupted") || !strings.Contains(r.stdout, "interrupted: what was not started is not-run") {
				t.Fatalf("want exit 130 (interrupted): %v", r)
			}
			st := f.status(t, inc)
			pol := f.quarantinePolicies(t)
			switch tc.signals {
			case 1:
				if st["isolate"].Status != playbooks.StatusSucceeded || st["label"].Status != playbooks.StatusNotRun || len(pol) != 1 {
					t.Fatalf("after one interrupt: isolate %+v, label %+v, policies %v", st["isolate"], st["label"], pol)
				}
			case 2:
				if time.Since(start) > time.Minute {
					t.Errorf("the second interrupt did not cancel the running step")
				}
				if st["isolate"].Status != playbooks.StatusFailed || !strings.Contains(st["isolate"].Error, "second interrupt") ||
					st["label"].Status != playbooks.StatusNotRun || len(pol) != 0 {
					t.Fatalf("after two interrupts: isolate %+v, label %+v, policies %v", st["isolate"], st["label"], pol)
				}
			}
			if r := f.eksir(t, nil, "resume", "--incident", inc, "--yes"); r.code != 0 {
				t.Fatalf("resume: %v", r)
			}
			if pol := f.quarantinePolicies(t); len(pol) != 1 || !f.suspectMarked(t) {
				t.Fatalf("after resume: policies %v, labelled %v", pol, f.suspectMarked(t))
			}
			f.checkJournal(t, inc)
			if r := f.eksir(t, nil, "release", "--incident", inc, "--yes"); r.code != 0 {
				t.Fatalf("release: %v", r)
			}
		})
	}
}

// proc is an eksir started in the background, its stderr watched.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string
	done   chan struct{}
}

func (f *labFixture) start(t *testing.T, bin string, extraEnv []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), lines: make(chan string, 1000), done: make(chan struct{})}
	p.cmd.Env = append(append([]string{}, f.env...), extraEnv...)
	p.cmd.Stdout = &p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, errPipe)
	}()
	return p
}

// waitFor returns when a line of stderr contains s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-p.done:
			t.Fatalf("eksir ended before %q:\n%s", s, p.errText())
		case <-timeout:
			t.Fatalf("no %q on stderr:\n%s", s, p.errText())
		}
	}
}

func (p *proc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

func (p *proc) wait(t *testing.T) result {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	r := result{stdout: p.stdout.String(), stderr: p.errText()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.killed = true
		}
	default:
		t.Fatal(err)
	}
	return r
}
