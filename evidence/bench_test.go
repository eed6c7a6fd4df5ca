package evidence

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSealDir seals EKSIR_BENCH_DIR (for profiling with a real data
// set, e.g. 100,000 small files); make bench runs the full comparison.
func BenchmarkSealDir(b *testing.B) {
	dir := os.Getenv("EKSIR_BENCH_DIR")
	if dir == "" {
		b.Skip("set EKSIR_BENCH_DIR to a folder to seal")
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	out := b.TempDir()
	if o := os.Getenv("EKSIR_BENCH_OUT"); o != "" {
		out = o
	}
	for i := 0; i < b.N; i++ {
		res, err := SealDir(context.Background(), dir, SealOptions{Incident: "bench", OutDir: out, Compress: CompressNone, Signer: NewSigner(priv), SealTime: time.Unix(0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.PayloadBytes)
		if i == b.N-1 && os.Getenv("EKSIR_BENCH_VERIFY") != "" {
			rep, err := Verify(context.Background(), filepath.Join(out, "bench.tar"), VerifyOptions{})
			if err != nil || !rep.OK {
				b.Fatal(err, rep.Failed())
			}
		}
	}
}

// BenchmarkVerify verifies EKSIR_BENCH_ARCHIVE, for profiling.
func BenchmarkVerify(b *testing.B) {
	archive := os.Getenv("EKSIR_BENCH_ARCHIVE")
	if archive == "" {
		b.Skip("set EKSIR_BENCH_ARCHIVE to an archive to verify")
	}
	for i := 0; i < b.N; i++ {
		rep, err := Verify(context.Background(), archive, VerifyOptions{})
		if err != nil || !rep.OK {
			b.Fatal(err, rep.Failed())
		}
	}
}
