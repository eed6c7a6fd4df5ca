package playbooks

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// The README keeps the directory embeddable while no YAML exists yet.
//
//go:embed builtin
var builtinFS embed.FS

// Builtins lists the built-in playbook names, sorted.
func Builtins() []string {
	ents, _ := fs.ReadDir(builtinFS, "builtin")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Builtin returns a built-in playbook's text exactly as embedded.
func Builtin(name string) ([]byte, bool) {
	if strings.ContainsAny(name, "/\\.") {
		return nil, false
	}
	b, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	return b, err == nil
}

// Load parses a playbook given as a built-in name or a file path; a
// built-in is named "builtin/NAME.yaml" in errors.
func Load(arg string) (*Playbook, error) {
	if b, ok := Builtin(arg); ok {
		return Parse("builtin/"+arg+".yaml", b)
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{File: arg, Msg: "no such playbook file or built-in", HintText: "built-ins: " + builtinList() + "; or give a file path"}
		}
		return nil, fmt.Errorf("read playbook: %w", err)
	}
	if len(b) > MaxSize {
		return nil, &Error{File: arg, Msg: "file too large for a playbook", HintText: "a playbook is at most 1 MiB"}
	}
	return Parse(arg, b)
}

func builtinList() string {
	if b := Builtins(); len(b) > 0 {
		return strings.Join(b, ", ")
	}
	return "none"
}
