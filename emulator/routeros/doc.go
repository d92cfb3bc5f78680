// Package routeros is the command-language front end of the RouterOS emulator.
//
// The CSI driver talks to ROSE Data Server by typing RouterOS console commands
// over SSH, so the emulator is only as useful as its fidelity to what the real
// console would accept or reject. A permissive string matcher would let driver
// bugs through that hardware rejects (a missing quote, a stray `;`, a `$` that
// RouterOS would expand as a variable), and would make quoting bugs look like
// data bugs. This package therefore lexes and parses the console dialect
// properly and reports failures with the same texts and line/column positions
// RouterOS prints ("bad command name", "syntax error", "expected end of
// command"), so the driver's error handling is exercised against realistic
// output.
//
// The lexer is context-sensitive because RouterOS's grammar is: after `name=`
// almost any byte is part of an unquoted value (paths, NQNs with `:`), while
// in command position the same bytes separate words. The parser therefore
// drives the lexer, asking for the kind of token it expects next.
//
// A script is parsed completely before anything runs, as RouterOS does: one
// syntax error anywhere means no command executes. That property matters for
// safety, because a half-executed create/delete sequence is exactly the kind
// of partial state the driver cannot recover from cleanly.
//
// Quote is the single place that decides how a Go string becomes a RouterOS
// literal; the emulator's printer and the tests use it so that values
// round-trip exactly, including hostile ones (`;`, `"`, `$(...)`, newlines).
package routeros
