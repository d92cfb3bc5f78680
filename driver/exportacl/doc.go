// Package exportacl reads an export's allow-list (RouterOS's
// nvme-tcp-server-allow-host-name) from RDS for a data plane that enforces
// storage-side access control itself: the loop data plane, which stands in
// for NVMe/TCP on kind and in CI, asks it before attaching, so those lanes
// refuse the wrong host by the same rule the hardware's target applies.
//
// On hardware nothing on the node needs this: the target refuses the
// connection. The node's RDS connection here is its own (a node plugin is
// not a controller and has no control plane); it reads, never writes.
package exportacl
