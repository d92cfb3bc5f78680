// Package hostnqn derives a node's NVMe host identity from its CSI node ID,
// so that the controller knows the host NQN of every node without asking it:
// the node plugin connects with exactly this identity (nvme connect
// --hostnqn, --hostid), and the controller writes it into an export's
// nvme-tcp-server-allow-host-name when it publishes a volume to the node.
//
// # Format
//
// The host NQN is
//
//	nqn.2026-12.io.rds-csi:node:<node ID>
//
// when the node ID is made of lower-case letters, digits, '.', '-' (a
// Kubernetes node name, RFC 1123) and the result fits the NVMe limit of 223
// bytes; the ID is readable in RouterOS output and in the kernel's
// /sys/class/nvme/*/hostnqn. Any other ID (upper case, other bytes, too long)
// is refused: a host NQN reaches RouterOS and nvme-cli command lines, so it
// is built only from an alphabet that needs no escaping anywhere.
//
// The host ID is a UUID (version 5 layout, SHA-1 of the host NQN under a
// fixed namespace), so the same node always presents the same pair: the
// NVMe specification asks that a host keep one host ID per host NQN, and a
// target may refuse a second controller of one NQN with another ID.
//
// Both are pure functions of the node ID: nothing is stored, a node renamed
// is a new host.
package hostnqn
