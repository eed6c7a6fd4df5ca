package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvBin names the environment variable that points at the folder holding
// the lab binaries. The Makefile sets it; without it the cache folder is
// computed as lab/tools/build.sh does.
const EnvBin = "EKSIR_LAB_BIN"

// Binary names the lab needs from the bin folder.
const (
	binEtcd      = "etcd"
	binAPIServer = "kube-apiserver"
	binKwok      = "kwok"
	binMoto      = "moto_server"
)

// HintTools and HintMoto are the commands that provide what a missing-binary
// error names; tests print them verbatim.
const (
	HintTools = "make lab-tools"
	HintMoto  = "make moto (or: python3 -m pip install 'moto[server]')"
)

// ErrMissingBinary reports that a component the lab runs is not installed.
var ErrMissingBinary = errors.New("lab binary missing")

// MissingError names the missing binary and the command that provides it.
type MissingError struct {
	Name, Where, Fix string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s not found in %s", e.Name, e.Where)
}

// Hint is the command that installs the binary.
func (e *MissingError) Hint() string { return "run: " + e.Fix }

// Unwrap lets callers test with errors.Is(err, ErrMissingBinary).
func (e *MissingError) Unwrap() error { return ErrMissingBinary }

// Binaries holds absolute paths of the lab's executables.
type Binaries struct {
	Etcd, APIServer, Kwok, Moto string
}

// toolsKeyFiles are hashed, in this order, into the cache key; build.sh
// hashes the same files.
var toolsKeyFiles = []string{"go.mod", "go.sum", "kwok/go.mod", "kwok/go.sum"}

// ToolsKey is the cache key build.sh uses: the first 16 hex digits of the
// sha256 of the concatenated toolsKeyFiles of lab/tools.
func ToolsKey(contents ...[]byte) string {
	h := sha256.New()
	for _, c := range contents {
		h.Write(c)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// CacheRoot is ${XDG_CACHE_HOME:-$HOME/.cache}/eksir/lab.
func CacheRoot() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find cache folder: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "eksir", "lab"), nil
}

// BinDir finds the folder of lab binaries: $EKSIR_LAB_BIN; else the key
// computed from lab/tools in the repository containing the working
// directory; else the "current" link the last build left.
func BinDir() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		return d, nil
	}
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	if tools, ok := findToolsDir(); ok {
		if key, err := toolsKeyIn(tools); err == nil {
			return filepath.Join(root, key, "bin"), nil
		}
	}
	return filepath.Join(root, "current", "bin"), nil
}

func toolsKeyIn(tools string) (string, error) {
	var contents [][]byte
	for _, f := range toolsKeyFiles {
		b, err := os.ReadFile(filepath.Join(tools, f))
		if err != nil {
			return "", err
		}
		contents = append(contents, b)
	}
	return ToolsKey(contents...), nil
}

// findToolsDir walks up from the working directory to a lab/tools folder.
func findToolsDir() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		cand := filepath.Join(dir, "lab", "tools")
		if _, err := os.Stat(filepath.Join(cand, "go.sum")); err == nil {
			return cand, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// FindBinaries locates every executable the lab runs, or returns a
// *MissingError for the first one missing.
func FindBinaries() (Binaries, error) {
	dir, err := BinDir()
	if err != nil {
		return Binaries{}, err
	}
	var b Binaries
	for _, x := range []struct {
		name string
		dst  *string
	}{{binEtcd, &b.Etcd}, {binAPIServer, &b.APIServer}, {binKwok, &b.Kwok}} {
		p := filepath.Join(dir, x.name)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return Binaries{}, &MissingError{Name: x.name, Where: dir, Fix: HintTools}
		}
		*x.dst = p
	}
	moto, err := exec.LookPath(binMoto)
	if err != nil {
		return Binaries{}, &MissingError{Name: binMoto, Where: "PATH", Fix: HintMoto}
	}
	b.Moto = moto
	return b, nil
}
