package collectorimage_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/tools/collector-image/collectorimage"
)

// testBinaries maps each platform to a small static Go program built for
// it, made once per test run by TestMain.
var testBinaries map[string]string

// The program the tests put in the image: it prints its arguments, so that
// running the extracted amd64 copy shows it is whole and executable.
const testProgram = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("collector-image test binary", os.Args[1:]) }
`

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "collector-image-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBinaries, err = buildTestBinaries(dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "build test binaries:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTestBinaries cross-compiles testProgram, statically (CGO_ENABLED=0),
// for every platform the tool knows.
func buildTestBinaries(dir string) (map[string]string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testbinary\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(testProgram), 0o644); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, p := range collectorimage.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		out := filepath.Join(dir, "eksir-collector-"+goos+"-"+goarch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOWORK=off", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build for %s: %w\n%s", p, err, b)
		}
		bins[p] = out
	}
	return bins, nil
}

func allBinaries() []collectorimage.Binary {
	var bs []collectorimage.Binary
	for _, p := range collectorimage.Platforms {
		bs = append(bs, collectorimage.Binary{Platform: p, Path: testBinaries[p]})
	}
	return bs
}

// TestLayout builds a layout folder and checks it without
// go-containerregistry: JSON read with encoding/json, blobs hashed, the layer
// unpacked by the system tar.
func TestLayout(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	out := filepath.Join(t.TempDir(), "layout")
	res, err := collectorimage.Build(collectorimage.Options{
		Binaries: allBinaries(),
		Out:      out,
		Tag:      "eksir-collector:v0.9.1",
		Created:  created,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, out, res, created, "v0.9.1", collectorimage.DefaultSource)
}

// TestArchive builds an oci-archive, unpacks it with the system tar and
// checks the layout inside as TestLayout does.
func TestArchive(t *testing.T) {
	created := time.Unix(1700000000, 0).UTC()
	dir := t.TempDir()
	out := filepath.Join(dir, "eksir-collector-image.tar")
	res, err := collectorimage.Build(collectorimage.Options{
		Binaries: allBinaries(),
		Out:      out,
		Tag:      "registry.example:5000/team/eksir-collector:v1.0.0-rc.1",
		Created:  created,
		Source:   "https://example.com/fork",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every entry root-owned, files 0644 and folders 0755, with the creation
	// time, so the archive's bytes do not depend on the build machine.
	listing := runTar(t, "--numeric-owner", "--full-time", "-tvf", out)
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "0/0" || (f[0] != "-rw-r--r--" && f[0] != "drwxr-xr-x") || f[3]+" "+f[4] != "2023-11-14 22:13:20" {
			t.Errorf("archive entry %q: want root-owned, 0644 or 0755, mtime 2023-11-14 22:13:20", line)
		}
	}
	unpacked := filepath.Join(dir, "unpacked")
	if err := os.Mkdir(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	runTar(t, "-xf", out, "-C", unpacked)
	checkLayout(t, unpacked, res, created, "v1.0.0-rc.1", "https://example.com/fork")
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%s holds %d entries, want the archive and the unpacked copy (no temporary leftovers)", dir, len(entries))
	}
}

// TestReproducible builds twice from the same inputs, the --binary flags in
// a different order, and expects the same digests and byte-identical
// archives; a different creation time must change the index digest.
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	created := time.Unix(1764460800, 0)
	build := func(name string, bins []collectorimage.Binary, when time.Time) (collectorimage.Result, []byte) {
		t.Helper()
		out := filepath.Join(dir, name)
		res, err := collectorimage.Build(collectorimage.Options{Binaries: bins, Out: out, Tag: "eksir-collector:v1", Created: when})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	bins := allBinaries()
	reversed := []collectorimage.Binary{bins[1], bins[0]}

	r1, a1 := build("one.tar", bins, created)
	r2, a2 := build("two.tar", reversed, created)
	if r1.Index != r2.Index {
		t.Errorf("index digests differ: %s, then %s", r1.Index, r2.Index)
	}
	if fmt.Sprint(r1.Manifests) != fmt.Sprint(r2.Manifests) {
		t.Errorf("manifests differ: %v, then %v", r1.Manifests, r2.Manifests)
	}
	if !bytes.Equal(a1, a2) {
		t.Errorf("archives differ: sha256 %s, then %s", sha256Hex(a1), sha256Hex(a2))
	}
	t.Logf("index %s, archive sha256:%s", r1.Index, sha256Hex(a1))

	r3, _ := build("three.tar", bins, created.Add(time.Second))
	if r3.Index == r1.Index {
		t.Errorf("a different creation time gave the same index digest %s", r1.Index)
	}
}

// TestBadInput checks that each bad input fails with a message naming the
// problem and writes nothing.
func TestBadInput(t *testing.T) {
	good := allBinaries()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		bins    []collectorimage.Binary
		tag     string
		out     string // relative to a fresh folder; "" means "image.tar"
		prepare func(dir string)
		want    string
	}{
		{name: "missing binary", bins: []collectorimage.Binary{good[0], {Platform: "linux/arm64", Path: "/nonexistent/eksir-collector"}}, want: "linux/arm64 binary: open /nonexistent/eksir-collector: no such file"},
		{name: "empty binary", bins: []collectorimage.Binary{{Platform: "linux/amd64", Path: empty}}, want: "is empty"},
		{name: "unknown platform", bins: []collectorimage.Binary{{Platform: "linux/s390x", Path: good[0].Path}}, want: `unknown platform "linux/s390x"`},
		{name: "platform twice", bins: []collectorimage.Binary{good[0], good[0]}, want: "platform linux/amd64 given twice"},
		{name: "no binaries", want: "no --binary given"},
		{name: "no tag", bins: good, tag: "-", want: "--tag is required"},
		{name: "tag without version", bins: good, tag: "registry.example:5000/eksir-collector", want: "no version"},
		{name: "bad tag", bins: good, tag: "Eksir Collector:v1", want: "want NAME:VERSION"},
		{name: "no out", bins: good, out: "-", want: "--out is required"},
		{name: "out parent missing", bins: good, out: "missing/image.tar", want: "parent folder"},
		{name: "out folder exists", bins: good, out: "layout", prepare: func(dir string) { os.Mkdir(filepath.Join(dir, "layout"), 0o755) }, want: "already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			before := listTree(t, dir)
			opts := collectorimage.Options{Binaries: tc.bins, Tag: tc.tag, Out: filepath.Join(dir, "image.tar")}
			switch tc.tag {
			case "":
				opts.Tag = "eksir-collector:v1"
			case "-":
				opts.Tag = ""
			}
			switch tc.out {
			case "":
			case "-":
				opts.Out = ""
			default:
				opts.Out = filepath.Join(dir, tc.out)
			}
			_, err := collectorimage.Build(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if after := listTree(t, dir); after != before {
				t.Errorf("the build wrote something: before %q, after %q", before, after)
			}
		})
	}
}

func TestParseBinary(t *testing.T) {
	for _, s := range []string{"linux/amd64", "linux/amd64=", "=bin/x", "", "amd64=bin/x", "windows/amd64=bin/x", "linux/arm/v7=bin/x"} {
		if b, err := collectorimage.ParseBinary(s); err == nil {
			t.Errorf("ParseBinary(%q) = %+v, want an error", s, b)
		}
	}
	b, err := collectorimage.ParseBinary("linux/arm64=bin/a=b")
	if err != nil || b.Platform != "linux/arm64" || b.Path != "bin/a=b" {
		t.Errorf("ParseBinary(linux/arm64=bin/a=b) = %+v, %v", b, err)
	}
}

func TestResolveCreated(t *testing.T) {
	for _, tc := range []struct{ created, epoch, want string }{
		{"", "", "1970-01-01T00:00:00Z"},
		{"", "1764460800", "2025-11-30T00:00:00Z"},
		{"2026-01-02T03:04:05+02:00", "1764460800", "2026-01-02T01:04:05Z"},
		{"2026-01-02T03:04:05.9Z", "", "2026-01-02T03:04:05Z"},
	} {
		got, err := collectorimage.ResolveCreated(tc.created, tc.epoch)
		if err != nil || got.Format(time.RFC3339) != tc.want || got.Location() != time.UTC {
			t.Errorf("ResolveCreated(%q, %q) = %v, %v; want %s", tc.created, tc.epoch, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ created, epoch string }{{"yesterday", ""}, {"", "soon"}, {"", "-1"}, {"1960-01-01T00:00:00Z", ""}} {
		if got, err := collectorimage.ResolveCreated(tc.created, tc.epoch); err == nil {
			t.Errorf("ResolveCreated(%q, %q) = %v, want an error", tc.created, tc.epoch, got)
		}
	}
}

// The subset of the OCI image-spec JSON the checks read, declared here so
// the checks share nothing with the code under test.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Created      string `json:"created"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		User       string            `json:"User"`
		Labels     map[string]string `json:"Labels"`
		Env        []string          `json:"Env"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// checkLayout checks the OCI layout in dir against the inputs and against
// res, the digests Build reported.
func checkLayout(t *testing.T, dir string, res collectorimage.Result, created time.Time, version, source string) {
	t.Helper()
	var layoutFile struct {
		Version string `json:"imageLayoutVersion"`
	}
	readJSON(t, filepath.Join(dir, "oci-layout"), &layoutFile)
	if layoutFile.Version != "1.0.0" {
		t.Errorf("oci-layout version %q", layoutFile.Version)
	}

	// Every blob is named by its own sha256; the descriptors read below must
	// then account for every one of them.
	blobs := map[string][]byte{}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(blobDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Hex(b); got != e.Name() {
			t.Errorf("blob %s has sha256 %s", e.Name(), got)
		}
		blobs["sha256:"+e.Name()] = b
	}
	used := map[string]bool{}
	blob := func(d descriptor, mediaType string) []byte {
		t.Helper()
		if d.MediaType != mediaType {
			t.Errorf("%s: media type %q, want %q", d.Digest, d.MediaType, mediaType)
		}
		b, ok := blobs[d.Digest]
		if !ok {
			t.Fatalf("no blob for %s", d.Digest)
		}
		if int64(len(b)) != d.Size {
			t.Errorf("%s: descriptor size %d, blob size %d", d.Digest, d.Size, len(b))
		}
		used[d.Digest] = true
		return b
	}

	var top index
	readJSON(t, filepath.Join(dir, "index.json"), &top)
	if top.SchemaVersion != 2 || len(top.Manifests) != 1 {
		t.Fatalf("index.json: schema %d, %d entries; want schema 2 and one entry (the image index)", top.SchemaVersion, len(top.Manifests))
	}
	if got := top.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != version {
		t.Errorf("index.json ref.name %q, want %q", got, version)
	}
	if top.Manifests[0].Digest != res.Index {
		t.Errorf("index.json points at %s, Build reported %s", top.Manifests[0].Digest, res.Index)
	}
	var idx index
	unmarshal(t, blob(top.Manifests[0], "application/vnd.oci.image.index.v1+json"), &idx)
	if idx.SchemaVersion != 2 || idx.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("image index: schema %d, media type %q", idx.SchemaVersion, idx.MediaType)
	}
	if len(idx.Manifests) != len(collectorimage.Platforms) || len(res.Manifests) != len(collectorimage.Platforms) {
		t.Fatalf("image index has %d manifests, Build reported %d; want %d", len(idx.Manifests), len(res.Manifests), len(collectorimage.Platforms))
	}

	for i, want := range collectorimage.Platforms {
		d := idx.Manifests[i]
		goos, goarch, _ := strings.Cut(want, "/")
		if d.Platform == nil || d.Platform.OS != goos || d.Platform.Architecture != goarch || d.Platform.Variant != "" {
			t.Errorf("manifest %d platform %+v, want %s", i, d.Platform, want)
		}
		if d.ArtifactType != "" {
			t.Errorf("%s: artifactType %q on an image entry", want, d.ArtifactType)
		}
		if res.Manifests[i].Platform != want || res.Manifests[i].Digest != d.Digest {
			t.Errorf("Build reported %+v, the index holds %s %s", res.Manifests[i], want, d.Digest)
		}
		var m manifest
		unmarshal(t, blob(d, "application/vnd.oci.image.manifest.v1+json"), &m)
		if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || len(m.Layers) != 1 {
			t.Fatalf("%s manifest: schema %d, media type %q, %d layers; want one layer", want, m.SchemaVersion, m.MediaType, len(m.Layers))
		}

		var cfg imageConfig
		unmarshal(t, blob(m.Config, "application/vnd.oci.image.config.v1+json"), &cfg)
		c := cfg.Config
		if cfg.OS != goos || cfg.Architecture != goarch {
			t.Errorf("%s config: os %q, architecture %q", want, cfg.OS, cfg.Architecture)
		}
		if cfg.Created != created.UTC().Format(time.RFC3339) {
			t.Errorf("%s config: created %q, want %s", want, cfg.Created, created.UTC().Format(time.RFC3339))
		}
		if fmt.Sprint(c.Entrypoint) != "[/eksir-collector]" || fmt.Sprint(c.Cmd) != "[idle]" || c.WorkingDir != "/" || c.User != "0" {
			t.Errorf("%s config: Entrypoint %q Cmd %q WorkingDir %q User %q", want, c.Entrypoint, c.Cmd, c.WorkingDir, c.User)
		}
		wantLabels := map[string]string{
			"org.opencontainers.image.source":  source,
			"org.opencontainers.image.version": version,
			"org.opencontainers.image.title":   "eksir-collector",
		}
		if fmt.Sprint(c.Labels) != fmt.Sprint(wantLabels) {
			t.Errorf("%s config labels %v, want %v", want, c.Labels, wantLabels)
		}

		layer := blob(m.Layers[0], "application/vnd.oci.image.layer.v1.tar+gzip")
		tarBytes := gunzip(t, layer)
		if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != "sha256:"+sha256Hex(tarBytes) {
			t.Errorf("%s config rootfs %+v, want the one layer's diff ID sha256:%s", want, cfg.RootFS, sha256Hex(tarBytes))
		}
		checkLayer(t, want, tarBytes, created)
	}
	for digest := range blobs {
		if !used[digest] {
			t.Errorf("blob %s is referenced by nothing", digest)
		}
	}
}

// checkLayer unpacks the layer with the system tar and compares the one file
// in it with the input binary.
func checkLayer(t *testing.T, platform string, tarBytes []byte, created time.Time) {
	t.Helper()
	dir := t.TempDir()
	layerTar := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(layerTar, tarBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	listing := strings.TrimSpace(runTar(t, "--numeric-owner", "-tvf", layerTar))
	if f := strings.Fields(listing); strings.Contains(listing, "\n") || len(f) != 6 || f[0] != "-rwxr-xr-x" || f[1] != "0/0" || f[5] != "eksir-collector" {
		t.Errorf("%s layer lists %q, want the one file eksir-collector, -rwxr-xr-x 0/0", platform, listing)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	runTar(t, "-xpf", layerTar, "-C", root)
	got := filepath.Join(root, "eksir-collector")
	st, err := os.Stat(got)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o755 {
		t.Errorf("%s: /eksir-collector mode %v, want -rwxr-xr-x", platform, st.Mode())
	}
	if !st.ModTime().Equal(created) {
		t.Errorf("%s: /eksir-collector mtime %v, want %v", platform, st.ModTime().UTC(), created.UTC())
	}
	gotBytes, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, err := os.ReadFile(testBinaries[platform])
	if err != nil {
		t.Fatal(err)
	}
	if sha256Hex(gotBytes) != sha256Hex(wantBytes) {
		t.Errorf("%s: /eksir-collector sha256 %s, input binary %s", platform, sha256Hex(gotBytes), sha256Hex(wantBytes))
	}
	// Run the extracted copy where it can run: proof that it is whole and
	// executable as unpacked.
	if platform == runtime.GOOS+"/"+runtime.GOARCH {
		out, err := exec.Command(got, "idle").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "collector-image test binary [idle]" {
			t.Errorf("running the extracted %s binary: %v, output %q", platform, err, out)
		}
	}
}

func runTar(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("tar", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tar %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("layer is not gzip (starts % x)", b[:min(len(b), 4)])
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unmarshal(t, b, v)
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
}

// listTree returns every path under dir with its size, to tell whether a
// call wrote anything there.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		paths = append(paths, fmt.Sprintf("%s:%d", p, info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(paths, " ")
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
