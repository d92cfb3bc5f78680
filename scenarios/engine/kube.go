package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/scenarios/trace"
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

type kubeSim struct {
	w     *World
	vols  map[string]*Volume
	order []string // volume names in creation order
	// placement is where each volume's pods run: one node, two during a
	// live migration, none while unscheduled.
	placement map[string][]string
	vas       map[vaKey]*vaState
	goneSince map[string]time.Time // deleted node → when first seen gone

	// nodeWrites counts the writes to Node objects (watchAPI's reactor);
	// nodeSnap is the picture of the nodes read after nodeSnapAt of them.
	nodeWrites atomic.Uint64
	nodeSnap   *nodeSnapshot
	nodeSnapAt uint64
	// vaWrites counts the writes to VolumeAttachments (watchAPI's
	// reactor); attachedPV is what attachedByPV read after attachedPVAt.
	vaWrites     atomic.Uint64
	attachedPV   map[string][]string
	attachedPVAt uint64
	// plugins: the nodes with a plugin, sorted (pluginNames).
	plugins []string
	// vaOrder: the values of vas, sorted by volume then node; nil after
	// vas gained or lost one (vaList).
	vaOrder []*vaState
	// orphanBuf is cleanOrphans' scratch.
	orphanBuf []orphanMount

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
	return viewOf(n)
}

func viewOf(n *corev1.Node) nodeView {
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

// nodeSnapshot is what the API server says of every node at one moment.
// It is never changed once built: a lookup handed out keeps its picture.
type nodeSnapshot struct {
	names []string // the Node objects, in the API server's List order
	views map[string]nodeView
}

// nodes returns the Node objects as the API server has them now. The loop,
// the kubelet and the invariants look at every node several times per
// instant, and each read of the fake API server deep-copies the object;
// Nodes change only through API writes, which the reactor of watchAPI
// counts, so they are re-read only after one.
func (k *kubeSim) nodes() (*nodeSnapshot, error) {
	writes := k.nodeWrites.Load() // before the List: a write during it re-reads next time
	if k.nodeSnap != nil && k.nodeSnapAt == writes {
		return k.nodeSnap, nil
	}
	list, err := k.w.Kube.CoreV1().Nodes().List(k.w.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	s := &nodeSnapshot{names: make([]string, 0, len(list.Items)), views: make(map[string]nodeView, len(list.Items))}
	for i := range list.Items {
		n := &list.Items[i]
		s.names = append(s.names, n.Name)
		s.views[n.Name] = viewOf(n)
	}
	k.nodeSnap, k.nodeSnapAt = s, writes
	return s, nil
}

// nodeViews returns a lookup that sees one consistent picture of the
// nodes: one pass of the loop or of the invariants decides on it. A node
// the API server does not have reads as the zero view, as a failed Get did.
func (k *kubeSim) nodeViews() func(string) nodeView {
	s, err := k.nodes()
	if err != nil {
		// The API server failed the List: read node by node, each once,
		// as a Get that fails reads as a node that does not exist.
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
	return func(n string) nodeView { return s.views[n] }
}

// gone: the node will not come back for its pods (deleted, or declared
// down by the operator).
func (v nodeView) gone() bool  { return !v.exists || v.outOfService }
func (v nodeView) alive() bool { return v.exists && v.ready && !v.outOfService }

// sync runs the Kubernetes side for the current instant: completed calls
// first, then rescheduling, then every attachment that needs work. It runs
// on the engine's goroutine. The order in which it takes the replies of one
// instant and launches its calls is drawn from the seed: the attacher's
// workers take work in no order the driver may rely on, and the swarm
// explores those orders.
func (k *kubeSim) sync() error {
	w := k.w
	k.mu.Lock()
	done := k.done
	k.done = nil
	k.mu.Unlock()
	sort.Slice(done, func(i, j int) bool { return done[i].seq < done[j].seq })
	byLaunch := slices.Clone(done)
	w.order.shuffle(len(done), func(i, j int) { done[i], done[j] = done[j], done[i] })
	if w.opts.Bugs.RepliesByPosition {
		// The planted defect: the i-th reply taken is credited to the i-th
		// call launched.
		for i := range done {
			done[i].seq, done[i].key, done[i].op = byLaunch[i].seq, byLaunch[i].key, byLaunch[i].op
		}
	}
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
	vas := slices.Clone(k.vaList()) // the cached sorted list, shuffled here
	w.order.shuffle(len(vas), func(i, j int) { vas[i], vas[j] = vas[j], vas[i] })
	for _, va := range vas {
		key := va.key
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

// vaList returns the VolumeAttachments of vas sorted by volume, then
// node: the order the loop and the invariants work in. Most instants
// change no VolumeAttachment, so the order is kept and rebuilt only after
// vas gained or lost one (createVA and complete clear it). Callers must not
// modify it.
func (k *kubeSim) vaList() []*vaState {
	if k.vaOrder != nil {
		return k.vaOrder
	}
	list := make([]*vaState, 0, len(k.vas)) // never nil: nil means "rebuild"
	for _, va := range k.vas {
		list = append(list, va)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].key.vol != list[j].key.vol {
			return list[i].key.vol < list[j].key.vol
		}
		return list[i].key.node < list[j].key.node
	})
	k.vaOrder = list
	return list
}

// pluginNames is w.nodeNames, kept between passes: node plugins are only
// ever added (addNodePlugin), so a change in their number is a change in
// the set. Callers must not modify it.
func (k *kubeSim) pluginNames() []string {
	if len(k.plugins) != len(k.w.nodes) {
		k.plugins = k.w.nodeNames()
	}
	return k.plugins
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
	var evict []string // the nodes whose pods go now; almost always none
	for _, n := range k.pluginNames() {
		v := view(n)
		switch {
		case v.outOfService:
			evict = append(evict, n) // the taint's point: evict and detach at once
		case !v.exists:
			since, ok := k.goneSince[n]
			if !ok {
				since = now
				k.goneSince[n] = now
			}
			if !now.Before(since.Add(podGCQuarantine)) {
				evict = append(evict, n)
			}
		default:
			delete(k.goneSince, n)
		}
	}
	if len(evict) == 0 {
		return
	}
	for _, name := range k.order {
		pl := k.placement[name]
		for i, n := range pl {
			if !slices.Contains(evict, n) {
				continue
			}
			target := k.pickNode(view, pl)
			k.w.record(trace.KindPod, map[string]any{trace.FieldVolume: name, trace.FieldNode: n, trace.FieldOp: "evicted"})
			if target == "" {
				pl = append(pl[:i:i], pl[i+1:]...)
			} else {
				pl[i] = target
				k.w.record(trace.KindPod, map[string]any{trace.FieldVolume: name, trace.FieldNode: target, trace.FieldOp: "scheduled"})
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
	for _, n := range k.pluginNames() {
		if slices.Contains(exclude, n) || !view(n).alive() {
			continue
		}
		if best == "" || load[n] < bestLoad {
			best, bestLoad = n, load[n]
		}
	}
	return best
}
