// Package reconciler keeps the controller's attachment manager true to the
// cluster, so that the night this driver was built for needs no manual step.
//
// That night RDS crashed while nodes failed. The VolumeAttachments of the
// dead nodes kept their volumes, every attempt to attach them elsewhere was
// refused, and operators removed finalizers and restarted the controller by
// hand: a three-hour outage became five. The attachment manager
// (driver/attachment) already knows how to let a gone node's claims lapse
// after a grace period; what it cannot know is which nodes are gone, what
// was attached before the controller restarted, or that its memory and the
// API server disagree. This package tells it:
//
//   - At start-up it rebuilds the manager from VolumeAttachments, the durable
//     record, before the gRPC server serves, because an empty manager would
//     hand every attached volume to the first node that asks. Until the
//     rebuild has succeeded the reconciler is not Ready and NodeExists
//     answers ErrNotReady, which the controller turns into UNAVAILABLE: a
//     publish that cannot be decided safely is refused, not guessed.
//   - It watches Nodes. Deletion and the node.kubernetes.io/out-of-service
//     taint are the cluster's assertion that a node no longer writes, so
//     they start the grace period; NotReady alone does not (an overloaded or
//     partitioned node still writing looks exactly like that), unless the
//     operator opts in with Options.NotReadyTimeout.
//   - It reconciles periodically and on demand: clears lapsed claims so that
//     volumes nobody asks for are freed too, repairs drift between the
//     manager and VolumeAttachments in both directions, and reports what it
//     must not fix itself (finalizers on VolumeAttachments of gone nodes,
//     migrations past their window).
//   - It turns the manager's decisions into Kubernetes events on the PVC and
//     into Prometheus metrics, because after an incident the question is
//     "what did the driver decide, and when".
//
// Two rules run through everything. First, absence of evidence is not
// evidence: nothing is decided from an informer cache that has not synced,
// and an API error never clears a claim (a node whose GET fails is not
// gone, a VolumeAttachment whose GET fails still exists). Clearing too much
// corrupts data; clearing too little only delays an attach. Second,
// everything that takes time takes it from the injected clock, and
// everything observable happens in sorted order, so the scenario runner can
// replay hours of outage on a mock clock and compare traces byte for byte.
package reconciler
