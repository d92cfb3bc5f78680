package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

// Result is what one ReconcileOnce decided. Lists are sorted, so two runs
// on the same state print the same.
type Result struct {
	// Skipped says why nothing was decided (caches not synced); empty when
	// the run happened.
	Skipped string
	// Rebuilt is set on the run that rebuilt the state from
	// VolumeAttachments and made the reconciler Ready.
	Rebuilt bool
	// Claims is the number of claims restored by the rebuild.
	Claims int

	NodesGone []string
	NodesBack []string
	// StaleCleared counts claims cleared because their grace had passed.
	StaleCleared int
	// ClaimsRestored are attached VolumeAttachments the manager did not
	// know; ClaimsDropped are claims whose VolumeAttachment no longer
	// exists.
	ClaimsRestored int
	ClaimsDropped  int
	// Conflicts are attached VolumeAttachments whose claim cannot be
	// restored because another node holds the volume.
	Conflicts []string
	// StuckFinalizers are VolumeAttachments of gone nodes that still carry
	// finalizers although the driver no longer holds their claim.
	StuckFinalizers []string
	// OverdueMigrations are volumes still held by two nodes after the
	// migration window.
	OverdueMigrations []string
	// Err collects API errors. They never clear anything: the decision
	// they would have informed is postponed to a later run.
	Err error
}

func (res Result) changed() bool {
	return res.Rebuilt || len(res.NodesGone)+len(res.NodesBack)+res.StaleCleared+res.ClaimsRestored+res.ClaimsDropped+
		len(res.Conflicts)+len(res.StuckFinalizers) > 0
}

// ReconcileOnce runs one reconciliation now, or the start-up rebuild if the
// state has not been rebuilt yet. It is idempotent and safe while RPCs run;
// concurrent calls queue behind each other rather than overlap.
func (r *Reconciler) ReconcileOnce(ctx context.Context) Result {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	reasons := r.takeReasons()
	if !r.cachesSynced() {
		// A lister that has not synced would report every node as
		// deleted; deciding nothing is the only safe decision.
		klog.V(2).InfoS("Reconcile skipped: caches not synced", "reasons", reasons)
		return Result{Skipped: "caches not synced"}
	}
	start := r.clk.Now()
	var res Result
	op := "reconcile"
	if !r.Ready() {
		op = "startup_rebuild"
		res = r.rebuildLocked(ctx)
	} else {
		res = r.reconcileLocked(ctx)
	}
	r.metrics.duration.WithLabelValues(op).Observe(r.clk.Since(start).Seconds())
	r.metrics.reconcile.WithLabelValues(actionRun).Inc()
	if res.Err != nil {
		r.metrics.reconcileErrors.WithLabelValues(op).Inc()
	}
	r.logResult(op, reasons, res)
	if op == "startup_rebuild" {
		r.maybeFailoverNudge()
	}
	return res
}

func (r *Reconciler) logResult(op string, reasons []string, res Result) {
	kv := []any{"operation", op, "reasons", reasons,
		"nodesGone", res.NodesGone, "nodesBack", res.NodesBack, "staleCleared", res.StaleCleared,
		"claimsRestored", res.ClaimsRestored, "claimsDropped", res.ClaimsDropped,
		"conflicts", res.Conflicts, "stuckFinalizers", res.StuckFinalizers, "overdueMigrations", res.OverdueMigrations}
	if res.Err != nil {
		klog.ErrorS(res.Err, "Reconcile met API errors; the decisions they affect are postponed", kv...)
		return
	}
	if res.changed() {
		klog.InfoS("Reconciled attachments", kv...)
		return
	}
	klog.V(4).InfoS("Reconciled attachments: no change", kv...)
}

// vaView is one pass over our VolumeAttachments.
type vaView struct {
	all   []vaInfo // sorted by name
	byKey map[claimKey]vaInfo
	// unresolved are nodes with an attachment whose volume is unknown (its
	// PV is missing); their claims are never dropped, since that attachment
	// might be the claim's.
	unresolved map[string]bool
	nodes      map[string]bool
}

