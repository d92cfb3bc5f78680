package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Invariant names, as scenario files list them (spec.KnownInvariants).
const (
	InvSingleWriter    = "single-writer"
	InvNoVolumeLost    = "no-volume-lost"
	InvRPCDeadlines    = "rpc-deadlines"
	InvNoStaleClaim    = "no-stale-claim"
	InvProbeFollowsRDS = "probe-follows-rds"
	InvNoRestartLoop   = "no-restart-loop"
	InvSurvivorsKeep   = "survivors-keep-volumes"
	InvAttachedClaim   = "attached-has-claim"
	InvDataPlaneWriter = "data-plane-single-writer"
)

// Violation is one broken invariant.
type Violation struct {
	At        time.Duration
	Invariant string
	Msg       string
}

func (v Violation) String() string { return fmt.Sprintf("%v: %s: %s", v.At, v.Invariant, v.Msg) }

type dual struct {
	since    time.Time
	timedOut int // MigrationTimedOut events of the volume before the pair formed
}

// invariants are checked after every instant; each violation is traced
// once per subject.
type invariants struct {
	w    *World
	mu   sync.Mutex
	rpcs []Violation // from RPC goroutines

	events     map[string]int
	eventsOn   map[string]int // reason/PVC name → count
	volumes    []*Volume
	dualSince  map[string]dual     // RWX volume@pair → attached to both since
	claimSince map[vaKey]time.Time // claim of a gone node / without VA → since
	downSince  time.Time           // RDS unreachable since (zero: reachable)
	upSince    time.Time
	leaders    int
	seen       map[string]bool
	violations []Violation

	// Scratch of check, kept between instants: check runs after every
	// instant and would otherwise allocate them each time.
	attached  map[string][]string // volume → nodes its VolumeAttachments say attached to
	connected []string
	live      []string
}

func newInvariants(w *World) *invariants {
	return &invariants{w: w, events: map[string]int{}, eventsOn: map[string]int{}, dualSince: map[string]dual{},
		claimSince: map[vaKey]time.Time{}, seen: map[string]bool{}, attached: map[string][]string{}}
}

// Violations lists every invariant violation so far.
func (w *World) Violations() []Violation { return slices.Clone(w.inv.violations) }

// EventCount is how many Kubernetes events with reason were recorded.
func (w *World) EventCount(reason string) int {
	w.inv.mu.Lock()
	defer w.inv.mu.Unlock()
	return w.inv.events[reason]
}

func (iv *invariants) event(reason, pvc string) {
	iv.mu.Lock()
	iv.events[reason]++
	if pvc != "" {
		iv.eventsOn[reason+"/"+pvc]++
	}
	iv.mu.Unlock()
}

func (iv *invariants) eventCountOn(reason, pvc string) int {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	return iv.eventsOn[reason+"/"+pvc]
}

func (iv *invariants) volumeCreated(v *Volume) { iv.volumes = append(iv.volumes, v) }

// pathDeleted: the kernel gave up on a volume's controller (ctrl_loss_tmo).
// On a node that is up and still runs the volume's pod, that is a volume
// lost to its pod until someone remounts it: survivors-keep-volumes.
func (iv *invariants) pathDeleted(p *nvmePath) {
	k := iv.w.kube
	name := iv.w.volumeName(p.volumeID)
	if !k.nodeViews()(p.node).alive() || !slices.Contains(k.placement[name], p.node) {
		return
	}
	lossTmo := "never"
	if p.lossTmo >= 0 {
		lossTmo = p.lossTmo.String()
	}
	iv.violate(InvSurvivorsKeep, name+"@"+p.node, fmt.Sprintf("volume %s lost its NVMe/TCP controller on surviving node %s "+
		"(ctrl_loss_tmo %s, reconnect_delay %s): its pod sees I/O errors until it is remounted", name, p.node, lossTmo, p.delay))
}

func (iv *invariants) rpcReturned(op string, started, ended time.Duration) {
	if took := ended - started; took > iv.w.opts.RPCTimeout {
		iv.mu.Lock()
		iv.rpcs = append(iv.rpcs, Violation{At: ended, Invariant: InvRPCDeadlines,
			Msg: fmt.Sprintf("%s returned after %v, past its %v deadline", op, took, iv.w.opts.RPCTimeout)})
		iv.mu.Unlock()
	}
}

func (iv *invariants) violate(inv, subject, msg string) {
	key := inv + "/" + subject
	if iv.seen[key] {
		return
	}
	iv.seen[key] = true
	v := Violation{At: iv.w.Now(), Invariant: inv, Msg: msg}
	iv.violations = append(iv.violations, v)
	iv.w.record(trace.KindInvariant, map[string]any{trace.FieldName: inv, trace.FieldOk: false, trace.FieldMsg: msg})
}

// rdsReachable says whether the faults in force leave RDS answering.
// rds.refuse is not an outage: connections already open keep working.
func (w *World) rdsReachable() bool {
	if !w.Emulator.Serving() {
		return false
	}
	for name := range w.faults {
		switch name {
		case "rds.hang", "network.timeout", "network.reset_peer", "rds.slow-reconnect":
			return false
		}
	}
	return true
}

