package reconciler

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/recovery"
)

// Event reasons. They are API: operators filter on them with
// kubectl get events --field-selector reason=...
const (
	reasonAttached     = "VolumeAttached"
	reasonDetached     = "VolumeDetached"
	reasonConflict     = "AttachmentConflict"
	reasonStaleCleared = "StaleAttachmentCleared"
	reasonMigStarted   = "MigrationStarted"
	reasonMigCompleted = "MigrationCompleted"
	reasonMigTimedOut  = "MigrationTimedOut"
	reasonGraceUsed    = "GracePeriodUsed"
	reasonStuck        = "VolumeAttachmentStuck"
	reasonRDSDown      = "RDSDisconnected"
	reasonRDSUp        = "RDSReconnected"
	reasonStartup      = "StartupReconciliation"
	reasonRecovered    = "RecoveryCompleted"
)

// Event implements attachment.EventSink: a Kubernetes event on the volume's
// PVC, where the people who own the workload look, and the metrics. It is
// called on the publish path, so it only reads caches.
func (r *Reconciler) Event(e attachment.Event) {
	typ, reason := corev1.EventTypeNormal, ""
	switch e.Type {
	case attachment.Attached:
		reason = reasonAttached
		r.metrics.attach.WithLabelValues(statusSuccess).Inc()
	case attachment.Detached:
		reason = reasonDetached
		r.metrics.detach.WithLabelValues(statusSuccess).Inc()
	case attachment.Conflict:
		typ, reason = corev1.EventTypeWarning, reasonConflict
		r.metrics.attach.WithLabelValues(statusConflict).Inc()
		r.metrics.conflicts.Inc()
	case attachment.StaleCleared:
		reason = reasonStaleCleared
		r.metrics.staleCleared.Inc()
	case attachment.MigrationStarted:
		reason = reasonMigStarted
		r.metrics.migrationActive.Inc()
	case attachment.MigrationCompleted:
		reason = reasonMigCompleted
		r.metrics.migrations.WithLabelValues(resultCompleted).Inc()
		r.metrics.migrationActive.Dec()
	case attachment.MigrationTimedOut:
		typ, reason = corev1.EventTypeWarning, reasonMigTimedOut
		r.metrics.migrations.WithLabelValues(resultTimedOut).Inc()
	case attachment.GracePeriodUsed:
		reason = reasonGraceUsed
		r.metrics.graceUsed.Inc()
	default:
		klog.V(2).InfoS("Unknown attachment event", "type", string(e.Type), "volume", e.Volume, "node", e.Node)
		return
	}
	r.volumeEvent(e.Volume, typ, reason, e.Message)
}

// volumeEvent records an event on the PVC bound to the volume. A volume
// without a PV or claim (being deleted, statically provisioned without a
// claim) is not an error: the event is only logged.
func (r *Reconciler) volumeEvent(volume, typ, reason, msg string) {
	ref := r.pvcRef(volume)
	if ref == nil {
		klog.V(2).InfoS("No PVC for volume event; logged only", "volume", volume, "type", typ, "reason", reason, "message", msg)
		return
	}
	r.recorder.Event(ref, typ, reason, msg)
}

// pvcRef finds the PVC through the PV indexed by volume handle. With more
// than one PV for a handle (a hand-made duplicate) the first by name wins,
// so the choice is stable.
func (r *Reconciler) pvcRef(volume string) *corev1.ObjectReference {
	objs, err := r.pvInf.GetIndexer().ByIndex(pvHandleIndex, volume)
	if err != nil || len(objs) == 0 {
		return nil
	}
	pvs := make([]*corev1.PersistentVolume, 0, len(objs))
	for _, o := range objs {
		if pv, ok := o.(*corev1.PersistentVolume); ok {
			pvs = append(pvs, pv)
		}
	}
	slices.SortFunc(pvs, func(a, b *corev1.PersistentVolume) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for _, pv := range pvs {
		if c := pv.Spec.ClaimRef; c != nil && c.Name != "" {
			return &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID}
		}
	}
	return nil
}

