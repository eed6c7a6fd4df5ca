// Command collector-image builds the eksir collector image, a FROM-scratch
// multi-architecture OCI image holding the static collector at
// /eksir-collector, from binaries built beforehand:
//
//	go run . --binary linux/amd64=PATH --binary linux/arm64=PATH \
//	    --out DIR_OR_TAR --tag eksir-collector:VERSION [--created RFC3339]
//
// --out names a folder to create as an OCI image layout, or a file ending in
// .tar to write as a tar of that layout (an oci-archive). The creation time
// is --created, else SOURCE_DATE_EPOCH, else Unix 0. It prints the image
// index digest and each platform's manifest digest. `make collector-image`
// runs it; docs/collector-image.md says how to push and pin the result.
//
// It is a module of its own so that go-containerregistry stays out of
// eksir's go.mod.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/eksir/eksir/tools/collector-image/collectorimage"
)

// binaryFlags collects repeated --binary values, parsed as they come so that
// a bad one is reported by the flag it was given in.
type binaryFlags []collectorimage.Binary

func (b *binaryFlags) String() string { return fmt.Sprint(*b) }

func (b *binaryFlags) Set(s string) error {
	bin, err := collectorimage.ParseBinary(s)
	if err != nil {
		return err
	}
	*b = append(*b, bin)
	return nil
}

// run is main without the process: it returns the exit code (0 done, 1
// failed, 2 bad usage).
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("collector-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		binaries binaryFlags
		out      = fs.String("out", "", "output: a folder to create as an OCI image layout, or a `file` ending in .tar for an oci-archive")
		tag      = fs.String("tag", "", "image `NAME:VERSION`; VERSION becomes the version label")
		created  = fs.String("created", "", "creation time and file mtime, `RFC3339` (default: SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z)")
		source   = fs.String("source", collectorimage.DefaultSource, "org.opencontainers.image.source label")
	)
	fs.Var(&binaries, "binary", "`PLATFORM=PATH` of a prebuilt static collector, once per platform ("+strings.Join(collectorimage.Platforms, ", ")+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "collector-image: error: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	when, err := collectorimage.ResolveCreated(*created, getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(stderr, "collector-image: error: %v\n", err)
		return 2
	}
	res, err := collectorimage.Build(collectorimage.Options{
		Binaries: binaries,
		Out:      *out,
		Tag:      *tag,
		Created:  when,
		Source:   *source,
	})
	if err != nil {
		fmt.Fprintf(stderr, "collector-image: error: %v\n", err)
		return 1
	}
	// Digests on stdout, one "NAME sha256:…" per line for scripts; the rest
	// on stderr.
	fmt.Fprintf(stdout, "index %s\n", res.Index)
	for _, m := range res.Manifests {
		fmt.Fprintf(stdout, "%s %s\n", m.Platform, m.Digest)
	}
	fmt.Fprintf(stderr, "wrote %s (%s, created %s)\n", *out, *tag, when.Format("2006-01-02T15:04:05Z"))
	for _, m := range res.Manifests {
		fmt.Fprintf(stderr, "  %s binary %s\n", m.Platform, m.Binary)
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
