// Package procfs parses the text formats of Linux /proc.
//
// Every parser takes bytes or an io.Reader and returns typed values; none of
// them opens a file, so they can be tested and fuzzed on their own and reused
// on a /proc tree copied off a node. The content is treated as hostile: an
// attacker on the node chooses process names, command lines, environment
// variables, mount points and socket paths, and may put spaces, ')' or
// newlines in them. Parsers therefore never panic, and line-oriented parsers
// keep the lines they understand and report the others in a *LineErrors
// instead of giving up on the whole file.
package procfs
