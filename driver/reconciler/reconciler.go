package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/recovery"
)

// Defaults for Options fields left zero.
const (
	DefaultInterval         = 5 * time.Minute
	DefaultCacheSyncTimeout = 30 * time.Second
)

// ErrNotReady is what NodeExists answers until the attachment state has been
// rebuilt from VolumeAttachments. The controller maps a NodeLookup error to
// UNAVAILABLE, so the external-attacher retries instead of getting a
// decision made from an empty manager.
var ErrNotReady = errors.New("reconciler: attachment state not rebuilt yet (Kubernetes API not synced)")

// Options configure a Reconciler.
type Options struct {
	// DriverName selects our VolumeAttachments (spec.attacher) and
	// PersistentVolumes (spec.csi.driver).
	DriverName  string
	Client      kubernetes.Interface
	Attachments *attachment.Manager
	// Clock is the only source of time; nil means the real clock.
	Clock clock.Clock
	// Interval is the periodic reconcile (DefaultInterval). It is also how
	// old a claim must be before a missing VolumeAttachment drops it, so a
	// claim is never judged by a cache that may not have caught up with it.
	Interval time.Duration
	// NotReadyTimeout, when positive, is the operator's opt-in to treating
	// a node NotReady for longer than this as gone. Zero (the default) means
	// NotReady never costs a node its claims: only deletion and the
	// out-of-service taint do.
	NotReadyTimeout time.Duration
	// CacheSyncTimeout bounds how long Start waits for the informers, on
	// Clock (DefaultCacheSyncTimeout).
	CacheSyncTimeout time.Duration
	// Recorder receives the Kubernetes events. Nil builds one that writes
	// through Client with the usual aggregation; Run shuts it down on exit.
	Recorder record.EventRecorder
	// Registerer receives the metrics; nil registers none (they are still
	// counted, so tests can read them).
	Registerer prometheus.Registerer
	// Identity is the controller's own object (its Pod), which carries the
	// events that are about the controller rather than a volume. Nil logs
	// them only.
	Identity *corev1.ObjectReference
	// Fencer, when set, revokes a claim's host on RDS before the claim is
	// cleared, and applies what unpublishes left pending (--restrict-hosts).
	Fencer Fencer
}

// Reconciler rebuilds, watches and reconciles the attachment state. Create
// it with New, call Start before serving, then Run.
//
// The attachment manager must deliver its events to the Reconciler, which
// is created after it, so wire it through a closure:
//
//	var r *reconciler.Reconciler
//	att := attachment.New(attachment.Options{Events: attachment.EventFunc(func(e attachment.Event) { r.Event(e) })})
//	r, err := reconciler.New(reconciler.Options{Attachments: att, ...})
type Reconciler struct {
	o       Options
	clk     clock.Clock
	att     *attachment.Manager
	metrics *metrics

	factory     informers.SharedInformerFactory
	nodeInf     cache.SharedIndexInformer
	vaInf       cache.SharedIndexInformer
	pvInf       cache.SharedIndexInformer
	nodes       corelisters.NodeLister
	vas         storagelisters.VolumeAttachmentLister
	pvs         corelisters.PersistentVolumeLister
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster // ours to shut down, if we built it

	startOnce sync.Once
	synced    chan struct{} // closed once every cache has synced
	ready     atomic.Bool

	// runMu makes rebuilds and reconcile runs one at a time. RPCs never
	// take it: they meet the reconciler only in the manager's per-volume
	// locks, so API I/O under runMu delays nothing but the next run.
	runMu sync.Mutex
	// Guarded by runMu: the VolumeAttachments already reported, so a
	// condition that lasts is one event, not one per run.
	stuckReported    map[string]bool
	conflictReported map[string]bool

	// goneMu guards gone, which the node watcher reads.
	goneMu sync.Mutex
	// gone holds the nodes this reconciler reported gone, and why; the
	// manager cannot list them, and NodeBack needs to know whom to call.
	gone map[string]goneState

	trigger   chan struct{}
	reasonsMu sync.Mutex
	reasons   map[string]struct{}

	wakeMu sync.Mutex
	wake   clock.Timer
	wakeAt time.Time

	rdsMu        sync.Mutex
	rdsKnown     bool
	rdsConnected bool
	// nudge is why failed attachments should be re-queued with the
	// external-attacher at the next run with RDS connected ("" for none):
	// a reconnect, or this leader's start (failover). failoverArmed: the
	// start's nudge has not been decided yet (see maybeFailoverNudge).
	nudge         string
	failoverArmed bool

	recovery *recovery.Tracker
}

