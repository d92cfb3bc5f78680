package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/recovery"
)

// The parts of Kubernetes that call the driver, reduced to what decides
// attachments, with the upstream defaults that shape an outage:
//
//   - the attach-detach controller creates a VolumeAttachment for every pod's
//     volume on its node and deletes it when the pod is gone; it detaches
//     from a node that stopped reporting only after maxWaitForUnmount (6m),
//     at once from a deleted node or one tainted out-of-service;
//   - the external-attacher calls ControllerPublish/Unpublish with its
//     --timeout and retries failures with exponential backoff (1s to 5m);
//   - the attach-detach controller reports the volume attached to the
//     kubelet only at its own next look, with its own backoff (adc.go);
//   - the kubelet stages and publishes once the attach-detach controller
//     reports the volume attached, and unpublishes and unstages before the
//     pod's detach;
//   - pods of a deleted or out-of-service node are rescheduled to the Ready
//     node with the fewest volumes (ties: by name), as their controllers and
//     the scheduler would.
const (
	maxWaitForUnmount = 6 * time.Minute
	// podGCQuarantine: the pod garbage collector deletes the pods of a
	// deleted node only after this long (upstream: 40s), and the
	// attach-detach controller detaches only then.
	podGCQuarantine  = 40 * time.Second
	attachRetryStart = time.Second
	attachRetryMax   = 5 * time.Minute
)

type vaKey struct{ vol, node string } // scenario volume name, node

type vaState struct {
	key         vaKey
	name        string
	attached    bool
	staged      bool
	detaching   bool
	detachAsked time.Time
	nextTry     time.Time
	backoff     time.Duration
	inflight    bool
	requeue     bool // re-queued while in flight: retried as soon as it returns
	attachErr   bool // status.attachError is set
	publishCtx  map[string]string
	adc         adcAttach
}

// Volume is one volume of the simulated cluster.
type Volume struct {
	Name   string // as the scenario names it (and the PVC)
	ID     string // CSI volume ID
	Size   int64
	RWX    bool
	Block  bool
	Params map[string]string // StorageClass parameters
	volCtx map[string]string
}

type kubeSim struct {
	w     *World
	vols  map[string]*Volume
	order []string // volume names in creation order
	// placement is where each volume's pods run: one node, two during a
	// live migration, none while unscheduled.
	placement map[string][]string
	vas       map[vaKey]*vaState
	goneSince map[string]time.Time // deleted node → when first seen gone

	mu     sync.Mutex
	done   []opResult
	nudged []string // VolumeAttachments whose retry annotation changed, in watch order
	seq    uint64
}

type opResult struct {
	seq  uint64
	key  vaKey
	op   string // publish, unpublish
	err  error
	pctx map[string]string
}

func newKubeSim(w *World) *kubeSim {
	return &kubeSim{w: w, vols: map[string]*Volume{}, placement: map[string][]string{}, vas: map[vaKey]*vaState{},
		goneSince: map[string]time.Time{}}
}

func vaName(volumeID, node string) string {
	sum := sha256.Sum256([]byte(volumeID + driver.DefaultName + node))
	return "csi-" + hex.EncodeToString(sum[:])
}

// nodeView is what the API server says of a node.
type nodeView struct {
	exists, ready, outOfService bool
}

func (k *kubeSim) node(name string) nodeView {
	n, err := k.w.Kube.CoreV1().Nodes().Get(k.w.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nodeView{}
	}
	v := nodeView{exists: n.DeletionTimestamp == nil}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			v.ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			v.outOfService = true
		}
	}
	return v
}

// nodeViews returns a lookup that reads each node from the API server once:
// one pass of the loop or of the invariants sees one consistent picture.
func (k *kubeSim) nodeViews() func(string) nodeView {
	views := map[string]nodeView{}
	return func(n string) nodeView {
		v, ok := views[n]
		if !ok {
			v = k.node(n)
			views[n] = v
		}
		return v
	}
}

// gone: the node will not come back for its pods (deleted, or declared
// down by the operator).
func (v nodeView) gone() bool  { return !v.exists || v.outOfService }
func (v nodeView) alive() bool { return v.exists && v.ready && !v.outOfService }

// ---- volumes ----------------------------------------------------------------

