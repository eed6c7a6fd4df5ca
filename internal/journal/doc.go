// Package journal reads systemd journal files (the *.journal and
// *.journal~ files under /var/log/journal) without journalctl, cgo or
// libsystemd, and exports their entries in the JSON form of
// `journalctl -o json`.
//
// The files come from nodes that may be compromised, so the reader treats
// them as hostile: every offset is checked against the file size, object
// sizes and decompressed sizes are capped, the entry array chain must move
// strictly forward (which bounds the walk and rules out cycles), and a file
// that stops making sense is read up to that point and reported, not
// rejected as a whole. Files are read through io.ReaderAt with a small page
// cache; they are never loaded whole.
//
// The on-disk format is the one systemd documents as the Journal File
// Format; docs/journal.md says which parts of it are supported.
package journal