func (r *Reconciler) listVAs() vaView {
	objs, _ := r.vas.List(labels.Everything()) // a cache read cannot fail
	v := vaView{byKey: make(map[claimKey]vaInfo, len(objs)), unresolved: map[string]bool{}, nodes: map[string]bool{}}
	v.all = make([]vaInfo, 0, len(objs))
	for _, o := range objs {
		if va, ok := r.toVA(o); ok && va.node != "" {
			v.all = append(v.all, va)
		}
	}
	slices.SortFunc(v.all, func(a, b vaInfo) int { return strings.Compare(a.name, b.name) })
	for _, va := range v.all {
		v.nodes[va.node] = true
		if va.volume == "" {
			v.unresolved[va.node] = true
			continue
		}
		k := claimKey{va.volume, va.node}
		// Kubernetes names attachments deterministically, so a second one
		// for the same pair is hand-made; prefer an attached one.
		if old, dup := v.byKey[k]; !dup || (!old.attached && va.attached) {
			v.byKey[k] = va
		}
	}
	return v
}

// verdict is one node's evaluation.
type verdict struct {
	state goneState
	gone  bool
}

// evaluateNodes decides, without acting, which of the named nodes are gone.
// Nodes the evaluation could not decide (an API error while confirming a
// deletion) are left out, so their state does not change.
func (r *Reconciler) evaluateNodes(ctx context.Context, names []string, now time.Time) (map[string]verdict, time.Time, []error) {
	out := make(map[string]verdict, len(names))
	var wake time.Time
	var errs []error
	r.goneMu.Lock()
	prevs := maps.Clone(r.gone)
	r.goneMu.Unlock()
	for _, name := range names {
		var prev *goneState
		if p, ok := prevs[name]; ok {
			prev = &p
		}
		n, err := r.nodes.Get(name)
		if apierrors.IsNotFound(err) {
			n = nil
			if prev == nil || prev.reason != goneDeleted {
				// The cache says deleted. Confirm once with the API
				// server before starting anyone's grace period.
				live, err := r.o.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					errs = append(errs, fmt.Errorf("confirm node %s deleted: %w", name, err))
					continue
				default:
					n = live
				}
			}
		} else if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", name, err))
			continue
		}
		g, gone, w := r.nodeVerdict(n, prev, now)
		out[name] = verdict{g, gone}
		if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
			wake = w
		}
	}
	return out, wake, errs
}

// nodeNames is every node worth evaluating: those in the cache (for taints
// and readiness), those holding claims or attachments (for deletion) and
// those already reported gone (for their return).
func (r *Reconciler) nodeNames(claims []attachment.Claim, vav vaView) []string {
	set := map[string]bool{}
	nodes, _ := r.nodes.List(labels.Everything())
	for _, n := range nodes {
		set[n.Name] = true
	}
	for _, c := range claims {
		set[c.Node] = true
	}
	maps.Copy(set, vav.nodes)
	r.goneMu.Lock()
	for n := range r.gone {
		set[n] = true
	}
	r.goneMu.Unlock()
	return slices.Sorted(maps.Keys(set))
}

// rebuildLocked restores the manager from VolumeAttachments, marks the
// nodes that are already gone with the time they went, and then runs the
// start-up reconciliation, which clears what lapsed while no controller was
// watching.
//
// A claim is rebuilt from every attachment with status.attached, including
// those being deleted: until the external-attacher has called
// ControllerUnpublish the node may still have the device. Attachments not
// yet attached are left out: the node never got access, the attacher will
// retry the publish and that decides afresh. Counting them would turn every
// refused attach of the outage into a claim, on a volume already held.
func (r *Reconciler) rebuildLocked(ctx context.Context) Result {
	now := r.now()
	vav := r.listVAs()
	verdicts, _, errs := r.evaluateNodes(ctx, r.nodeNames(nil, vav), now)

	var claims []attachment.Claim
	pending, unresolved := 0, 0
	volumes := map[string]bool{}
	claimed := map[string]bool{}
	for _, va := range vav.all {
		switch {
		case !va.attached:
			pending++
			continue
		case va.volume == "":
			unresolved++
			klog.InfoS("Attached VolumeAttachment skipped: its volume is unknown (PersistentVolume missing?)",
				"volumeAttachment", va.name, "persistentVolume", va.pv, "node", va.node)
			continue
		}
		c := attachment.Claim{Volume: va.volume, Node: va.node, Mode: va.mode, Since: va.created, Grace: va.grace}
		if v := verdicts[va.node]; v.gone {
			c.GoneSince = v.state.since
		}
		claims = append(claims, c)
		volumes[va.volume] = true
		claimed[va.node] = true
	}
	anomalies := 0
	if err := r.att.Restore(claims); err != nil {
		// Restore keeps what it cannot make sense of; the operator should
		// know which volumes now refuse every new node.
		for _, e := range unwrapAll(err) {
			anomalies++
			klog.InfoS("Attachment state restored with an anomaly", "detail", e.Error())
		}
	}
	var goneNodes []string
	r.goneMu.Lock()
	for _, name := range slices.Sorted(maps.Keys(verdicts)) {
		v := verdicts[name]
		if !v.gone {
			continue
		}
		r.gone[name] = v.state
		goneNodes = append(goneNodes, name)
	}
	r.goneMu.Unlock()
	for _, name := range goneNodes {
		// Restore marked the nodes with claims; the others must still
		// refuse new claims.
		if !claimed[name] {
			r.att.NodeGone(name)
		}
		klog.InfoS("Node gone at start-up", "node", name, "reason", verdicts[name].state.reason, "since", verdicts[name].state.since)
	}
	migrations := len(r.att.Migrations())
	r.ready.Store(true)

	res := r.reconcileLocked(ctx)
	res.Rebuilt = true
	res.Claims = len(claims)
	res.NodesGone = slices.Sorted(slices.Values(append(goneNodes, res.NodesGone...)))
	res.Err = errors.Join(append(errs, res.Err)...)
	msg := fmt.Sprintf("Rebuilt %d claims on %d volumes from %d VolumeAttachments of %s (%d migrations in progress, %d not yet attached, %d with unknown volume, %d anomalies); %d nodes gone; %d stale claims cleared",
		len(claims), len(volumes), len(vav.all), r.o.DriverName, migrations, pending, unresolved, anomalies, len(goneNodes), res.StaleCleared)
	klog.InfoS("Start-up reconciliation: " + msg)
	r.identityEvent(corev1.EventTypeNormal, reasonStartup, msg)
	return res
}

