// Package console is the emulator's RouterOS interpreter: it runs parsed commands
// against the store and prints the answer the way RouterOS 7 on RDS prints it.
//
// The printing matters as much as the semantics. The driver's parser must survive
// real output, so the emulator reproduces its awkward parts on purpose: the Flags
// legend even when nothing matches, right-aligned indices, wrapping at the terminal
// width (also inside a value), thousands separated by spaces, lossy human sizes
// next to exact byte counts, and errors printed on stdout rather than signalled by
// the exit status.
//
// A full print of 10,000 disks is the one O(n) answer, so /disk print detail
// streams: each property is formatted into one reused token buffer and laid out
// into one reused line buffer, straight into an output grown once for the whole
// listing (see detailWriter). The generic entry/prop form remains for the table
// view and /file; a test holds the two to the same bytes.
package console
