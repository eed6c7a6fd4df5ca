// Package collectorimage builds the eksir collector image: a FROM-scratch,
// multi-architecture OCI image whose only file is the static collector binary
// at /eksir-collector, written as an OCI image layout or as a tar of one (an
// "oci-archive").
//
// The image is for clusters where eksir may not stream its collector into a
// pod over exec stdin, or that admit only images from a private registry.
// Everything that goes into it is fixed by the inputs (binaries, tag, time),
// so two builds from the same inputs have the same index digest and a
// responder can rebuild and compare what a registry holds.
package collectorimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed facts about the image that pods and the docs rely on.
const (
	// BinaryPath is where the collector sits in the image; pods run
	// "/eksir-collector idle".
	BinaryPath = "/eksir-collector"
	// Title is the org.opencontainers.image.title label.
	Title = "eksir-collector"
	// DefaultSource is the org.opencontainers.image.source label unless
	// Options.Source says otherwise.
	DefaultSource = "https://github.com/eksir/eksir"
)

// Platforms lists the platforms an image may hold: the architectures EKS
// runs nodes on.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// Binary is one prebuilt collector binary and the platform it was built for.
type Binary struct {
	Platform string // "linux/amd64" or "linux/arm64"
	Path     string
}

// ParseBinary parses a --binary value, PLATFORM=PATH, and rejects a platform
// outside Platforms. It does not open the file.
func ParseBinary(s string) (Binary, error) {
	platform, path, ok := strings.Cut(s, "=")
	if !ok || platform == "" || path == "" {
		return Binary{}, fmt.Errorf("--binary %q: want PLATFORM=PATH, for example linux/amd64=bin/eksir-collector-linux-amd64", s)
	}
	if !knownPlatform(platform) {
		return Binary{}, fmt.Errorf("--binary %q: unknown platform %q (known: %s)", s, platform, strings.Join(Platforms, ", "))
	}
	return Binary{Platform: platform, Path: path}, nil
}

func knownPlatform(p string) bool {
	for _, k := range Platforms {
		if p == k {
			return true
		}
	}
	return false
}

// ResolveCreated returns the image's creation time: created (RFC 3339) when
// set, else sourceDateEpoch (Unix seconds, the reproducible-builds
// convention) when set, else Unix 0. Times before 1970 are refused because
// tar headers cannot hold them.
func ResolveCreated(created, sourceDateEpoch string) (time.Time, error) {
	var t time.Time
	switch {
	case created != "":
		var err error
		if t, err = time.Parse(time.RFC3339, created); err != nil {
			return time.Time{}, fmt.Errorf("--created %q: not an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", created, err)
		}
	case sourceDateEpoch != "":
		secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a count of seconds: %w", sourceDateEpoch, err)
		}
		t = time.Unix(secs, 0)
	default:
		t = time.Unix(0, 0)
	}
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("creation time %s is before 1970", t.UTC().Format(time.RFC3339))
	}
	// Whole seconds in UTC: the tar headers and the config then say the
	// same thing whatever the build machine's zone.
	return time.Unix(t.Unix(), 0).UTC(), nil
}

// Options describes one build.
type Options struct {
	// Binaries holds one binary per platform; at least one.
	Binaries []Binary
	// Out is the output: a directory to create as an OCI image layout, or,
	// when it ends in ".tar", a tar file of such a layout.
	Out string
	// Tag is NAME:VERSION, for example eksir-collector:v0.4.0. VERSION
	// becomes the org.opencontainers.image.version label and the layout's
	// reference name.
	Tag string
	// Created is the image's creation time and every file's mtime.
	Created time.Time
	// Source is the org.opencontainers.image.source label; DefaultSource
	// when empty.
	Source string
}

// Manifest is the digest of one platform's image manifest.
type Manifest struct {
	Platform string
	Digest   string // sha256:… of the manifest
	Binary   string // sha256:… of the collector binary in it
}

