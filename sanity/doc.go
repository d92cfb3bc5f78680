// Package sanity is the csi-sanity binary lane: the csi-sanity command from
// csi-test, at the version go.mod pins, run as a separate process against the
// built rds-csi (--mode=all, loop data plane) and rds-emulator binaries over
// their Unix socket, as root with real loop devices and mounts.
//
// It fails on any failed spec, on any skipped spec that skips.txt does not
// list with its reason, and on any loop device or mount left behind. The
// in-process sanity run (driver/sanity_test.go) stays; this lane checks what
// only separate processes and the released csi-sanity can: the binaries'
// flags, the socket, and the suite exactly as the sidecars' authors run it.
//
// The test carries the build tag sanitybin; `make sanity` runs it. The skip
// list (skips.txt, read with ReadSkips) serves the in-process run as well.
package sanity
