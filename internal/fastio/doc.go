// Package fastio is the file I/O under evidence sealing and verification,
// shaped for throughput and bounded memory: archives written in aligned
// blocks with O_DIRECT where the filesystem allows, archives read from the
// page cache or with O_DIRECT depending on what is cached, payload files
// opened relative to their folder with raw system calls, pooled read
// buffers, and tar headers rendered off the writing goroutine.
//
// It knows nothing of bags, hashes' meaning or custody: a caller passes the
// hash to feed and the headers to render. Every type here moves the bytes
// it is given unchanged; the measurements behind each choice are in
// docs/BENCHMARKS.md ("Why the evidence I/O is shaped this way").
package fastio