// counting reports whether an invariant is counting time towards a
// threshold (a pair of writers, a stale claim, a Probe still ready on an
// unreachable RDS) or holds a violation to record: the instant it fires at
// depends on being checked at every instant (idleInstant).
func (iv *invariants) counting() bool {
	iv.mu.Lock()
	rpcs := len(iv.rpcs)
	iv.mu.Unlock()
	return rpcs > 0 || len(iv.dualSince) > 0 || len(iv.claimSince) > 0 || (!iv.downSince.IsZero() && iv.w.probeReady)
}

func (iv *invariants) check() {
	w := iv.w
	now := w.Clock.Now()
	iv.mu.Lock()
	rpcs := iv.rpcs
	iv.rpcs = nil
	iv.mu.Unlock()
	for _, v := range rpcs {
		iv.violate(v.Invariant, fmt.Sprint(v.At), v.Msg)
	}
	k := w.kube
	view := k.nodeViews()
	// single-writer, as the API server records attachments. vaList is in
	// volume, node order: each volume's nodes come out sorted.
	attached := iv.attached
	for vol, nodes := range attached {
		attached[vol] = nodes[:0]
	}
	for _, va := range k.vaList() {
		// A VolumeAttachment left on a gone node (deleted, or out of
		// service: fenced by its administrator) is no writer: the driver
		// frees such a claim after its grace on purpose, while the
		// attacher may still be backing off its detach. The data-plane
		// check below still catches a write from such a node.
		if va.attached && !view(va.key.node).gone() {
			attached[va.key.vol] = append(attached[va.key.vol], va.key.node)
		}
	}
	for _, name := range k.order {
		v, nodes := k.vols[name], attached[name]
		switch {
		case !v.RWX && len(nodes) > 1, len(nodes) > 2:
			iv.violate(InvSingleWriter, name, fmt.Sprintf("volume %s attached to %v at once", name, nodes))
		case len(nodes) == 2:
			// One hand-off is one pair of nodes; the driver's window starts
			// again for a new pair.
			pair := name + "@" + nodes[0] + "+" + nodes[1]
			d, ok := iv.dualSince[pair]
			if !ok {
				d = dual{since: now, timedOut: iv.eventCountOn("MigrationTimedOut", name)}
				for k := range iv.dualSince {
					if strings.HasPrefix(k, name+"@") {
						delete(iv.dualSince, k)
					}
				}
				iv.dualSince[pair] = d
			}
			limit := w.opts.MigrationWindow + w.opts.ReconcileInterval
			if now.Sub(d.since) > limit && iv.eventCountOn("MigrationTimedOut", name) == d.timedOut {
				iv.violate(InvSingleWriter, pair, fmt.Sprintf("volume %s on %v for %v and no MigrationTimedOut reported", name, nodes, now.Sub(d.since)))
			}
		default:
			for k := range iv.dualSince {
				if strings.HasPrefix(k, name+"@") {
					delete(iv.dualSince, k)
				}
			}
		}
		// The data plane: a filesystem connected on two live nodes.
		if !v.Block {
			iv.connected = w.fab.appendNodesOf(iv.connected[:0], v.ID)
			live := iv.live[:0]
			for _, n := range iv.connected {
				if view(n).alive() {
					live = append(live, n)
				}
			}
			iv.live = live
			if len(live) > 1 {
				sort.Strings(live)
				iv.violate(InvSingleWriter, name+"/dataplane", fmt.Sprintf("filesystem volume %s connected on live nodes %v", name, live))
			}
		}
	}
	if w.opts.RestrictHosts {
		iv.dataPlaneWriters(view)
	}
	// no-volume-lost: the disk of every volume is still on RDS.
	store := w.Emulator.Store()
	for _, v := range iv.volumes {
		if _, ok := store.DiskBySlot(v.ID); !ok {
			iv.violate(InvNoVolumeLost, v.Name, fmt.Sprintf("disk of volume %s (%s) is gone from RDS", v.Name, v.ID))
		}
	}
	// no-stale-claim: a claim of a gone node, or one without its
	// VolumeAttachment, lapses within grace + one reconcile interval.
	if c := w.ctrl; c != nil {
		iv.attachedHasClaim(c, view)
		var live map[vaKey]bool // made at the first stale claim: there rarely is one
		for _, name := range k.order {
			v := k.vols[name]
			for _, cl := range c.cp.Attachments.Holders(v.ID) {
				key := vaKey{name, cl.Node}
				va, hasVA := k.vas[key]
				// A detaching attachment whose volume is still mounted on a node
				// that is not gone waits for the kubelet's unmount, or for the
				// attach-detach controller's maxWaitForUnmount: the claim is
				// rightly held until the detach is asked of the driver.
				unmounting := hasVA && va.detaching && va.staged && now.Before(va.detachAsked.Add(maxWaitForUnmount))
				stale := view(cl.Node).gone() || !hasVA || (va.detaching && !unmounting)
				if !stale {
					continue
				}
				if live == nil {
					live = map[vaKey]bool{}
				}
				live[key] = true
				since, ok := iv.claimSince[key]
				if !ok {
					iv.claimSince[key] = now
					continue
				}
				if limit := w.opts.GracePeriod + w.opts.ReconcileInterval + w.opts.RPCTimeout; now.Sub(since) > limit {
					iv.violate(InvNoStaleClaim, name+"@"+cl.Node, fmt.Sprintf("claim of node %s on volume %s stale for %v (limit %v)",
						cl.Node, name, now.Sub(since), limit))
				}
			}
		}
		for key := range iv.claimSince {
			if !live[key] {
				delete(iv.claimSince, key)
			}
		}
	}
	// probe-follows-rds
	reach := w.rdsReachable()
	switch {
	case !reach && iv.downSince.IsZero():
		iv.downSince, iv.upSince = now, time.Time{}
	case reach && !iv.downSince.IsZero():
		iv.downSince, iv.upSince = time.Time{}, now
	}
	if !iv.downSince.IsZero() && w.probeReady {
		if d := now.Sub(iv.downSince); d > w.opts.HealthInterval+5*time.Second {
			iv.violate(InvProbeFollowsRDS, "down@"+fmt.Sprint(iv.downSince.Sub(w.start)),
				fmt.Sprintf("Probe ready %v after RDS became unreachable", d))
		}
	}
	// no-restart-loop: processes restart only when the timeline restarts them.
	total := 0
	for _, r := range w.replicas {
		total += r.restarts
	}
	if total > w.timelineRestarts {
		iv.violate(InvNoRestartLoop, "controller", fmt.Sprintf("controller replicas restarted %d times, the timeline caused %d",
			total, w.timelineRestarts))
	}
}

