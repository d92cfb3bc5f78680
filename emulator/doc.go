// Package emulator is a MikroTik ROSE Data Server as far as rds-csi can tell: an
// SSH server speaking the RouterOS /disk and /file dialect, printing like RouterOS
// 7, keeping real sparse backing files that survive kill -9, and failing on
// purpose when asked.
//
// The driver is developed and tested against it first, so every quirk of the real
// box that the driver must cope with is reproduced here rather than smoothed over.
// The pieces are separate packages: routeros (the dialect), store (disks, files and
// the crash-safe journal), console (the interpreter and printer), sshd (the SSH
// front end), faults (deliberate failures) and control (the HTTP switchboard).
// This package wires them together and adds metrics and the command log.
package emulator