// Result says what Build wrote.
type Result struct {
	// Index is the digest of the image index, the digest to pin
	// (REPO@sha256:…) once the image is pushed.
	Index string
	// Manifests holds the platform manifests sorted by platform, the order
	// of the index.
	Manifests []Manifest
}

// Build checks every input, builds the image and writes it to opts.Out. On
// any error nothing is left at opts.Out: the output is assembled in a
// temporary folder beside it and renamed into place at the end.
func Build(opts Options) (Result, error) {
	version, err := tagVersion(opts.Tag)
	if err != nil {
		return Result{}, err
	}
	if opts.Out == "" {
		return Result{}, errors.New("--out is required (a directory, or a file ending in .tar)")
	}
	out := filepath.Clean(opts.Out)
	asTar := strings.HasSuffix(out, ".tar")
	if err := checkOut(out, asTar); err != nil {
		return Result{}, err
	}
	binaries, err := readBinaries(opts.Binaries)
	if err != nil {
		return Result{}, err
	}
	if opts.Created.Unix() < 0 {
		return Result{}, errors.New("creation time is before 1970")
	}
	created := time.Unix(opts.Created.Unix(), 0).UTC()
	source := opts.Source
	if source == "" {
		source = DefaultSource
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var res Result
	for _, b := range binaries {
		img, err := platformImage(b, created, version, source)
		if err != nil {
			return Result{}, fmt.Errorf("%s image: %w", b.platform, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return Result{}, fmt.Errorf("%s image digest: %w", b.platform, err)
		}
		goos, goarch, _ := strings.Cut(b.platform, "/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        plainImage{img},
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: goarch}},
		})
		res.Manifests = append(res.Manifests, Manifest{Platform: b.platform, Digest: digest.String(), Binary: "sha256:" + sha256Hex(b.data)})
	}
	indexDigest, err := idx.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("image index digest: %w", err)
	}
	res.Index = indexDigest.String()

	// The layout's index.json holds a single entry, the image index, so that
	// skopeo (oci-archive:FILE) and crane push (the layout folder) find the
	// one thing to copy without being told a reference.
	top := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add: idx,
		Descriptor: v1.Descriptor{Annotations: map[string]string{
			"org.opencontainers.image.ref.name": version,
		}},
	})
	if err := write(top, out, asTar, created); err != nil {
		return Result{}, err
	}
	return res, nil
}

// plainImage hides the artifactType that go-containerregistry otherwise
// copies from the config media type into the image's index entry. OCI 1.1
// allows it, but it is meant for artifacts; without it the index is the plain
// multi-platform image index that every runtime and registry has read for
// years.
type plainImage struct{ v1.Image }

// ArtifactType reports none; partial.Descriptor asks for it.
func (plainImage) ArtifactType() (string, error) { return "", nil }

// tagVersion checks that tag is NAME:VERSION and returns VERSION.
func tagVersion(tag string) (string, error) {
	if tag == "" {
		return "", errors.New("--tag is required, for example eksir-collector:v0.4.0")
	}
	// A tag without a version would quietly become "latest", and that the
	// version label; so the colon after the last slash must be there.
	if !strings.Contains(tag[strings.LastIndex(tag, "/")+1:], ":") {
		return "", fmt.Errorf("--tag %q: no version; want NAME:VERSION, for example eksir-collector:v0.4.0", tag)
	}
	t, err := name.NewTag(tag)
	if err != nil {
		return "", fmt.Errorf("--tag %q: want NAME:VERSION, for example eksir-collector:v0.4.0: %w", tag, err)
	}
	return t.TagStr(), nil
}

// checkOut refuses an output that cannot be written or that would replace a
// folder: a layout folder is never merged into or deleted, while a tar file
// is replaced whole, as a build output usually is.
func checkOut(out string, asTar bool) error {
	parent := filepath.Dir(out)
	if st, err := os.Stat(parent); err != nil {
		return fmt.Errorf("--out %s: parent folder: %w", out, err)
	} else if !st.IsDir() {
		return fmt.Errorf("--out %s: %s is not a folder", out, parent)
	}
	st, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out %s: %w", out, err)
	case st.IsDir():
		return fmt.Errorf("--out %s already exists; remove it or choose another path", out)
	case !asTar:
		return fmt.Errorf("--out %s is an existing file; a layout is written as a new folder (end the name in .tar for an archive)", out)
	}
	return nil
}