// dataPlaneWriters is data-plane-single-writer, the rule storage-side
// access control exists for, checked on the paths the simulated target
// serves rather than on what the API server says. A simulated node never
// powers off: a deleted, NotReady or out-of-service node is one cut off
// from the API server that keeps running and keeps its NVMe/TCP paths, the
// worst case, so every node's paths count whatever its Node object says.
//
//   - A single-writer (RWO) volume has a working path on at most one node
//     at any instant (RWX: two, the live-migration pair).
//   - A working path belongs to a node the leader holds a claim for, once
//     the leader has rebuilt its claims: a node whose claim lapsed and was
//     cleared without its host being revoked writes to a volume the
//     controller is free to hand to another node, and a revoked node's path
//     that reconnected is the same hazard.
//
// Without RestrictHosts nothing fences a partitioned node, so the check is
// made only with it (node-deletion-grace would break it by design: that is
// the hazard issue 20 is about).
func (iv *invariants) dataPlaneWriters(view func(string) nodeView) {
	w := iv.w
	k := w.kube
	working := map[string][]string{}
	w.fab.mu.Lock()
	for _, p := range w.fab.paths {
		if p.working() {
			working[p.volumeID] = append(working[p.volumeID], p.node)
		}
	}
	w.fab.mu.Unlock()
	if len(working) == 0 {
		return
	}
	c := w.ctrl
	claimsKnown := c != nil && c.cp.Ready() == nil
	for _, name := range k.order {
		v := k.vols[name]
		nodes := working[v.ID]
		if len(nodes) == 0 {
			continue
		}
		sort.Strings(nodes)
		limit := 1
		if v.RWX {
			limit = 2
		}
		if len(nodes) > limit {
			iv.violate(InvDataPlaneWriter, name+"/writers", fmt.Sprintf("volume %s has working NVMe/TCP paths on nodes %v at once", name, nodes))
		}
		if !claimsKnown {
			continue
		}
		holders := c.cp.Attachments.Holders(v.ID)
		for _, n := range nodes {
			if !slices.ContainsFunc(holders, func(cl attachment.Claim) bool { return cl.Node == n }) {
				what := "running"
				if view(n).gone() {
					what = "gone from the API server but running"
				}
				iv.violate(InvDataPlaneWriter, name+"@"+n+"/unclaimed", fmt.Sprintf(
					"node %s (%s) has a working NVMe/TCP path to volume %s and holds no claim on it: its host was not revoked", n, what, name))
			}
		}
	}
}

// attachedHasClaim: a VolumeAttachment the attacher marked attached on a
// node that is not gone is backed by the leader's claim for that node, once
// the leader has rebuilt its claims. The reverse direction is no-stale-claim.
func (iv *invariants) attachedHasClaim(c *controller, view func(string) nodeView) {
	if c.cp.Ready() != nil {
		return
	}
	k := iv.w.kube
	for _, va := range k.vaList() {
		if !va.attached || va.detaching || view(va.key.node).gone() {
			continue
		}
		v := k.vols[va.key.vol]
		held := false
		for _, cl := range c.cp.Attachments.Holders(v.ID) {
			held = held || cl.Node == va.key.node
		}
		if !held {
			iv.violate(InvAttachedClaim, va.key.vol+"@"+va.key.node, fmt.Sprintf(
				"VolumeAttachment of volume %s on node %s says attached, and the controller holds no claim for it", va.key.vol, va.key.node))
		}
	}
}
