// Command hashlimit prints the machine's SHA-256 hashing limit: the
// single-core crypto/sha256 throughput over 1 MiB blocks, and that figure
// times the number of cores. It is the ceiling the seal benchmark is
// compared with (docs/BENCHMARKS.md).
package main

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"time"
)

func main() {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h := sha256.New()
	// Warm up, then hash for about two seconds.
	for i := 0; i < 64; i++ {
		h.Write(buf)
	}
	start := time.Now()
	var n int64
	for time.Since(start) < 2*time.Second {
		for i := 0; i < 64; i++ {
			h.Write(buf)
		}
		n += 64 << 20
	}
	perCore := float64(n) / time.Since(start).Seconds()
	fmt.Printf("%.0f %d %.0f\n", perCore, runtime.NumCPU(), perCore*float64(runtime.NumCPU()))
}
