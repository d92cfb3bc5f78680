package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

// gracePeriodAttribute is the StorageClass parameter the controller copies
// into the volume context (driver.paramGracePeriod). The PV keeps it in
// spec.csi.volumeAttributes, which is how a rebuilt claim gets the grace
// the original publish gave it.
const gracePeriodAttribute = "gracePeriod"

// Why a node counts as gone; also the values of the log's reason field.
const (
	goneDeleted      = "deleted"
	goneOutOfService = "out-of-service"
	goneNotReady     = "not-ready"
)

// readiness returns whether the node is Ready and, if it is not, since
// when (zero if the node never reported). Unknown counts as not Ready: that
// is what the node controller writes when the kubelet stops posting.
func readiness(n *corev1.Node) (ready bool, notReadySince time.Time) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return true, time.Time{}
			}
			return false, c.LastTransitionTime.Time
		}
	}
	return false, time.Time{}
}

// outOfService returns when the out-of-service taint was added (zero if
// the API server did not say) and whether it is there. Any effect counts:
// the taint is the operator's statement that the node is down.
func outOfService(n *corev1.Node) (since time.Time, ok bool) {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			if t.TimeAdded != nil {
				return t.TimeAdded.Time, true
			}
			return time.Time{}, true
		}
	}
	return time.Time{}, false
}

// nodeVerdict decides whether a node is gone. n is nil when the node is
// confirmed deleted. prev is the node's previous state, if it was gone.
// wake is a future instant at which the verdict changes by itself (a
// NotReady timeout running out), or zero.
func (r *Reconciler) nodeVerdict(n *corev1.Node, prev *goneState, now time.Time) (g goneState, gone bool, wake time.Time) {
	at := func(t time.Time) time.Time {
		if t.IsZero() || t.After(now) {
			return now
		}
		return t.UTC()
	}
	if n == nil {
		if prev != nil && prev.reason == goneDeleted {
			return *prev, true, time.Time{}
		}
		// When it was deleted is unknown; now starts the grace late rather
		// than early.
		return goneState{goneDeleted, now}, true, time.Time{}
	}
	if n.DeletionTimestamp != nil {
		return goneState{goneDeleted, at(n.DeletionTimestamp.Time)}, true, time.Time{}
	}
	if since, ok := outOfService(n); ok {
		return goneState{goneOutOfService, at(since)}, true, time.Time{}
	}
	ready, notReadySince := readiness(n)
	if !ready && r.o.NotReadyTimeout > 0 && !notReadySince.IsZero() {
		deadline := notReadySince.Add(r.o.NotReadyTimeout).UTC()
		if !now.Before(deadline) {
			return goneState{goneNotReady, deadline}, true, time.Time{}
		}
		wake = deadline
	}
	// A deleted node that reappears is back only once it is Ready: the
	// object may be re-created by automation before the machine is.
	if !ready && prev != nil && prev.reason == goneDeleted {
		return *prev, true, wake
	}
	return goneState{}, false, wake
}

// vaInfo is what the reconciler needs from one of our VolumeAttachments.
type vaInfo struct {
	name string
	node string
	// volume is the CSI volume handle; empty when the PV is unknown, in
	// which case the attachment cannot be matched to a claim.
	volume     string
	pv         string
	mode       attachment.Mode
	grace      time.Duration
	attached   bool
	deleting   bool
	finalizers []string
	created    time.Time
}

// toVA extracts vaInfo from one of our VolumeAttachments; ok is false for
// other drivers' objects.
func (r *Reconciler) toVA(obj any) (vaInfo, bool) {
	va, ok := obj.(*storagev1.VolumeAttachment)
	if !ok || va.Spec.Attacher != r.o.DriverName {
		return vaInfo{}, false
	}
	v := vaInfo{
		name:       va.Name,
		node:       va.Spec.NodeName,
		attached:   va.Status.Attached,
		deleting:   va.DeletionTimestamp != nil,
		finalizers: va.Finalizers,
		created:    va.CreationTimestamp.Time.UTC(),
	}
	var src *corev1.CSIPersistentVolumeSource
	var modes []corev1.PersistentVolumeAccessMode
	var volumeMode *corev1.PersistentVolumeMode
	switch {
	case va.Spec.Source.PersistentVolumeName != nil:
		v.pv = *va.Spec.Source.PersistentVolumeName
		pv, err := r.pvs.Get(v.pv)
		if err != nil {
			return v, true
		}
		src, modes, volumeMode = pv.Spec.CSI, pv.Spec.AccessModes, pv.Spec.VolumeMode
	case va.Spec.Source.InlineVolumeSpec != nil:
		s := va.Spec.Source.InlineVolumeSpec
		src, modes, volumeMode = s.CSI, s.AccessModes, s.VolumeMode
	}
	if src == nil || src.Driver != r.o.DriverName || src.VolumeHandle == "" {
		return v, true
	}
	v.volume = src.VolumeHandle
	v.mode = modeOf(modes, volumeMode, v.volume)
	if g, err := time.ParseDuration(src.VolumeAttributes[gracePeriodAttribute]); err == nil && g >= 0 {
		v.grace = g
	}
	return v, true
}

// modeOf mirrors the controller: only ReadWriteMany on a raw block volume
// may have two holders.
func modeOf(modes []corev1.PersistentVolumeAccessMode, vm *corev1.PersistentVolumeMode, volume string) attachment.Mode {
	multi := slices.Contains(modes, corev1.ReadWriteMany)
	block := vm != nil && *vm == corev1.PersistentVolumeBlock
	m, err := attachment.ModeFor(multi, block)
	if err != nil {
		// A shared filesystem the controller would refuse today; one
		// holder is the safe reading.
		klog.V(2).InfoS("Volume treated as single-node", "volume", volume, "reason", err)
	}
	return m
}

func (r *Reconciler) indexPVByHandle(obj any) ([]string, error) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Spec.CSI == nil || pv.Spec.CSI.Driver != r.o.DriverName || pv.Spec.CSI.VolumeHandle == "" {
		return nil, nil
	}
	return []string{pv.Spec.CSI.VolumeHandle}, nil
}

// attachmentName is the name Kubernetes gives the VolumeAttachment of a
// CSI volume on a node (pkg/volume/csi: sha256 of handle, driver, node).
// It lets the reconciler confirm with one GET that an attachment is really
// gone before dropping a claim.
func attachmentName(volume, driver, node string) string {
	sum := sha256.Sum256([]byte(volume + driver + node))
	return "csi-" + hex.EncodeToString(sum[:])
}

type claimKey struct{ volume, node string }

func compareKeys(a, b claimKey) int {
	switch {
	case a.volume < b.volume:
		return -1
	case a.volume > b.volume:
		return 1
	case a.node < b.node:
		return -1
	case a.node > b.node:
		return 1
	}
	return 0
}
