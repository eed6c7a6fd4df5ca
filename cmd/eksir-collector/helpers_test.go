package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as the suspect process of the
// end-to-end test instead of running tests.
const helperEnv = "EKSIR_COLLECTOR_TEST_HELPER"

var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "netns" {
		os.Exit(netnsHelper())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// netnsHelper runs inside `unshare --net --pid --fork`: it brings lo up,
// listens on 127.0.0.1:$EKSIR_PORT, connects to itself, prints its PID as
// the host sees it, and holds the connection until stdin closes.
func netnsHelper() int {
	fail := func(err error) int {
		fmt.Println("error", err)
		return 1
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fail(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fail(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fail(err)
	}
	unix.Close(fd)
	ln, err := net.Listen("tcp4", "127.0.0.1:"+os.Getenv("EKSIR_PORT"))
	if err != nil {
		return fail(err)
	}
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return fail(err)
	}
	server, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	// /proc is the host's procfs, so /proc/self names the host PID.
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return fail(err)
	}
	fmt.Printf("ready %s %s\n", self, client.LocalAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
	client.Close()
	server.Close()
	ln.Close()
	return 0
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// collectorBinary builds the collector as the Makefile does, once per test
// binary.
func collectorBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "eksir-collector-test")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(binDir, "eksir-collector")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test-build", "-o", builtBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// runCollector runs the built binary and returns stdout, stderr and the
// exit code.
func runCollector(t testing.TB, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := exec.Command(collectorBinary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.Bytes(), e.Bytes(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run collector: %v", err)
	}
	return o.Bytes(), e.Bytes(), 0
}

// collect runs one artefact that must succeed, validates the document
// against docs/collector.schema.json and decodes it into a generic map.
func collect(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errOut, code := runCollector(t, args...)
	if code != 0 {
		t.Fatalf("eksir-collector %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	if n := bytes.Count(bytes.TrimSpace(out), []byte("\n")); n != 0 {
		t.Fatalf("eksir-collector %s: %d newlines inside the output, want exactly one document", strings.Join(args, " "), n)
	}
	validate(t, out)
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

func validate(t *testing.T, raw []byte) {
	t.Helper()
	if err := validateErr(t, raw); err != nil {
		t.Errorf("document does not validate against docs/collector.schema.json: %v\n%.2000s", err, raw)
	}
}

func validateErr(t *testing.T, raw []byte) error {
	t.Helper()
	schemaOnce.Do(func() {
		f, err := os.Open("../../docs/collector.schema.json")
		if err != nil {
			schemaErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		const url = "https://eksir.io/schemas/collector/v1"
		if err := c.AddResource(url, doc); err != nil {
			schemaErr = err
			return
		}
		schema, schemaErr = c.Compile(url)
	})
	if schemaErr != nil {
		t.Fatalf("schema: %v", schemaErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return schema.Validate(inst)
}

// skipOrFail skips a test that needs something this machine lacks, or
// fails it in CI, where every test must run.
func skipOrFail(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required for this test in CI: %s", what)
	}
	t.Skip("skipped: " + what)
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomUUID(t *testing.T) string {
	h := randomHex(t, 16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:]
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
