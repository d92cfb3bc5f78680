// Package nvme is the hardware data plane: it attaches RDS volumes to a node
// over NVMe/TCP with nvme-cli and finds their block devices in sysfs.
//
// The kernel numbers controllers and namespaces in the order it creates them,
// and recycles the numbers. After an RDS crash and reconnect the controller
// that was nvme0 can come back as nvme3, and /dev/nvme0n1 can by then belong to
// another volume: formatting or mounting a guessed name destroys a neighbour's
// data. So a device is only ever found by identity, from the volume's NQN to
// its subsystem to the namespace whose nsid is 1 (RDS exports one namespace per
// subsystem), and the package keeps no state of its own: after a plugin restart
// or a renumbering, sysfs still answers correctly and a remembered name would
// not.
//
// NQNs, addresses and timeouts come from the volume and publish contexts,
// which anyone allowed to create a PersistentVolume can set. They are validated
// and passed to nvme-cli as separate arguments, never through a shell, so no
// value can become an option.
//
// Disconnecting a subsystem under a mounted filesystem or a device-mapper
// holder loses writes and can leave processes stuck in uninterruptible sleep,
// so Detach refuses while the device is held or mounted and disconnects only
// this volume's NQN. nvme ns-rescan merely queues the kernel's namespace scan,
// so Rescan watches the size for a bounded time instead of reading it once.
// Every wait runs on the injected clock and every command on the caller's
// context, so nothing here can block a CSI call forever.
package nvme
