// Package memconn is a buffered, in-memory, full-duplex net.Conn pair.
//
// net.Pipe is synchronous: a Write waits for the peer's Read, so two peers
// that both speak first (SSH's version exchange) deadlock on it. A socket
// pair buffers in the kernel, but its reader waits in a system call, which
// a testing/synctest bubble cannot tell from work in progress. Here each
// direction is a byte buffer guarded by a sync.Cond: writes complete at
// once up to a bound, readers wait on the condition, and a bubble sees them
// as durably blocked.
package memconn