type binaryData struct {
	platform string
	data     []byte
}

// readBinaries reads every binary, one per platform, sorted by platform so
// that the order of the --binary flags does not change the digest.
func readBinaries(bins []Binary) ([]binaryData, error) {
	if len(bins) == 0 {
		return nil, fmt.Errorf("no --binary given; want one per platform (%s)", strings.Join(Platforms, ", "))
	}
	seen := map[string]bool{}
	var out []binaryData
	for _, b := range bins {
		if !knownPlatform(b.Platform) {
			return nil, fmt.Errorf("unknown platform %q (known: %s)", b.Platform, strings.Join(Platforms, ", "))
		}
		if seen[b.Platform] {
			return nil, fmt.Errorf("platform %s given twice", b.Platform)
		}
		seen[b.Platform] = true
		data, err := os.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w", b.Platform, err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("%s binary %s is empty", b.Platform, b.Path)
		}
		out = append(out, binaryData{platform: b.Platform, data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].platform < out[j].platform })
	return out, nil
}

// platformImage builds one platform's image: scratch plus one layer.
func platformImage(b binaryData, created time.Time, version, source string) (v1.Image, error) {
	layerBytes, err := layerTarGz(b.data, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	goos, goarch, _ := strings.Cut(b.platform, "/")
	cfg := &v1.ConfigFile{
		Architecture: goarch,
		OS:           goos,
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"idle"},
			WorkingDir: "/",
			User:       "0",
			Labels: map[string]string{
				"org.opencontainers.image.source":  source,
				"org.opencontainers.image.version": version,
				"org.opencontainers.image.title":   Title,
			},
		},
	}
	// The config goes in first: Append then adds the layer's diff ID and
	// history entry to it.
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "eksir tools/collector-image: " + BinaryPath,
			Comment:   "sha256:" + sha256Hex(b.data),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, nil
}

// layerTarGz returns the gzip-compressed tar of the one file. It is built
// here rather than by go-containerregistry so that every header byte (owner,
// mode, mtime, format, gzip header) is fixed by this code.
func layerTarGz(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(BinaryPath, "/"),
		Mode:     0o755,
		Uid:      0,
		Gid:      0,
		Size:     int64(len(binary)),
		ModTime:  mtime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("layer tar header: %w", err)
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("layer gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// write writes the layout into a temporary folder beside out, then renames
// the layout, or a tar of it, to out.
func write(top v1.ImageIndex, out string, asTar bool, mtime time.Time) error {
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".collector-image-*")
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)

	dir := filepath.Join(tmp, "layout")
	if _, err := layout.Write(dir, top); err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	if !asTar {
		if err := os.Rename(dir, out); err != nil {
			return fmt.Errorf("move layout into place: %w", err)
		}
		return nil
	}
	archive := filepath.Join(tmp, "layout.tar")
	if err := tarLayout(dir, archive, mtime); err != nil {
		return err
	}
	if err := os.Rename(archive, out); err != nil {
		return fmt.Errorf("move archive into place: %w", err)
	}
	return nil
}

// tarLayout writes the layout folder dir as a tar at archive, entries in
// lexical order with fixed owners, modes and mtimes so that the archive is
// as reproducible as the layout.
func tarLayout(dir, archive string, mtime time.Time) (err error) {
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close archive: %w", cerr)
		}
	}()
	tw := tar.NewWriter(f)
	// WalkDir visits entries in lexical order, which is what makes the
	// archive's bytes depend only on the layout's contents.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatUSTAR}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive layout: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive layout: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync archive: %w", err)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
