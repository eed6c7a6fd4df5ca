package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc records one process the lab started. The pid alone is not an
// identity (pids are reused), so the kernel's start time is kept too and
// checked before any signal is sent.
type Proc struct {
	Name       string   `json:"name"`
	PID        int      `json:"pid"`
	StartTicks uint64   `json:"startTicks"`
	Port       int      `json:"port,omitempty"`
	Log        string   `json:"log"`
	Args       []string `json:"args"`
}

// children tracks processes started by this process, so that a test which
// starts and stops a lab reaps them (a zombie would still look alive).
var children sync.Map // pid -> chan struct{} closed on exit

// startProc starts bin with args, its output appended to <dir>/logs/<name>.log.
// The child gets its own process group so a Ctrl-C meant for eksir does not
// reach the lab, which must outlive `eksir lab up`.
func startProc(dir, name, bin string, args, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	children.Store(cmd.Process.Pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	ticks, err := procStartTicks(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("read start time of %s: %w", name, err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, StartTicks: ticks, Log: logPath, Args: append([]string{bin}, args...)}
	if err := os.WriteFile(filepath.Join(dir, "run", name+".pid"), []byte(strconv.Itoa(p.PID)+"\n"), 0o644); err != nil {
		// The caller records only what startProc returns without error.
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return p, nil
}

// Alive reports whether the recorded process still runs: same pid, same start
// time, not a zombie.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	if ch, ok := children.Load(p.PID); ok {
		select {
		case <-ch.(chan struct{}):
			return false
		default:
		}
	}
	state, ticks, err := procStat(p.PID)
	if err != nil {
		return false
	}
	return state != 'Z' && state != 'X' && ticks == p.StartTicks
}

// stop sends SIGTERM to exactly this pid, waits for it to exit, and sends
// SIGKILL if it has not within grace.
func (p Proc) stop(ctx context.Context, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err)
	}
	tctx, cancel := context.WithTimeout(ctx, grace)
	err := poll(tctx, func(context.Context) (bool, error) { return !p.Alive(), nil })
	cancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if p.Alive() {
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
		}
	}
	tctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := poll(tctx, func(context.Context) (bool, error) { return !p.Alive(), nil }); err != nil {
		return fmt.Errorf("%s (pid %d) still running after SIGKILL: %w", p.Name, p.PID, err)
	}
	return nil
}

// procStartTicks returns field 22 of /proc/<pid>/stat (start time in clock
// ticks since boot).
func procStartTicks(pid int) (uint64, error) {
	_, t, err := procStat(pid)
	return t, err
}

func procStat(pid int) (state byte, startTicks uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat reads the state and start time from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (byte, uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, fmt.Errorf("malformed stat line")
	}
	fields := strings.Fields(string(b[i+2:]))
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("malformed stat line: %d fields", len(fields))
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed start time: %w", err)
	}
	return fields[0][0], ticks, nil
}

// poll calls check with exponential backoff (20 ms doubling to 500 ms) until
// it reports done, returns an error, or ctx ends.
func poll(ctx context.Context, check func(context.Context) (bool, error)) error {
	delay := 20 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-t.C:
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		last = err
		t.Reset(delay)
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// permanentError stops poll at once (for example: the process died).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// freePorts reserves n distinct free TCP ports on 127.0.0.1. They are
// released before the components bind them; the window is small and a
// collision shows as a start-up error naming the port.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// logTail returns the last n lines of a component log, for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