// goneState is why and since when a node counts as gone.
type goneState struct {
	reason string
	since  time.Time
}

const pvHandleIndex = "rds-csi-volume-handle"

// New checks the options and prepares the informers; nothing runs until
// Start.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.DriverName == "":
		return nil, errors.New("reconciler: no driver name")
	case o.Client == nil:
		return nil, errors.New("reconciler: no Kubernetes client")
	case o.Attachments == nil:
		return nil, errors.New("reconciler: no attachment manager")
	case o.Interval < 0, o.NotReadyTimeout < 0, o.CacheSyncTimeout < 0:
		return nil, errors.New("reconciler: negative duration")
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.CacheSyncTimeout == 0 {
		o.CacheSyncTimeout = DefaultCacheSyncTimeout
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{
		o:                o,
		clk:              o.Clock,
		att:              o.Attachments,
		metrics:          m,
		gone:             map[string]goneState{},
		stuckReported:    map[string]bool{},
		conflictReported: map[string]bool{},
		trigger:          make(chan struct{}, 1),
		reasons:          map[string]struct{}{},
		failoverArmed:    true,
	}
	// No resync: the periodic reconcile already revisits everything, and
	// resync storms of Update events would only trigger empty runs.
	r.factory = informers.NewSharedInformerFactory(o.Client, 0)
	nodes := r.factory.Core().V1().Nodes()
	vas := r.factory.Storage().V1().VolumeAttachments()
	pvs := r.factory.Core().V1().PersistentVolumes()
	r.nodeInf, r.vaInf, r.pvInf = nodes.Informer(), vas.Informer(), pvs.Informer()
	r.nodes, r.vas, r.pvs = nodes.Lister(), vas.Lister(), pvs.Lister()
	// Events name the PVC, but the manager only knows volume handles; the
	// index makes that lookup a map read on the RPC path.
	if err := r.pvInf.AddIndexers(cache.Indexers{pvHandleIndex: r.indexPVByHandle}); err != nil {
		return nil, fmt.Errorf("reconciler: PV index: %w", err)
	}
	if _, err := r.nodeInf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    r.onNodeAdd,
		UpdateFunc: r.onNodeUpdate,
		DeleteFunc: func(any) { r.Trigger("node-deleted") },
	}); err != nil {
		return nil, fmt.Errorf("reconciler: node handler: %w", err)
	}
	r.recovery, err = recovery.New(recovery.Options{DriverName: o.DriverName, Client: o.Client, VolumeAttachments: r.vas,
		VolumeOf: func(va *storagev1.VolumeAttachment) string { v, _ := r.toVA(va); return v.volume },
		Clock:    o.Clock, Registerer: o.Registerer, Completed: r.recoveryCompleted})
	if err != nil {
		return nil, err
	}
	if _, err := r.vaInf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, initial bool) {
			if !initial {
				r.recovery.Check()
			}
		},
		UpdateFunc: func(any, any) { r.recovery.Check() },
		DeleteFunc: func(obj any) {
			r.onVADelete(obj)
			r.recovery.Check()
		}}); err != nil {
		return nil, fmt.Errorf("reconciler: VolumeAttachment handler: %w", err)
	}
	r.recorder = o.Recorder
	if r.recorder == nil {
		// The correlator aggregates and rate-limits on our clock; the
		// recorder still stamps events with the real time (client-go has no
		// seam for that), so a runner that compares traces passes its own.
		r.broadcaster = record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{Clock: passiveClock{o.Clock}}))
		r.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: o.Client.CoreV1().Events("")})
		r.recorder = r.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: o.DriverName})
	}
	return r, nil
}

