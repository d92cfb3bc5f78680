// Package store is the emulator's memory of what an RDS holds: the pool, the
// file disks and the files behind them, kept crash-consistent on the host.
//
// The emulator exists to prove that rds-csi survives real failures, and the
// worst of them is the storage server itself dying mid-command. A store that
// lost or invented volumes across a kill -9 would make the emulator, not the
// driver, the thing under test. So every change is written to an append-only
// journal (length-prefixed, CRC-32C checked records) before the host is
// touched and before the caller is told it worked; Open replays the journal,
// finishes any host change a crash interrupted, and folds everything into a
// snapshot. Damage at the very end of the journal is a write that never
// returned and is cut off; damage with intact records behind it means
// acknowledged changes would be lost, so Open refuses to start instead.
//
// Backing files are real sparse files under Dir/files because the emulator
// attaches loop devices to them and the data written there must outlive
// restarts. Their accounting follows RouterOS, quirks included: space is
// counted by logical size, and /disk remove leaves the file (and its space)
// behind until /file remove, which is the storage leak the driver must not
// cause. Host files only ever grow: a replayed record that would shrink or
// rewrite a file could destroy data a loop device wrote after it.
//
// With Options.Fsync, changes that arrive together share one fsync (group
// commit, commit.go): a change is appended under the store's lock but flushed
// after it is released, by whichever waiting caller leads the next flush,
// and its host change runs in journal order after that flush. No reply,
// success, error or read, leaves before everything it was built from is
// durable, so a machine crash can never take back what a caller was told.
//
// A copy (/disk add copy-from) costs what the data costs: a reflink where
// the filesystem has one, else only the source's data extents
// (SEEK_DATA/SEEK_HOLE, then copy_file_range). It runs without the store's
// lock, so other commands go on meanwhile; the new disk appears only once
// its staged copy under tmp/ is complete, fsynced and journaled. The data is
// moved by a thread at the lowest CPU priority (sparse_linux.go), so a
// command arriving during a large copy is not queued behind it for a time
// slice.
//
// Every lookup by slot, ID or file name is a map access and every mutation
// appends one record, so a server with ten thousand volumes behaves like one
// with ten. Options.Dir "" keeps the same semantics entirely in memory for the
// scenario runner, which wants speed and no cleanup.
package store
