package procfs

import (
	"bytes"
	"strconv"
)

// ParseCmdline splits /proc/PID/cmdline into its arguments. The kernel ends
// every argument with a NUL; a process that rewrote its own argv (setproctitle)
// may leave a single unterminated string, which is returned as one argument.
func ParseCmdline(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return []string{}
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// ParseEnvironNames returns the variable names of /proc/PID/environ, in
// order, without ever copying a value: values hold credentials. An entry with
// no '=' is returned whole, since that is all there is to name it by.
func ParseEnvironNames(b []byte) []string {
	out := []string{}
	for entry := range bytes.SplitSeq(b, []byte{0}) {
		if len(entry) == 0 {
			continue
		}
		name, _, _ := bytes.Cut(entry, []byte{'='})
		out = append(out, string(name))
	}
	return out
}

// ParseNSLink returns the inode of a namespace link target such as
// "net:[4026531840]" (a readlink of /proc/PID/ns/net), and its type ("net").
func ParseNSLink(target string) (typ string, inode uint64, ok bool) {
	return parseBracketLink(target)
}

// ParseSocketLink returns the inode of an fd link target "socket:[12345]".
func ParseSocketLink(target string) (uint64, bool) {
	typ, ino, ok := parseBracketLink(target)
	return ino, ok && typ == "socket"
}

func parseBracketLink(s string) (string, uint64, bool) {
	i := len(s) - 1
	if i < 0 || s[i] != ']' {
		return "", 0, false
	}
	open := bytes.LastIndexByte([]byte(s), '[')
	if open < 1 || s[open-1] != ':' {
		return "", 0, false
	}
	n, err := strconv.ParseUint(s[open+1:i], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return s[:open-1], n, true
}