// passiveClock adapts clock.Clock to the PassiveClock client-go wants.
type passiveClock struct{ c clock.Clock }

func (p passiveClock) Now() time.Time                  { return p.c.Now() }
func (p passiveClock) Since(t time.Time) time.Duration { return p.c.Since(t) }

func (r *Reconciler) now() time.Time { return r.clk.Now().UTC() }

// startInformers starts the informers once. ctx bounds their life, so it
// must be the process's context, not a request's.
func (r *Reconciler) startInformers(ctx context.Context) {
	r.startOnce.Do(func() {
		r.synced = make(chan struct{})
		r.factory.Start(ctx.Done())
		checkers := []cache.DoneChecker{r.nodeInf.HasSyncedChecker(), r.vaInf.HasSyncedChecker(), r.pvInf.HasSyncedChecker()}
		go func() {
			// WaitFor blocks on channels instead of polling, so a
			// scenario runner sees no timer of ours while it waits.
			if cache.WaitFor(ctx, "", checkers...) {
				close(r.synced)
			}
		}()
	})
}

// cachesSynced reports whether every cache has synced. Decisions need all
// three: a missing Node in an unsynced cache is not a deleted node.
func (r *Reconciler) cachesSynced() bool {
	if r.synced == nil {
		return false
	}
	select {
	case <-r.synced:
		return true
	default:
		return false
	}
}

// Start starts the informers, waits for them (at most CacheSyncTimeout on
// the clock), rebuilds the attachment manager from VolumeAttachments and
// runs the start-up reconciliation. The caller serves gRPC only after it
// returns nil. On error the reconciler stays not Ready (NodeExists refuses
// with ErrNotReady) and Run keeps retrying the rebuild; ctx also bounds the
// informers, so pass the process's context.
func (r *Reconciler) Start(ctx context.Context) error {
	r.startInformers(ctx)
	wctx, cancel := r.clk.WithTimeout(ctx, r.o.CacheSyncTimeout)
	defer cancel()
	select {
	case <-r.synced:
	case <-wctx.Done():
		klog.ErrorS(wctx.Err(), "Kubernetes API caches did not sync; attachment state not rebuilt, publishes are refused until it is",
			"timeout", r.o.CacheSyncTimeout)
		return fmt.Errorf("reconciler: caches for Nodes, VolumeAttachments and PersistentVolumes not synced within %v: %w",
			r.o.CacheSyncTimeout, ErrNotReady)
	}
	res := r.ReconcileOnce(ctx)
	if !r.Ready() {
		return fmt.Errorf("reconciler: rebuild failed (%s): %w", res.Skipped, ErrNotReady)
	}
	return nil
}

// Ready reports whether the attachment state has been rebuilt. Until then
// the controller must not publish: it would decide from an empty manager.
func (r *Reconciler) Ready() bool { return r.ready.Load() }

