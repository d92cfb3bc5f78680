// Package loop is the node data plane for the RDS emulator: a volume's backing
// file, which the emulator keeps as a real sparse file, is attached as a loop
// device. Kind clusters and CI have no NVMe/TCP target, but they still need a
// real block device, so that formatting, mounting, raw block publishing and
// online resizing run the same code paths as on hardware.
//
// The kernel is the only record of what is attached. The plugin keeps no state
// of its own, so after a restart it finds its devices again by reading
// /sys/block/loop*/loop/backing_file and comparing it with the backing file's
// symlink-resolved path (the form the kernel reports). Attach refuses to
// return a device unless that lookup would find it again.
//
// The emulator's state directory is not trusted to be shaped the way the
// volume context says: a file path is confined to <BackingDir>/files lexically
// and again after resolving symlinks, because attaching an arbitrary node file
// read-write to a pod would be a privilege escalation.
//
// Devices are configured with ioctls rather than by running losetup, so that
// the plugin image needs no util-linux of a particular version, and so that
// "another process took this free device" (EBUSY) can be told apart from real
// failures and retried.
//
// Detach is deliberately reluctant. LOOP_CLR_FD on a device that is still open
// does not fail: the kernel marks it autoclear and reports success, and the
// device lingers until the last user closes it. A Detach that returned nil
// there would let the controller hand the volume to another node while this
// one still writes to it. So Detach refuses (ErrInUse) when mountinfo or the
// holders directory show a user, claims the device with O_EXCL (which fails
// while it is mounted, in any mount namespace, and keeps new mounts out while
// the device is torn down), and afterwards checks that the device really went
// away. Someone who opens a device only to look at it (udev, or another
// process racing for a free device) is given a moment to close it; from a
// user that stays, the autoclear mark is taken back and Detach reports
// ErrInUse, so the caller retries instead of being misled.
//
// Devices are attached without autoclear (they must outlive the plugin
// process and the gap between NodeStage and the mount), without partition
// scanning (a guest's partition table is not the node's business), and with
// buffered I/O, so the emulator, which reads and copies the same file through
// the page cache, sees what was written through the device.
//
// With Options.AllowHost (the binary sets it with --restrict-hosts) Attach
// first applies the storage's access rule, Allows, to the export's
// nvme-tcp-server-allow-host-name as the emulator holds it, and refuses a
// host it does not allow (dataplane.ErrHostNotAllowed) before it touches a
// device, so kind and CI refuse the wrong host where RDS would. The check is
// made on attach only: a device already bound stays bound, as the loop
// plane has no session for the storage to cut; the scenario runner models
// the cut (scenarios/engine/nvmepath.go).
package loop
