// Package evidence is the part of eksir a forensics lab has to trust: the case
// store with its hashing writer, the signed custody log, the BagIt seal and the
// verifier. It imports nothing else of the project and stays small enough to
// audit.
package evidence