// NodeExists implements the driver's NodeLookup from the Node cache, so the
// publish path never waits on the API server. Before the state is rebuilt
// it answers ErrNotReady, which refuses the publish with UNAVAILABLE.
// A node being deleted or tainted out-of-service still exists: refusing it
// is the attachment manager's decision (ErrNodeGone), with its message.
func (r *Reconciler) NodeExists(_ context.Context, node string) (bool, error) {
	if !r.Ready() {
		return false, ErrNotReady
	}
	if _, err := r.nodes.Get(node); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Trigger asks for a reconcile as soon as possible. Triggers coalesce: any
// number of them while a run is pending or in progress cause one more run.
func (r *Reconciler) Trigger(reason string) {
	r.reasonsMu.Lock()
	r.reasons[reason] = struct{}{}
	r.reasonsMu.Unlock()
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

func (r *Reconciler) takeReasons() []string {
	r.reasonsMu.Lock()
	defer r.reasonsMu.Unlock()
	out := make([]string, 0, len(r.reasons))
	for k := range r.reasons {
		out = append(out, k)
	}
	clear(r.reasons)
	slices.Sort(out)
	return out
}

// Run reconciles every Interval and on Trigger until ctx is done. While the
// state is not rebuilt it retries the rebuild as soon as the caches sync
// and on every tick. Runs never overlap.
func (r *Reconciler) Run(ctx context.Context) {
	r.startInformers(ctx)
	if r.broadcaster != nil {
		defer r.broadcaster.Shutdown()
	}
	defer r.stopWake()
	t := r.clk.Ticker(r.o.Interval)
	defer t.Stop()
	synced := r.synced
	if r.Ready() {
		synced = nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			r.Trigger("periodic")
		case <-synced:
			synced = nil
			r.Trigger("caches-synced")
		case <-r.trigger:
		}
		// Drain a trigger that raced with the tick so it does not cause
		// an extra, empty run.
		select {
		case <-r.trigger:
		default:
		}
		r.ReconcileOnce(ctx)
	}
}

// onNodeAdd triggers for nodes that matter on arrival: a re-created node we
// reported gone, or one that already carries the out-of-service taint. The
// initial list is left to the rebuild.
func (r *Reconciler) onNodeAdd(obj any, initial bool) {
	n, ok := obj.(*corev1.Node)
	if !ok || initial {
		return
	}
	if _, tainted := outOfService(n); tainted || r.isGone(n.Name) {
		r.Trigger("node-added")
	}
}

func (r *Reconciler) onNodeUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	// Only transitions trigger, so the informer's periodic no-op updates
	// (and the fake clientset's, which carry no resourceVersion) do not.
	oReady, _ := readiness(o)
	nReady, _ := readiness(n)
	_, oTaint := outOfService(o)
	_, nTaint := outOfService(n)
	switch {
	case !oTaint && nTaint:
		r.Trigger("node-out-of-service")
	case oTaint && !nTaint:
		r.Trigger("node-out-of-service-removed")
	case o.DeletionTimestamp == nil && n.DeletionTimestamp != nil:
		r.Trigger("node-deleting")
	case oReady && !nReady:
		r.Trigger("node-not-ready")
	case !oReady && nReady && r.isGone(n.Name):
		r.Trigger("node-ready")
	}
}

// onVADelete triggers only when the manager still holds a claim for the
// deleted attachment. Normally ControllerUnpublish has already released it;
// a claim left behind means the finalizer was removed by hand or the
// unpublish was lost, and the volume stays blocked until a run drops it.
func (r *Reconciler) onVADelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	va, ok := r.toVA(obj)
	if !ok || va.volume == "" {
		return
	}
	for _, c := range r.att.Holders(va.volume) {
		if c.Node == va.node {
			r.Trigger("volumeattachment-deleted")
			return
		}
	}
}

func (r *Reconciler) isGone(node string) bool {
	r.goneMu.Lock()
	defer r.goneMu.Unlock()
	_, ok := r.gone[node]
	return ok
}

// scheduleWake arms one timer for the earliest future deadline (a claim
// lapsing, a NotReady timeout, a migration window), so a lapse is acted on
// when it happens rather than at the next tick.
func (r *Reconciler) scheduleWake(at time.Time) {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if at.Equal(r.wakeAt) && r.wake != nil {
		return
	}
	if r.wake != nil {
		r.wake.Stop()
		r.wake = nil
	}
	r.wakeAt = at
	if at.IsZero() {
		return
	}
	d := at.Sub(r.now())
	if d <= 0 {
		// A deadline already passed belongs to the next run, not a timer.
		r.wakeAt = time.Time{}
		r.Trigger("deadline")
		return
	}
	r.wake = r.clk.AfterFunc(d, func() { r.Trigger("deadline") })
}

func (r *Reconciler) stopWake() {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.wake != nil {
		r.wake.Stop()
		r.wake = nil
	}
	r.wakeAt = time.Time{}
}
