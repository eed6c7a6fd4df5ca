package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builtBins holds the eksir binaries this test binary built, by build
// tags, in one folder that Main removes when the tests end: each is about
// 200 MB, and a folder left per run fills /tmp.
var builtBins struct {
	mu   sync.Mutex
	dir  string
	bins map[string]builtBin
}

type builtBin struct {
	path string
	err  error
}

// Eksir returns the eksir binary under test. Without build tags it is
// $EKSIR_BIN when set (make test builds it once for every package);
// otherwise cmd/eksir is built with the tags, once per test binary.
func Eksir(t testing.TB, tags ...string) string {
	t.Helper()
	if p := os.Getenv("EKSIR_BIN"); p != "" && len(tags) == 0 {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("EKSIR_BIN=%s: %v", p, err)
		}
		return abs
	}
	key := strings.Join(tags, ",")
	builtBins.mu.Lock()
	defer builtBins.mu.Unlock()
	b, ok := builtBins.bins[key]
	if !ok {
		b = buildEksir(key)
		if builtBins.bins == nil {
			builtBins.bins = map[string]builtBin{}
		}
		builtBins.bins[key] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildEksir builds cmd/eksir with the comma-separated tags; the caller
// holds builtBins.mu.
func buildEksir(tags string) builtBin {
	if builtBins.dir == "" {
		dir, err := os.MkdirTemp("", "eksir-test-bin-")
		if err != nil {
			return builtBin{err: err}
		}
		builtBins.dir = dir
	}
	name := "eksir"
	if tags != "" {
		name += "-" + strings.ReplaceAll(tags, ",", "-")
	}
	path := filepath.Join(builtBins.dir, name)
	args := []string{"build", "-o", path}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, "github.com/eksir/eksir/cmd/eksir")...).CombinedOutput()
	if err != nil {
		return builtBin{err: fmt.Errorf("build eksir (tags %q): %v\n%s", tags, err, out)}
	}
	return builtBin{path: path}
}

// removeBuiltBins deletes what Eksir built.
func removeBuiltBins() {
	builtBins.mu.Lock()
	defer builtBins.mu.Unlock()
	if builtBins.dir != "" {
		os.RemoveAll(builtBins.dir)
		builtBins.dir, builtBins.bins = "", nil
	}
}
