package engine

import (
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// The attach-detach controller's side of an attach, at its upstream
// defaults (kube-controller-manager v1.37, read in its source):
//
//   - an attach operation (csi_attacher.Attach) creates the VolumeAttachment
//     and then polls it, the first look 500 ms in, then every 500 ms x 1.05
//     up to 7 s, for at most 2 minutes (csiTimeout);
//   - it succeeds when the VolumeAttachment says attached: only then is the
//     volume in node.status.volumesAttached and may the kubelet mount it;
//   - it fails at once when the VolumeAttachment carries an attach error, and
//     the next operation for that volume and node waits out an exponential
//     backoff (exponentialbackoff: 500 ms, doubling, at most 2m2s) that only
//     a success resets. No VolumeAttachment change wakes it: the attach-detach
//     controller has no VolumeAttachment event handler.
//
// The jitter of the poll interval (10%) is left out; the reconciler's 100 ms
// loop period is rounded away.
const (
	adcFirstPoll     = 500 * time.Millisecond
	adcPollFactor    = 1.05
	adcPollMax       = 7 * time.Second
	adcAttachTimeout = 2 * time.Minute
	adcRetryStart    = 500 * time.Millisecond
	adcRetryMax      = 2*time.Minute + 2*time.Second
)

// adcAttach is one VolumeAttachment's attach as the attach-detach
// controller runs it.
type adcAttach struct {
	confirmed bool          // reported in node.status.volumesAttached
	started   time.Time     // the running operation's start; zero: none runs
	pollAt    time.Time     // its next look at the VolumeAttachment
	poll      time.Duration // the interval after that look
	nextOp    time.Time     // no operation before this (backoff)
	backoff   time.Duration
}

// step runs the operation to now against what the external-attacher wrote;
// it returns "attached", "failed" or "".
func (a *adcAttach) step(now time.Time, va *vaState) string {
	if a.confirmed {
		return ""
	}
	if a.started.IsZero() {
		if now.Before(a.nextOp) {
			return ""
		}
		a.started, a.pollAt, a.poll = now, now.Add(adcFirstPoll), adcFirstPoll
	}
	for !now.Before(a.pollAt) {
		switch {
		case va.attached:
			a.confirmed, a.started, a.backoff = true, time.Time{}, 0
			return "attached"
		case va.attachErr, !a.pollAt.Before(a.started.Add(adcAttachTimeout)):
			a.started = time.Time{}
			if a.backoff == 0 {
				a.backoff = adcRetryStart
			} else {
				a.backoff = min(2*a.backoff, adcRetryMax)
			}
			a.nextOp = now.Add(a.backoff)
			return "failed"
		}
		a.poll = min(time.Duration(float64(a.poll)*adcPollFactor), adcPollMax)
		a.pollAt = a.pollAt.Add(a.poll)
	}
	return ""
}

// due is the next instant the operation acts on its own.
func (a *adcAttach) due() (time.Time, bool) {
	switch {
	case a.confirmed:
		return time.Time{}, false
	case a.started.IsZero():
		return a.nextOp, true
	}
	return a.pollAt, true
}

// adcStep runs the attach-detach controller's operation for a wanted
// attachment (adc.go) and traces its outcome.
func (k *kubeSim) adcStep(va *vaState, now time.Time) {
	switch va.adc.step(now, va) {
	case "attached":
		k.w.record(trace.KindADC, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "attached"})
	case "failed":
		k.w.record(trace.KindADC, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "attach-failed",
			trace.FieldRetryIn: va.adc.backoff.String()})
	}
}

// createVA is the attach-detach controller creating the VolumeAttachment
// of a wanted attachment; the external-attacher (attacher.go) takes it from
// there.
func (k *kubeSim) createVA(key vaKey) error {
	v := k.vols[key.vol]
	pv := "pv-" + v.Name
	obj := &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: vaName(v.ID, key.node), CreationTimestamp: metav1.NewTime(k.w.Clock.Now())},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: driver.DefaultName, NodeName: key.node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
	}
	if _, err := k.w.Kube.StorageV1().VolumeAttachments().Create(k.w.ctx, obj, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	k.vas[key] = &vaState{key: key, name: obj.Name, nextTry: k.w.Clock.Now()}
	k.vaOrder = nil
	k.w.record(trace.KindVA, map[string]any{trace.FieldVolume: key.vol, trace.FieldNode: key.node, trace.FieldOp: "create"})
	return nil
}