func unwrapAll(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}

// reconcileLocked is one run: node states, stale claims, drift, reports.
func (r *Reconciler) reconcileLocked(ctx context.Context) Result {
	var res Result
	now := r.now()
	vav := r.listVAs()
	before := r.att.Snapshot()
	verdicts, wake, errs := r.evaluateNodes(ctx, r.nodeNames(before, vav), now)
	r.applyVerdicts(verdicts, &res)
	// From here on the gone set is this run's view: the verdicts, and the
	// previous state of nodes that could not be evaluated.
	r.goneMu.Lock()
	gone := maps.Clone(r.gone)
	r.goneMu.Unlock()

	var sw attachment.SweepResult
	fenced := true
	if r.o.Fencer != nil {
		var ferrs []error
		fenced, ferrs = r.fenceLapsing(ctx, before, now)
		errs = append(errs, ferrs...)
	}
	if fenced {
		sw = r.att.Sweep()
	} else {
		// Claims whose host may still reach RDS stay: clearing one is
		// what lets its volume be published elsewhere.
		wake = earliest(wake, now.Add(fenceRetry))
	}
	res.StaleCleared = len(sw.Cleared)
	r.metrics.reconcile.WithLabelValues(actionStaleCleared).Add(float64(len(sw.Cleared)))
	for _, m := range sw.Overdue {
		res.OverdueMigrations = append(res.OverdueMigrations, m.Volume)
		klog.V(2).InfoS("Migration overdue", "volume", m.Volume, "source", m.Source, "target", m.Target, "deadline", m.Deadline)
	}

	claims := r.att.Snapshot()
	held := make(map[claimKey]attachment.Claim, len(claims))
	for _, c := range claims {
		held[claimKey{c.Volume, c.Node}] = c
	}
	errs = append(errs, r.restoreMissing(ctx, vav, held, gone, now, &res)...)
	errs = append(errs, r.dropOrphans(ctx, vav, claims, now, &res)...)
	r.reportStuck(vav, held, gone, &res)
	r.pruneGone(vav, claims)

	migrations := r.att.Migrations()
	r.metrics.migrationActive.Set(float64(len(migrations)))
	for _, m := range migrations {
		if !m.Overdue {
			wake = earliest(wake, m.Deadline)
		}
	}
	// The post-sweep snapshot is good enough for the wake-up: drift repair
	// only adds claims of healthy nodes (which never lapse) or removes
	// claims (whose wake-up then finds nothing to do), and a third walk
	// over every claim is the most expensive part of a run.
	for _, c := range claims {
		if l := c.LapsesAt(); !l.IsZero() && l.After(now) {
			wake = earliest(wake, l)
		}
	}
	if r.o.Fencer != nil {
		r.markChanged(before, r.att.Snapshot())
		if err := r.applyPending(ctx); err != nil {
			errs = append(errs, err)
			wake = earliest(wake, now.Add(fenceRetry))
		}
	}
	r.scheduleWake(wake)
	if err := r.nudgeAttacher(ctx, sw.Cleared); err != nil {
		errs = append(errs, err)
	}
	res.Err = errors.Join(errs...)
	return res
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// applyVerdicts tells the manager about nodes that went or came back.
func (r *Reconciler) applyVerdicts(verdicts map[string]verdict, res *Result) {
	for _, name := range slices.Sorted(maps.Keys(verdicts)) {
		v := verdicts[name]
		r.goneMu.Lock()
		prev, was := r.gone[name]
		switch {
		case v.gone && !was:
			r.gone[name] = v.state
		case v.gone && prev.reason != v.state.reason:
			// Still gone, for another reason; the manager keeps the
			// first time, and so do we.
			r.gone[name] = goneState{v.state.reason, prev.since}
		case !v.gone && was:
			delete(r.gone, name)
		}
		r.goneMu.Unlock()
		switch {
		case v.gone && !was:
			r.att.NodeGone(name)
			res.NodesGone = append(res.NodesGone, name)
			r.metrics.reconcile.WithLabelValues(actionNodeGone).Inc()
			klog.InfoS("Node gone: its claims lapse after their grace period", "node", name, "reason", v.state.reason)
		case !v.gone && was:
			r.att.NodeBack(name)
			res.NodesBack = append(res.NodesBack, name)
			r.metrics.reconcile.WithLabelValues(actionNodeBack).Inc()
			klog.InfoS("Node back: its claims stand", "node", name, "wasGoneBecause", prev.reason)
		}
	}
}

// restoreMissing gives the manager the claims of attached
// VolumeAttachments it does not know. Attachments being deleted are left
// alone: ControllerUnpublish may already have released them, and restoring
// would resurrect a claim nobody will release.
func (r *Reconciler) restoreMissing(ctx context.Context, vav vaView, held map[claimKey]attachment.Claim, gone map[string]goneState, now time.Time, res *Result) []error {
	var errs []error
	for _, va := range vav.all {
		k := claimKey{va.volume, va.node}
		if _, isGone := gone[va.node]; !va.attached || va.deleting || va.volume == "" || isGone {
			delete(r.conflictReported, va.name)
			continue
		}
		if _, ok := held[k]; ok {
			delete(r.conflictReported, va.name)
			continue
		}
		if holder := blocking(r.att.Holders(va.volume), va.node, va.mode, now); holder != "" {
			res.Conflicts = append(res.Conflicts, va.name)
			if !r.conflictReported[va.name] {
				r.conflictReported[va.name] = true
				r.metrics.reconcile.WithLabelValues(actionClaimConflict).Inc()
				msg := fmt.Sprintf("VolumeAttachment %s says volume %s is attached to node %s, but node %s holds the volume; the claim of node %s was not restored. Detach one of them",
					va.name, va.volume, va.node, holder, va.node)
				klog.InfoS("Attachment drift: "+msg, "volume", va.volume, "node", va.node, "holder", holder)
				r.volumeEvent(va.volume, corev1.EventTypeWarning, reasonConflict, msg)
			}
			continue
		}
		// The cache may lag behind a detach; restore only what the API
		// server still shows attached.
		live, err := r.o.Client.StorageV1().VolumeAttachments().Get(ctx, va.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("confirm VolumeAttachment %s: %w", va.name, err))
			continue
		case !live.Status.Attached || live.DeletionTimestamp != nil || live.Spec.NodeName != va.node:
			continue
		}
		if err := r.att.Publish(va.volume, va.node, va.mode, va.grace); err != nil {
			klog.InfoS("Attachment drift: claim not restored", "volumeAttachment", va.name, "volume", va.volume, "node", va.node, "err", err)
			continue
		}
		res.ClaimsRestored++
		r.metrics.reconcile.WithLabelValues(actionClaimRestored).Inc()
		klog.InfoS("Attachment drift: claim restored from VolumeAttachment", "volumeAttachment", va.name, "volume", va.volume, "node", va.node)
	}
	return errs
}

