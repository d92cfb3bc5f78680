// Package recovery shortens the time from "RDS is back" (or "the stale
// claim is gone") to every volume attached again, and measures it.
//
// The external-attacher retries a failed VolumeAttachment with its own
// exponential backoff (1s doubling to 5m by default), which grows through
// an outage: after hours of failures a displaced volume waits up to five
// more minutes after the storage came back. The attacher re-queues a
// VolumeAttachment at once on any change other than its status error
// fields, its resourceVersion or managedFields (shouldEnqueueVAChange in
// external-attacher's pkg/controller/controller.go, v4.13.0), so Nudge
// patches one annotation, RetryAnnotation, on every VolumeAttachment of the
// driver whose attach failed. That is all it changes: no status, no spec,
// and the attacher's failure count (hence its backoff if the retry fails
// again) is left as it was.
//
// Tracker measures a recovery: from Begin (the RDS connection is back) to
// the first moment no VolumeAttachment of the driver is waiting to attach,
// reported as rds_csi_recovery_duration_seconds and a RecoveryCompleted
// event on the controller.
//
// What it cannot shorten: the attach-detach controller's own retry of a
// failed attach (500ms doubling to 2m2s in kube-controller-manager) and
// the kubelet's retry of a failed NodeStage; both are keyed on objects the
// driver does not own.
package recovery
