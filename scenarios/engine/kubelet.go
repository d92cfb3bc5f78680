package engine

import (
	"time"

	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// cleanOrphans is the kubelet of a live node unmounting what no pod of it
// uses any more: after a restart, a partition or a reboot, volumes that
// moved away while it was gone are still connected there.
func (k *kubeSim) cleanOrphans(view func(string) nodeView) error {
	// Find the orphans of every volume under one lock of the fabric: this
	// runs in every pass and almost never finds one. Unmounting one changes
	// nothing the search of the others reads (its own device, nothing of
	// the VolumeAttachments or the nodes), so searching first is the same
	// as searching volume by volume.
	orphans := k.orphanBuf[:0]
	f := k.w.fab
	f.mu.Lock()
	for i, name := range k.order {
		for _, n := range f.connected[k.vols[name].ID] { // sorted
			if va, ok := k.vas[vaKey{name, n}]; (ok && va.staged) || !view(n).alive() {
				continue
			}
			orphans = append(orphans, orphanMount{i, n})
		}
	}
	f.mu.Unlock()
	k.orphanBuf = orphans
	if len(orphans) == 0 {
		return nil
	}
	// In volume order, each volume's nodes sorted (fabric.connected is).
	for _, o := range orphans {
		name, n := k.order[o.vol], o.node
		v := k.vols[name]
		node := k.w.nodes[n]
		if err := node.unstage(k.w, v); err != nil {
			k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: name, trace.FieldNode: n, trace.FieldOp: "orphan-unmount-failed",
				trace.FieldCode: status.Code(err).String()})
			continue
		}
		k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: name, trace.FieldNode: n, trace.FieldOp: "orphan-unmounted"})
	}
	return nil
}

// orphanMount is a volume (its index in kubeSim.order) connected on a node
// where no pod of it runs.
type orphanMount struct {
	vol  int
	node string
}

// stage is the kubelet mounting the volume for its pod; a failure is
// retried at the next pass, as the kubelet's reconciler does.
func (k *kubeSim) stage(va *vaState) error {
	n := k.w.nodes[va.key.node]
	if err := n.stage(k.w, k.vols[va.key.vol], va.publishCtx); err != nil {
		k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "stage-failed",
			trace.FieldCode: status.Code(err).String(), trace.FieldMsg: status.Convert(err).Message()})
		va.nextTry = k.w.Clock.Now().Add(2 * time.Second)
		return nil
	}
	va.staged = true
	k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "mounted"})
	return nil
}

func (k *kubeSim) unstage(va *vaState) error {
	n := k.w.nodes[va.key.node]
	if err := n.unstage(k.w, k.vols[va.key.vol]); err != nil {
		k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "unmount-failed", trace.FieldCode: status.Code(err).String()})
		return nil
	}
	va.staged = false
	k.w.record(trace.KindKubelet, map[string]any{trace.FieldVolume: va.key.vol, trace.FieldNode: va.key.node, trace.FieldOp: "unmounted"})
	return nil
}