// CreateVolume provisions a volume as external-provisioner would and binds a
// PV for it; node, if set, schedules its pod there. The attach happens when
// time next advances (Advance), as it would after the scheduler's decision.
func (w *World) CreateVolume(v Volume, node string) error {
	k := w.kube
	if _, dup := k.vols[v.Name]; dup {
		return fmt.Errorf("engine: volume %s exists", v.Name)
	}
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if v.RWX {
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	req := &csi.CreateVolumeRequest{Name: "pvc-" + v.Name, VolumeCapabilities: []*csi.VolumeCapability{capability(v.Block, mode)},
		CapacityRange: &csi.CapacityRange{RequiredBytes: v.Size}, Parameters: v.Params}
	var resp *csi.CreateVolumeResponse
	err := w.callSync("CreateVolume", v.Name, func(ctx context.Context) error {
		return w.ctrlCall(ctx, func(ctx context.Context, d *driver.Driver) error {
			var err error
			resp, err = d.CreateVolume(ctx, req)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("engine: create volume %s: %w", v.Name, err)
	}
	v.ID, v.Size, v.volCtx = resp.GetVolume().GetVolumeId(), resp.GetVolume().GetCapacityBytes(), resp.GetVolume().GetVolumeContext()
	vol := v
	k.vols[v.Name] = &vol
	k.order = append(k.order, v.Name)
	w.inv.volumeCreated(&vol)
	pvMode := corev1.PersistentVolumeFilesystem
	if v.Block {
		pvMode = corev1.PersistentVolumeBlock
	}
	access := corev1.ReadWriteOnce
	if v.RWX {
		access = corev1.ReadWriteMany
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + v.Name},
		Spec: corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{access}, VolumeMode: &pvMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: v.Name},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: driver.DefaultName, VolumeHandle: v.ID, VolumeAttributes: v.volCtx}}}}
	if _, err := w.Kube.CoreV1().PersistentVolumes().Create(w.ctx, pv, metav1.CreateOptions{}); err != nil {
		return err
	}
	if node != "" {
		k.placement[v.Name] = []string{node}
		w.record("pod", map[string]any{"volume": v.Name, "node": node, "op": "scheduled"})
	}
	return nil
}

func capability(block bool, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}}
	}
	return c
}

