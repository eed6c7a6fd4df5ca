package lab_test

import "syscall"

// syscallKill0 probes a pid without signalling it.
func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }
