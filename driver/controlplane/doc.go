// Package controlplane assembles the rds-csi controller: the RDS connection
// manager, the attachment rules, the reconciler and the CSI controller
// service, and the wiring between them.
//
// It is the only place that wiring is written. The binary (cmd/rds-csi), the
// scenario engine and the controller-level tests all call New with their own
// seams (clock, Kubernetes client, RDS connector, metrics registerer, event
// recorder, leader elector), so a replay exercises the controller the binary
// runs, not a copy of it; a test in this package fails if any of them builds
// the parts another way.
//
// The parts depend on each other in a cycle: the attachment rules report
// events to the reconciler, the reconciler drives the attachment rules, and
// the RDS manager's transitions reach the reconciler. New builds them in the
// one order that works and closes the cycle itself, so no caller captures a
// part that is not yet built.
//
// Lifecycle: New builds; Start begins connecting to RDS (waiting at most the
// manager's InitialConnectTimeout); Run campaigns for leadership and, on
// becoming leader, rebuilds the attachment state from the VolumeAttachments,
// starts the reconciler and only then serves; Close ends the RDS connection.
// Without a Kubernetes client the control plane is standalone (csi-sanity, a
// single process): no reconciler, attachment rules in memory, nodes from a
// fixed list.
package controlplane
