// Package dataplane is the node plugin's data plane seam: "make this volume a local
// block device" and "release it", behind one small interface with two real
// implementations.
//
// On hardware the volume is an NVMe/TCP namespace exported by RDS (package nvme);
// against the emulator it is the emulator's backing file attached as a loop device
// (package loop), a real block device that gets a real filesystem and real mounts,
// so CI exercises the same formatting and mounting code as production. The
// scenario runner plugs in an in-memory fake.
package dataplane