func (v *Volume) capability() *csi.VolumeCapability {
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if v.RWX {
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	return capability(v.Block, mode)
}

// Volumes returns the volumes in creation order.
func (w *World) Volumes() []*Volume {
	out := make([]*Volume, 0, len(w.kube.order))
	for _, n := range w.kube.order {
		out = append(out, w.kube.vols[n])
	}
	return out
}

// Schedule runs the pod of a volume on node (attach), replacing where it ran.
func (w *World) Schedule(volume, node string) error {
	if _, ok := w.kube.vols[volume]; !ok {
		return fmt.Errorf("engine: no volume %s", volume)
	}
	w.kube.placement[volume] = []string{node}
	w.record("pod", map[string]any{"volume": volume, "node": node, "op": "scheduled"})
	return nil
}

// Unschedule removes the pods of a volume from node ("" for every node).
func (w *World) Unschedule(volume, node string) error {
	if _, ok := w.kube.vols[volume]; !ok {
		return fmt.Errorf("engine: no volume %s", volume)
	}
	var keep []string
	for _, n := range w.kube.placement[volume] {
		if node != "" && n != node {
			keep = append(keep, n)
		}
	}
	w.kube.placement[volume] = keep
	w.record("pod", map[string]any{"volume": volume, "node": node, "op": "deleted"})
	return nil
}

// AddPlacement runs a second pod of a volume on node (a migration target).
func (w *World) AddPlacement(volume, node string) error {
	if _, ok := w.kube.vols[volume]; !ok {
		return fmt.Errorf("engine: no volume %s", volume)
	}
	if !slices.Contains(w.kube.placement[volume], node) {
		w.kube.placement[volume] = append(w.kube.placement[volume], node)
	}
	w.record("pod", map[string]any{"volume": volume, "node": node, "op": "scheduled"})
	return nil
}

// Placement is where the volume's pods run.
func (w *World) Placement(volume string) []string { return slices.Clone(w.kube.placement[volume]) }

// AttachedTo lists the nodes whose VolumeAttachment of the volume says
// attached, from the API server, sorted.
func (w *World) AttachedTo(volume string) []string {
	v, ok := w.kube.vols[volume]
	if !ok {
		return nil
	}
	list, err := w.Kube.StorageV1().VolumeAttachments().List(w.ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, va := range list.Items {
		if va.Status.Attached && va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == "pv-"+v.Name {
			out = append(out, va.Spec.NodeName)
		}
	}
	sort.Strings(out)
	return out
}

// Claims lists the nodes holding a claim on the volume in the serving
// controller's attachment manager.
func (w *World) Claims(volume string) []string {
	v, ok := w.kube.vols[volume]
	if !ok || w.ctrl == nil {
		return nil
	}
	var out []string
	for _, c := range w.ctrl.att.Holders(v.ID) {
		out = append(out, c.Node)
	}
	sort.Strings(out)
	return out
}

// ---- the loop ---------------------------------------------------------------

// sync runs the Kubernetes side for the current instant: completed calls
// first, then rescheduling, then every attachment that needs work. It runs
// on the engine's goroutine, in a fixed order, so it is deterministic.
func (k *kubeSim) sync() error {
	w := k.w
	k.mu.Lock()
	done := k.done
	k.done = nil
	k.mu.Unlock()
	sort.Slice(done, func(i, j int) bool { return done[i].seq < done[j].seq })
	for _, r := range done {
		if err := k.complete(r); err != nil {
			return err
		}
	}
	k.takeNudges()
	w.tickPaths(w.Clock.Now())
	view := k.nodeViews()
	k.reschedule(view)
	if err := k.cleanOrphans(view); err != nil {
		return err
	}
	now := w.Clock.Now()
	// Wanted attachments without a VolumeAttachment get one.
	for _, name := range k.order {
		for _, n := range k.placement[name] {
			key := vaKey{name, n}
			if _, ok := k.vas[key]; ok || !view(n).exists {
				continue
			}
			if err := k.createVA(key); err != nil {
				return err
			}
		}
	}
	keys := make([]vaKey, 0, len(k.vas))
	for key := range k.vas {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].vol != keys[j].vol {
			return keys[i].vol < keys[j].vol
		}
		return keys[i].node < keys[j].node
	})
	for _, key := range keys {
		va := k.vas[key]
		if va.inflight {
			continue
		}
		nv := view(key.node)
		wanted := slices.Contains(k.placement[key.vol], key.node)
		if wanted {
			k.adcStep(va, now)
		}
		switch {
		case wanted && !va.attached && !va.nextTry.After(now):
			k.launch(va, "publish")
		case wanted && va.adc.confirmed && !va.staged && nv.alive() && !va.nextTry.After(now):
			if err := k.stage(va); err != nil {
				return err
			}
		case !wanted:
			if !va.detaching {
				va.detaching, va.detachAsked, va.nextTry, va.backoff = true, now, now, 0
			}
			if va.staged && nv.alive() {
				if err := k.unstage(va); err != nil {
					return err
				}
			}
			forced := nv.gone() || !now.Before(va.detachAsked.Add(maxWaitForUnmount))
			if (!va.staged || forced) && !va.nextTry.After(now) {
				k.launch(va, "unpublish")
			}
		}
	}
	return nil
}

// cleanOrphans is the kubelet of a live node unmounting what no pod of it
// uses any more: after a restart, a partition or a reboot, volumes that
// moved away while it was gone are still connected there.
func (k *kubeSim) cleanOrphans(view func(string) nodeView) error {
	for _, name := range k.order {
		v := k.vols[name]
		nodes := k.w.fab.nodesOf(v.ID)
		sort.Strings(nodes)
		for _, n := range nodes {
			if va, ok := k.vas[vaKey{name, n}]; (ok && va.staged) || !view(n).alive() {
				continue
			}
			node := k.w.nodes[n]
			if err := node.unstage(k.w, v); err != nil {
				k.w.record("kubelet", map[string]any{"volume": name, "node": n, "op": "orphan-unmount-failed",
					"code": status.Code(err).String()})
				continue
			}
			k.w.record("kubelet", map[string]any{"volume": name, "node": n, "op": "orphan-unmounted"})
		}
	}
	return nil
}