// identityEvent records an event on the controller's own object.
func (r *Reconciler) identityEvent(typ, reason, msg string) {
	if r.o.Identity == nil {
		klog.V(2).InfoS("No identity object for controller event; logged only", "type", typ, "reason", reason, "message", msg)
		return
	}
	r.recorder.Event(r.o.Identity, typ, reason, msg)
}

// RDSStateChanged is called by the driver on RDS connection transitions.
// Repeated reports of the same state are ignored, so the caller may report
// every probe. A reconnect triggers a reconcile: claims that lapsed while
// RDS was down are cleared before the attacher's retries arrive.
func (r *Reconciler) RDSStateChanged(connected bool, reason string) {
	r.rdsMu.Lock()
	known, was := r.rdsKnown, r.rdsConnected
	r.rdsKnown, r.rdsConnected = true, connected
	r.rdsMu.Unlock()
	if known && was == connected {
		return
	}
	switch {
	case !connected:
		r.recovery.End()
		msg := "lost connection to RDS: " + reason + "; volumes cannot be created, deleted or published until it is back, detaches still complete"
		klog.InfoS("RDS disconnected", "reason", reason)
		r.identityEvent(corev1.EventTypeWarning, reasonRDSDown, msg)
	case known:
		klog.InfoS("RDS reconnected", "reason", reason)
		r.identityEvent(corev1.EventTypeNormal, reasonRDSUp, "connection to RDS restored: "+reason)
		r.recovery.Begin()
		r.rdsMu.Lock()
		r.nudge, r.failoverArmed = recovery.ReasonReconnect, false
		r.rdsMu.Unlock()
		r.Trigger("rds-reconnected")
	default:
		// The first report being "connected" is not news, unless this
		// leader started while RDS was down and attaches failed meanwhile.
		r.maybeFailoverNudge()
	}
}

// maybeFailoverNudge decides, once, a new leader's nudge: attaches that
// failed before it led (no leader, or RDS down) are re-queued as soon as
// both its state is rebuilt and RDS is connected, whichever comes last.
// Deciding once, from whichever side completes the pair, gives one extra
// run or none, whatever the order of the two.
func (r *Reconciler) maybeFailoverNudge() {
	if !r.Ready() {
		return
	}
	r.rdsMu.Lock()
	if !r.failoverArmed || !r.rdsKnown || !r.rdsConnected {
		r.rdsMu.Unlock()
		return
	}
	r.failoverArmed = false
	r.rdsMu.Unlock()
	if r.recovery.Failed() == 0 {
		return
	}
	r.rdsMu.Lock()
	if r.nudge == "" {
		r.nudge = recovery.ReasonFailover
	}
	r.rdsMu.Unlock()
	r.recovery.Begin()
	r.Trigger("leader-started")
}

// recoveryCompleted reports a completed recovery on the controller.
func (r *Reconciler) recoveryCompleted(took time.Duration, nudged int) {
	r.identityEvent(corev1.EventTypeNormal, reasonRecovered, fmt.Sprintf(
		"every VolumeAttachment of %s is attached, %s after the RDS connection came back (%d failed attachments re-queued with the external-attacher)",
		r.o.DriverName, took.Round(time.Millisecond), nudged))
}

// nudgeAttacher re-queues failed attachments with the external-attacher:
// all of them when a reconnect or a new leader asked for it, and those of
// the volumes whose stale claims this run cleared. It runs at the end of a
// run, after the sweep, so the retries find the claims already gone. With
// RDS down it waits: the retries would fail, and the reconnect asks again.
func (r *Reconciler) nudgeAttacher(ctx context.Context, cleared []attachment.Claim) error {
	r.rdsMu.Lock()
	connected, why := r.rdsKnown && r.rdsConnected, r.nudge
	if connected {
		r.nudge = ""
	}
	r.rdsMu.Unlock()
	if !connected {
		return nil
	}
	if why != "" {
		_, err := r.recovery.Nudge(ctx, why, nil)
		return err
	}
	if len(cleared) == 0 {
		return nil
	}
	vols := make(map[string]bool, len(cleared))
	for _, c := range cleared {
		vols[c.Volume] = true
	}
	_, err := r.recovery.Nudge(ctx, recovery.ReasonClaimCleared, vols)
	return err
}
