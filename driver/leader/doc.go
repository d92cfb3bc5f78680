// Package leader decides which controller replica does the work that must happen
// exactly once: rebuilding attachment state, watching nodes and clearing stale
// claims.
//
// Two replicas each clearing claims from their own view could hand a volume to
// two writers; one replica doing it, and a standby that rebuilds the same state
// from VolumeAttachments when it takes over, cannot. Production uses a
// coordination.k8s.io Lease through client-go; standalone runs (csi-sanity, a
// single process) are always the leader (Always). The scenario runner has no
// Elector of its own: client-go's reads the wall clock, so the runner models
// the Lease itself on the mock clock and runs the controller of the replica
// it lets lead with Always.
package leader