// nextDue is the earliest instant the loop has work (a retry, a forced
// detach), for the clock to jump to.
func (k *kubeSim) nextDue(now time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	consider := func(t time.Time) {
		if t.After(now) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	for _, since := range k.goneSince {
		consider(since.Add(podGCQuarantine))
	}
	for _, va := range k.vas {
		if at, ok := va.adc.due(); ok && slices.Contains(k.placement[va.key.vol], va.key.node) {
			consider(at)
		}
		if va.inflight {
			continue
		}
		consider(va.nextTry)
		if va.detaching && va.staged {
			consider(va.detachAsked.Add(maxWaitForUnmount))
		}
	}
	return best, found
}

// reschedule moves the pods of gone nodes to the Ready node with the fewest
// pods.
func (k *kubeSim) reschedule(view func(string) nodeView) {
	now := k.w.Clock.Now()
	evict := map[string]bool{}
	for _, n := range k.w.nodeNames() {
		v := view(n)
		switch {
		case v.outOfService:
			evict[n] = true // the taint's point: evict and detach at once
		case !v.exists:
			since, ok := k.goneSince[n]
			if !ok {
				since = now
				k.goneSince[n] = now
			}
			evict[n] = !now.Before(since.Add(podGCQuarantine))
		default:
			delete(k.goneSince, n)
		}
	}
	for _, name := range k.order {
		pl := k.placement[name]
		for i, n := range pl {
			if !evict[n] {
				continue
			}
			target := k.pickNode(view, pl)
			k.w.record("pod", map[string]any{"volume": name, "node": n, "op": "evicted"})
			if target == "" {
				pl = append(pl[:i:i], pl[i+1:]...)
			} else {
				pl[i] = target
				k.w.record("pod", map[string]any{"volume": name, "node": target, "op": "scheduled"})
			}
			k.placement[name] = pl
			break // one move per volume per pass; the next pass sees the rest
		}
	}
}

func (k *kubeSim) pickNode(view func(string) nodeView, exclude []string) string {
	load := map[string]int{}
	for _, pl := range k.placement {
		for _, n := range pl {
			load[n]++
		}
	}
	best, bestLoad := "", 0
	for _, n := range k.w.nodeNames() {
		if slices.Contains(exclude, n) || !view(n).alive() {
			continue
		}
		if best == "" || load[n] < bestLoad {
			best, bestLoad = n, load[n]
		}
	}
	return best
}

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
	k.w.record("va", map[string]any{"volume": key.vol, "node": key.node, "op": "create"})
	return nil
}

// launch runs the attacher's call in the background, bounded by its
// --timeout; complete() takes the result on the engine's goroutine.
func (k *kubeSim) launch(va *vaState, op string) {
	w := k.w
	v := k.vols[va.key.vol]
	va.inflight = true
	k.seq++
	seq := k.seq
	w.rpcs.Add(1)
	c := w.ctrl
	ctx, cancel := w.vc.view(nil).WithTimeout(w.ctx, w.opts.RPCTimeout)
	started := w.Now()
	go func() {
		defer w.rpcs.Add(-1)
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
			r, err = c.drv.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: v.ID, NodeId: va.key.node,
				VolumeCapability: v.capability(), VolumeContext: v.volCtx})
			pctx = r.GetPublishContext()
		}
		w.inv.rpcReturned(op, started, w.Now())
		k.mu.Lock()
		k.done = append(k.done, opResult{seq: seq, key: va.key, op: op, err: err, pctx: pctx})
		k.mu.Unlock()
	}()
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
	w.record("rpc", map[string]any{"method": method, "key": r.key.vol + "@" + r.key.node, "code": code.String()})
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
			w.record("va", map[string]any{"volume": r.key.vol, "node": r.key.node, "op": "attach-failed", "code": code.String()})
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
		w.record("va", map[string]any{"volume": r.key.vol, "node": r.key.node, "op": "attached"})
	case "unpublish":
		if err := w.Kube.StorageV1().VolumeAttachments().Delete(w.ctx, va.name, metav1.DeleteOptions{}); err != nil &&
			!apierrors.IsNotFound(err) {
			return err
		}
		delete(k.vas, r.key)
		w.record("va", map[string]any{"volume": r.key.vol, "node": r.key.node, "op": "deleted"})
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
		k.w.record("va", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "retry-requested"})
	}
}

// adcStep runs the attach-detach controller's operation for a wanted
// attachment (adc.go) and traces its outcome.
func (k *kubeSim) adcStep(va *vaState, now time.Time) {
	switch va.adc.step(now, va) {
	case "attached":
		k.w.record("adc", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "attached"})
	case "failed":
		k.w.record("adc", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "attach-failed",
			"retryIn": va.adc.backoff.String()})
	}
}

