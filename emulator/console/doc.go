// Package console is the emulator's RouterOS interpreter: it runs parsed commands
// against the store and prints the answer the way RouterOS 7 on RDS prints it.
//
// The printing matters as much as the semantics. The driver's parser must survive
// real output, so the emulator reproduces its awkward parts on purpose: the Flags
// legend even when nothing matches, right-aligned indices, wrapping at the terminal
// width (also inside a value), thousands separated by spaces, lossy human sizes
// next to exact byte counts, and errors printed on stdout rather than signalled by
// the exit status.
package console
