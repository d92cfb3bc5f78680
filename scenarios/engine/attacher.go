package engine

import (
	"context"
	"errors"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/driver/recovery"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// launch runs the attacher's call in the background, bounded by its
// --timeout; complete() takes the result on the engine's goroutine. The
// call runs until it returns or blocks (on a hung RDS, a held lock's
// channel) before launch returns, so the calls of one instant run in the
// order they are launched, not in the scheduler's.
func (k *kubeSim) launch(va *vaState, op string) {
	w := k.w
	v := k.vols[va.key.vol]
	va.inflight = true
	k.seq++
	seq := k.seq
	c := w.ctrl
	ctx, cancel := w.vc.view().WithTimeout(w.ctx, w.opts.RPCTimeout)
	started := w.Now()
	go func() {
		defer cancel()
		var pctx map[string]string
		var err error
		switch {
		case c == nil:
			err = status.Error(codes.Unavailable, "no controller serves the CSI socket")
		case op == "unpublish":
			err = w.unpublish(ctx, c, v.ID, va.key.node)
		default:
			var r *csi.ControllerPublishVolumeResponse
			r, err = c.cp.Driver.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: v.ID, NodeId: va.key.node,
				VolumeCapability: v.capability(), VolumeContext: v.volCtx})
			pctx = r.GetPublishContext()
		}
		w.inv.rpcReturned(op, started, w.Now())
		k.mu.Lock()
		k.done = append(k.done, opResult{seq: seq, key: va.key, op: op, err: err, pctx: pctx})
		k.mu.Unlock()
	}()
	w.settle()
}

func (k *kubeSim) complete(r opResult) error {
	w := k.w
	va := k.vas[r.key]
	va.inflight = false
	code := status.Code(r.err)
	if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) {
		code = codes.DeadlineExceeded
	}
	method := map[string]string{"publish": "ControllerPublishVolume", "unpublish": "ControllerUnpublishVolume"}[r.op]
	w.record(trace.KindRPC, map[string]any{trace.FieldMethod: method, trace.FieldKey: r.key.vol + "@" + r.key.node, trace.FieldCode: code.String()})
	now := w.Clock.Now()
	requeued := va.requeue
	va.requeue = false
	if r.err != nil {
		if va.backoff == 0 {
			va.backoff = attachRetryStart
		} else {
			va.backoff = min(2*va.backoff, attachRetryMax)
		}
		va.nextTry = now.Add(va.backoff)
		if requeued {
			va.nextTry = now
		}
		if r.op == "publish" {
			va.attachErr = true
			w.record(trace.KindVA, map[string]any{trace.FieldVolume: r.key.vol, trace.FieldNode: r.key.node, trace.FieldOp: "attach-failed", trace.FieldCode: code.String()})
			// As the attacher's saveAttachError: the failure is on the object.
			if err := k.setStatus(va, false, status.Convert(r.err).Message()); err != nil {
				return err
			}
		}
		return nil
	}
	va.backoff = 0
	switch r.op {
	case "publish":
		va.attached, va.attachErr, va.publishCtx = true, false, r.pctx
		if err := k.setStatus(va, true, ""); err != nil {
			return err
		}
		w.record(trace.KindVA, map[string]any{trace.FieldVolume: r.key.vol, trace.FieldNode: r.key.node, trace.FieldOp: "attached"})
	case "unpublish":
		if err := w.Kube.StorageV1().VolumeAttachments().Delete(w.ctx, va.name, metav1.DeleteOptions{}); err != nil &&
			!apierrors.IsNotFound(err) {
			return err
		}
		delete(k.vas, r.key)
		k.vaOrder = nil
		w.record(trace.KindVA, map[string]any{trace.FieldVolume: r.key.vol, trace.FieldNode: r.key.node, trace.FieldOp: "deleted"})
	}
	return nil
}

// setStatus writes the VolumeAttachment's status as the external-attacher
// does: attached with no error, or not attached with the attach error.
func (k *kubeSim) setStatus(va *vaState, attached bool, attachErr string) error {
	obj, err := k.w.Kube.StorageV1().VolumeAttachments().Get(k.w.ctx, va.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	obj = obj.DeepCopy()
	obj.Status.Attached = attached
	obj.Status.AttachError = nil
	if attachErr != "" {
		obj.Status.AttachError = &storagev1.VolumeError{Message: attachErr, Time: metav1.NewTime(k.w.Clock.Now())}
	}
	_, err = k.w.Kube.StorageV1().VolumeAttachments().UpdateStatus(k.w.ctx, obj, metav1.UpdateOptions{})
	return err
}

// nudge is the attacher's watch seeing a VolumeAttachment change it
// re-queues on (anything but the status error fields): the retry
// annotation the controller sets after a recovery.
func (k *kubeSim) nudge(oldObj, newObj any) {
	o, ok1 := oldObj.(*storagev1.VolumeAttachment)
	n, ok2 := newObj.(*storagev1.VolumeAttachment)
	if !ok1 || !ok2 || o.Annotations[recovery.RetryAnnotation] == n.Annotations[recovery.RetryAnnotation] {
		return
	}
	k.mu.Lock()
	k.nudged = append(k.nudged, n.Name)
	k.mu.Unlock()
}

// takeNudges re-queues the nudged VolumeAttachments: at once, or as soon
// as the call in flight returns (the workqueue's dirty mark). The backoff
// itself is not reset, as the attacher does not Forget on a re-queue.
func (k *kubeSim) takeNudges() {
	k.mu.Lock()
	names := k.nudged
	k.nudged = nil
	k.mu.Unlock()
	if len(names) == 0 {
		return
	}
	byName := make(map[string]*vaState, len(k.vas))
	for _, va := range k.vas {
		byName[va.name] = va
	}
	now := k.w.Clock.Now()
	for _, name := range names {
		va, ok := byName[name]
		if !ok || va.attached {
			continue
		}
		if va.inflight {
			va.requeue = true
		} else {
			va.nextTry = now
		}
		k.w.record(trace.KindVA, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "retry-requested"})
	}
}
