// Package evidence is the part of eksir a forensics lab has to trust: the case
// store with its hashing writer, the signed custody log, the BagIt seal and the
// verifier. It stays small enough to audit: the only part of the project it
// imports is internal/fastio, which moves the archive's and the payload's bytes
// (aligned, O_DIRECT and raw system-call I/O) without deciding anything about
// them.
package evidence