// blocking returns a node whose claim keeps node from holding volume, or "".
func blocking(holders []attachment.Claim, node string, mode attachment.Mode, now time.Time) string {
	var others []attachment.Claim
	for _, c := range holders {
		if c.Node != node && !c.Stale(now) {
			others = append(others, c)
		}
	}
	switch {
	case len(others) == 0:
		return ""
	case len(others) == 1 && mode == attachment.MultiNodeBlock && others[0].Mode == attachment.MultiNodeBlock:
		return ""
	}
	return others[0].Node
}

// dropOrphans removes claims whose VolumeAttachment is gone: the finalizer
// was removed by hand or the unpublish never arrived, and nothing else would
// ever release the volume. A claim younger than one Interval is left for
// later, and the API server must confirm the attachment is gone.
func (r *Reconciler) dropOrphans(ctx context.Context, vav vaView, claims []attachment.Claim, now time.Time, res *Result) []error {
	var errs []error
	for _, c := range claims {
		if _, ok := vav.byKey[claimKey{c.Volume, c.Node}]; ok || vav.unresolved[c.Node] || now.Sub(c.Since) < r.o.Interval {
			continue
		}
		name := attachmentName(c.Volume, r.o.DriverName, c.Node)
		_, err := r.o.Client.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			continue // the cache is behind
		}
		if !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("confirm VolumeAttachment %s gone: %w", name, err))
			continue
		}
		// Only the claim we judged: a publish may have replaced it since.
		hs := r.att.Holders(c.Volume)
		if i := slices.IndexFunc(hs, func(h attachment.Claim) bool { return h.Node == c.Node }); i < 0 || !hs[i].Since.Equal(c.Since) {
			continue
		}
		r.att.Unpublish(c.Volume, c.Node)
		res.ClaimsDropped++
		r.metrics.reconcile.WithLabelValues(actionClaimDropped).Inc()
		klog.InfoS("Attachment drift: claim dropped, its VolumeAttachment no longer exists", "volume", c.Volume, "node", c.Node, "since", c.Since)
	}
	return errs
}