// stage is the kubelet mounting the volume for its pod; a failure is
// retried at the next pass, as the kubelet's reconciler does.
func (k *kubeSim) stage(va *vaState) error {
	n := k.w.nodes[va.key.node]
	if err := n.stage(k.w, k.vols[va.key.vol], va.publishCtx); err != nil {
		k.w.record("kubelet", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "stage-failed",
			"code": status.Code(err).String(), "msg": status.Convert(err).Message()})
		va.nextTry = k.w.Clock.Now().Add(2 * time.Second)
		return nil
	}
	va.staged = true
	k.w.record("kubelet", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "mounted"})
	return nil
}

func (k *kubeSim) unstage(va *vaState) error {
	n := k.w.nodes[va.key.node]
	if err := n.unstage(k.w, k.vols[va.key.vol]); err != nil {
		k.w.record("kubelet", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "unmount-failed", "code": status.Code(err).String()})
		return nil
	}
	va.staged = false
	k.w.record("kubelet", map[string]any{"volume": va.key.vol, "node": va.key.node, "op": "unmounted"})
	return nil
}

// callSync runs one RPC on the engine's goroutine (set-up calls while RDS is
// known to be up) and traces it.
func (w *World) callSync(method, key string, fn func(ctx context.Context) error) error {
	ctx, cancel := w.vc.view(nil).WithTimeout(w.ctx, w.opts.RPCTimeout)
	defer cancel()
	err := fn(ctx)
	w.record("rpc", map[string]any{"method": method, "key": key, "code": status.Code(err).String()})
	return err
}

// ---- Kubernetes seams ------------------------------------------------------

var watched = map[string]bool{"nodes": true, "volumeattachments": true, "persistentvolumes": true}

// watchAPI counts successful writes to the watched resources (a reactor in
// front of the tracker) and the events an informer of our own receives, so
// the barrier knows when every watcher has seen every write.
func (w *World) watchAPI() error {
	tracker := w.Kube.Tracker()
	w.Kube.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
		default:
			return false, nil, nil
		}
		if !watched[a.GetResource().Resource] {
			return false, nil, nil
		}
		handled, obj, err := k8stesting.ObjectReaction(tracker)(a)
		if err == nil {
			w.apiWrites.Add(1)
			// What the reconciler's handlers see (reconciler.Options.Observed).
			if r := a.GetResource().Resource; r == "nodes" || r == "persistentvolumes" || r == "volumeattachments" {
				w.recWrites.Add(1)
			}
		}
		return handled, obj, err
	})
	f := informers.NewSharedInformerFactory(w.Kube, 0)
	h := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(_ any, initial bool) { w.apiSeen.Add(1) },
		UpdateFunc: func(any, any) { w.apiSeen.Add(1) },
		DeleteFunc: func(any) { w.apiSeen.Add(1) },
	}
	infs := []cache.SharedIndexInformer{f.Core().V1().Nodes().Informer(), f.Storage().V1().VolumeAttachments().Informer(),
		f.Core().V1().PersistentVolumes().Informer()}
	// The VolumeAttachment handler is also the external-attacher's watch
	// (the retry annotation): one handler, so the event is taken in before
	// it is counted as seen. Handlers of one informer run concurrently.
	vaHandler := h
	vaHandler.UpdateFunc = func(o, n any) {
		w.kube.nudge(o, n)
		w.apiSeen.Add(1)
	}
	for i, inf := range infs {
		hh := h
		if i == 1 {
			hh = vaHandler
		}
		if _, err := inf.AddEventHandler(hh); err != nil {
			return err
		}
	}
	f.Start(w.ctx.Done())
	for _, ok := range f.WaitForCacheSync(w.ctx.Done()) {
		if !ok {
			return errors.New("engine: informers did not sync")
		}
	}
	w.apiSeen.Add(-int64(len(w.opts.Nodes))) // the initial list is not a write
	return nil
}

func (w *World) nodeNames() []string {
	names := make([]string, 0, len(w.nodes))
	for n := range w.nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ensureNodePlugins gives every Node object a plugin (node.create).
func (w *World) ensureNodePlugins() error {
	list, err := w.Kube.CoreV1().Nodes().List(w.ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range list.Items {
		if _, ok := w.nodes[n.Name]; !ok {
			if err := w.addNodePlugin(n.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
