// Package rds is everything the rds-csi driver needs to talk to a MikroTik
// ROSE Data Server (RDS): a RouterOS CLI command builder, a parser for
// RouterOS "print detail" output, error classification, an SSH transport and
// a connection manager that keeps one long-lived SSH connection alive.
//
// The layers, bottom up:
//
//   - Connector / Conn: one SSH connection (SSHConnector), one session per
//     command, a bounded number of concurrent sessions. The dialer is a plain
//     func so tests can hand it an in-memory net.Pipe.
//   - Manager: owns the Conn, reconnects with jittered exponential backoff,
//     runs a health check, fails fast while disconnected, and exports the
//     connection metrics. It implements Transport.
//   - Client: typed operations (CreateDisk, GetDisk, DeleteDisk, ...) over any
//     Transport. It validates and quotes every argument, classifies errors
//     from the printed text and reads sizes back from the device.
//
// Every read the client decides on is a proven listing: one script prints
// the listing and then counts the same where clause, so a reply cut or
// shortened anywhere fails its count instead of reading as a shorter
// listing, and one round trip does what a listing and a count did. A
// destructive command travels in the same script in front of the read that
// verifies it (RouterOS stops a script at its first error: its scripting
// manual runs command lines, ended by ';' or a newline, one by one until the
// end or a runtime error; deploy/README.md has the check for hardware), so a
// create is two scripts and a delete three.
//
// RouterOS reports errors on stdout and its exit status is undocumented, so
// every decision is made from the text; see Classify. Output that wraps at
// the terminal width is re-joined by ParseDetail; the rule it follows is
// documented there because a wrong guess silently corrupts a path or NQN.
//
// All waiting (timeouts, backoff, health-check intervals, durations) goes
// through an injected clock.Clock, so tests and the scenario runner can drive
// time with clock.NewMock.
package rds