// reportStuck reports attachments of gone nodes whose claim the driver has
// already let go of but which still carry finalizers. The finalizer belongs
// to the external-attacher, which removes it once Kubernetes deletes the
// attachment and ControllerUnpublish answers (it always does, even with RDS
// down); removing it here would hide the attachment from the attacher
// instead of detaching it. So the reconciler reports, once per attachment.
func (r *Reconciler) reportStuck(vav vaView, held map[claimKey]attachment.Claim, gone map[string]goneState, res *Result) {
	stuck := map[string]bool{}
	for _, va := range vav.all {
		g, isGone := gone[va.node]
		if !isGone || len(va.finalizers) == 0 {
			continue
		}
		if _, ok := held[claimKey{va.volume, va.node}]; ok && va.volume != "" {
			continue
		}
		stuck[va.name] = true
		res.StuckFinalizers = append(res.StuckFinalizers, va.name)
		if r.stuckReported[va.name] {
			continue
		}
		r.metrics.reconcile.WithLabelValues(actionStuckFinalizer).Inc()
		what := "is not being deleted yet (Kubernetes deletes it after the out-of-service taint or the force-detach timeout)"
		if va.deleting {
			what = "is being deleted but its finalizer was not removed (is the external-attacher running?)"
		}
		msg := fmt.Sprintf("VolumeAttachment %s of volume %s on node %s still carries finalizers %s although the node is gone (%s) and the driver no longer holds the volume for it; it %s",
			va.name, va.volume, va.node, strings.Join(va.finalizers, ","), g.reason, what)
		klog.InfoS("Stuck VolumeAttachment: "+msg, "volumeAttachment", va.name, "node", va.node)
		if va.volume != "" {
			r.volumeEvent(va.volume, corev1.EventTypeWarning, reasonStuck, msg)
		}
	}
	for name := range r.stuckReported {
		if !stuck[name] {
			delete(r.stuckReported, name)
		}
	}
	maps.Copy(r.stuckReported, stuck)
}

// pruneGone forgets deleted nodes that hold nothing and have no
// attachments left, so node churn does not grow the gone set forever. A
// publish to such a node is refused anyway: NodeExists says it does not
// exist.
func (r *Reconciler) pruneGone(vav vaView, claims []attachment.Claim) {
	holding := map[string]bool{}
	for _, c := range claims {
		holding[c.Node] = true
	}
	var prune []string
	r.goneMu.Lock()
	for name, g := range r.gone {
		if g.reason != goneDeleted || holding[name] || vav.nodes[name] {
			continue
		}
		if _, err := r.nodes.Get(name); apierrors.IsNotFound(err) {
			prune = append(prune, name)
			delete(r.gone, name)
		}
	}
	r.goneMu.Unlock()
	slices.Sort(prune)
	for _, name := range prune {
		r.att.NodeBack(name)
		klog.V(2).InfoS("Forgot deleted node: it holds nothing", "node", name)
	}
}
