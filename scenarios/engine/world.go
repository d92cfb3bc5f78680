package engine

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/rds-csi/rds-csi/chaos"
	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
	"github.com/rds-csi/rds-csi/emulator"
)

// Options configure a World. Zero values take the defaults noted.
type Options struct {
	Seed  uint64
	Nodes int       // Ready nodes "node-1".."node-N" (3)
	Start time.Time // virtual start (2025-01-01T00:00:00Z)
	// HealthInterval of the RDS manager (10s, the production default).
	HealthInterval time.Duration
	// SettleChecks is how many consecutive identical idle snapshots the
	// barrier needs (3); SettleTimeout bounds it in real time (10s).
	SettleChecks  int
	SettleTimeout time.Duration
}

const initialConnectTimeout = time.Minute // distinct from every loop timer, see mgrTimer

// World is the whole controller side in one process on one mock clock.
type World struct {
	Clock       *clock.Mock
	Emulator    *emulator.Emulator
	Network     *chaos.Network
	RDS         *rds.Manager
	Kube        *fake.Clientset
	Attachments *attachment.Manager
	Reconciler  *reconciler.Reconciler
	Driver      *driver.Driver

	opts   Options
	vc     *vclock
	start  time.Time
	trace  Trace
	reg    *prometheus.Registry
	ctx    context.Context
	cancel context.CancelFunc
	faults map[string]chaos.Undo

	// activity counters at the seams
	cmds, connects, health atomic.Int64
	apiWrites, apiSeen     atomic.Int64
	steps                  atomic.Int64

	// model of the RDS manager's goroutine, see doc.go
	mgrMu        sync.Mutex
	mgrWait      mgrWait
	mgrTimerAt   time.Time
	mgrTimerHC   bool
	mgrConn      rds.Conn
	runsWant     float64
	recTickNext  time.Time
	recTickEvery time.Duration
}

type mgrWait int

const (
	mgrParked mgrWait = iota
	mgrEvent          // until its next state event
	mgrTimer          // until it arms its health-check timer
	mgrHealth         // until its health check starts
)

func (m mgrWait) String() string {
	return [...]string{"parked", "event", "timer", "health"}[m]
}

// NewWorld builds and starts everything; it returns once the RDS connection
// is up, the reconciler has rebuilt its state and the system is quiescent.
func NewWorld(o Options) (*World, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 10 * time.Second
	}
	if o.SettleChecks == 0 {
		o.SettleChecks = 3
	}
	if o.SettleTimeout == 0 {
		o.SettleTimeout = 10 * time.Second
	}
	mock := clock.NewMock()
	mock.Set(o.Start)
	w := &World{Clock: mock, opts: o, vc: newVClock(mock), start: o.Start, reg: prometheus.NewRegistry(),
		faults: map[string]chaos.Undo{}}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()

	// SSH identities: the client key derives from the seed (its signatures
	// never reach the trace); the emulator's host key is pinned.
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], o.Seed)
	seed = sha256.Sum256(seed[:])
	signer, err := gossh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		return nil, err
	}
	w.Emulator, err = emulator.New(emulator.Config{AuthorizedKeys: []gossh.PublicKey{signer.PublicKey()}, Clock: w.vc.view(nil)})
	if err != nil {
		return nil, err
	}
	emu := w.Emulator
	w.Network = chaos.NewNetwork(func(context.Context) (net.Conn, error) { return emu.DialInMemory() }, w.vc.view(nil))
	ssh, err := rds.NewSSHConnector(w.Network.Dial, rds.SSHConfig{Address: "rds.sim:22", Signer: signer,
		KnownHostsLine: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(emu.HostKey())))})
	if err != nil {
		return nil, err
	}
	w.RDS, err = rds.NewManager(rds.ManagerConfig{
		Connector: &connector{w: w, c: ssh}, Clock: w.vc.view(w.mgrTimerArmed),
		Rand:           rand.New(rand.NewPCG(o.Seed, 0x5eed)),
		HealthInterval: o.HealthInterval, InitialConnectTimeout: initialConnectTimeout,
	})
	if err != nil {
		return nil, err
	}

	var nodes []runtime.Object
	for i := 1; i <= o.Nodes; i++ {
		nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}})
	}
	w.Kube = fake.NewSimpleClientset(nodes...)
	if err := w.watchAPI(); err != nil {
		return nil, err
	}

	var r *reconciler.Reconciler
	w.Attachments = attachment.New(attachment.Options{Clock: w.vc.view(nil), Events: attachment.EventFunc(func(e attachment.Event) {
		w.record("attachment.event", map[string]any{"type": string(e.Type), "volume": e.Volume, "node": e.Node,
			"other": e.OtherNode, "msg": e.Message})
		r.Event(e)
	})})
	recView := &clockView{v: w.vc}
	r, err = reconciler.New(reconciler.Options{DriverName: driver.DefaultName, Client: w.Kube, Attachments: w.Attachments,
		Clock: tickerSpy{recView, w}, Recorder: &recorder{w: w}, Registerer: w.reg,
		Identity: &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "rds-csi-controller-0"}})
	if err != nil {
		return nil, err
	}
	w.Reconciler = r
	w.RDS.Subscribe(w.onRDSEvent)
	if err := w.RDS.Start(w.ctx); err != nil {
		return nil, fmt.Errorf("engine: first RDS connection: %w", err)
	}
	if err := r.Start(w.ctx); err != nil {
		return nil, err
	}
	go r.Run(w.ctx)
	w.Driver, err = driver.New(driver.Options{BasePath: "/storage-pool/k8s", NVMeAddress: "10.0.0.1", NVMePort: 4420,
		Clock: w.vc.view(nil), RDS: &transport{w: w, m: w.RDS}, Nodes: r, StateReady: r.Ready, Attachments: w.Attachments})
	if err != nil {
		return nil, err
	}
	if err := w.settle(); err != nil {
		return nil, err
	}
	w.trace.Flush()
	ok = true
	return w, nil
}

// Close stops everything the World started.
func (w *World) Close() {
	w.cancel()
	if w.RDS != nil {
		_ = w.RDS.Close()
	}
	if w.Network != nil {
		_ = w.Network.Close()
	}
	if w.Emulator != nil {
		_ = w.Emulator.Close()
	}
}

// Now is the virtual time since the start.
func (w *World) Now() time.Duration { return w.Clock.Now().Sub(w.start) }

// Trace is the flushed trace so far.
func (w *World) Trace() *Trace { return &w.trace }

// TraceHash is the sha256 of the trace.
func (w *World) TraceHash() string { return w.trace.Hash() }

// VirtualSteps is how many times the clock was moved.
func (w *World) VirtualSteps() int64 { return w.steps.Load() }

func (w *World) record(kind string, f map[string]any) {
	w.trace.add(Event{T: w.Now(), Kind: kind, Fields: f})
}

// ---- RDS seams ---------------------------------------------------------

// transport is the driver's RDS connection: the Manager, with every command
// counted while in flight and traced with its result.
type transport struct {
	w *World
	m *rds.Manager
}

func (t *transport) State() rds.State { return t.m.State() }

func (t *transport) Run(ctx context.Context, cmd string) (string, error) {
	t.w.cmds.Add(1)
	defer t.w.cmds.Add(-1)
	out, err := t.m.Run(ctx, cmd)
	sum := sha256.Sum256([]byte(out))
	t.w.record("rds.command", map[string]any{"cmd": cmd, "err": errKind(err), "out": hex.EncodeToString(sum[:6])})
	return out, err
}

type connector struct {
	w *World
	c rds.Connector
}

func (c *connector) Connect(ctx context.Context) (rds.Conn, error) {
	c.w.connects.Add(1)
	defer c.w.connects.Add(-1)
	conn, err := c.c.Connect(ctx)
	c.w.record("rds.connect", map[string]any{"err": errKind(err)})
	if err != nil {
		return nil, err
	}
	wc := &conn_{w: c.w, Conn: conn}
	c.w.mgrMu.Lock()
	c.w.mgrConn = wc
	c.w.mgrMu.Unlock()
	go func() {
		<-conn.Done()
		c.w.mgrMu.Lock()
		if c.w.mgrConn == wc && c.w.mgrWait == mgrParked {
			c.w.mgrWait = mgrEvent // the manager must notice and report it
		}
		c.w.mgrMu.Unlock()
	}()
	return wc, nil
}

type conn_ struct {
	rds.Conn
	w *World
}

func (c *conn_) HealthCheck(ctx context.Context) error {
	w := c.w
	w.health.Add(1)
	w.mgrMu.Lock()
	if w.mgrWait == mgrHealth {
		w.mgrWait = mgrParked
	}
	w.mgrMu.Unlock()
	err := c.Conn.HealthCheck(ctx)
	w.mgrMu.Lock()
	if err == nil {
		w.mgrWait = mgrTimer
	} else {
		w.mgrWait = mgrEvent
	}
	w.mgrMu.Unlock()
	w.record("rds.health", map[string]any{"err": errKind(err)})
	w.health.Add(-1)
	return err
}

// mgrTimerArmed is the manager's clock view telling of a Timer.
func (w *World) mgrTimerArmed(d time.Duration, at time.Time) {
	if d == initialConnectTimeout {
		return // Start's wait, not the loop
	}
	w.mgrMu.Lock()
	defer w.mgrMu.Unlock()
	w.mgrTimerAt, w.mgrTimerHC = at, d == w.opts.HealthInterval
	if w.mgrWait == mgrTimer && w.mgrTimerHC {
		w.mgrWait = mgrParked
	}
}

func (w *World) onRDSEvent(ev rds.Event) {
	f := map[string]any{"state": ev.State.String(), "previous": ev.Previous.String(), "failures": ev.Failures}
	if ev.RetryIn > 0 {
		f["retryIn"] = ev.RetryIn.String()
		f["retryInNs"] = int64(ev.RetryIn)
	}
	if ev.Err != nil {
		f["err"] = errKind(ev.Err)
	}
	w.record("rds.state", f)
	// As the controller binary wires it (cmd/rds-csi cluster.rdsChanged).
	switch {
	case ev.State == rds.StateConnected && ev.Previous != rds.StateConnected:
		if w.Reconciler != nil && w.Reconciler.Ready() {
			w.expectRun()
		}
		w.Reconciler.RDSStateChanged(true, "connection to RDS established")
	case ev.Previous == rds.StateConnected && ev.State != rds.StateConnected:
		w.Reconciler.RDSStateChanged(false, "connection to RDS lost")
	}
	w.mgrMu.Lock()
	switch ev.State {
	case rds.StateConnecting:
		w.mgrWait = mgrEvent
	case rds.StateConnected:
		w.mgrWait = mgrTimer
		if w.mgrTimerHC && w.mgrTimerAt.After(w.Clock.Now()) && w.mgrTimerAt.Equal(w.Clock.Now().Add(w.opts.HealthInterval)) {
			w.mgrWait = mgrParked // the health timer was armed before this event reached us
		}
	case rds.StateDisconnected:
		w.mgrWait = mgrParked // the backoff timer is armed before the event
		w.mgrConn = nil
	}
	w.mgrMu.Unlock()
}

// errKind reduces an error to the rds sentinel it wraps: error texts carry
// scheduling detail (EOF versus reset) that must not reach the trace.
func errKind(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range []error{rds.ErrUnavailable, rds.ErrNotFound, rds.ErrCapacity, rds.ErrExists, rds.ErrRejected,
		rds.ErrInvalidArgument, rds.ErrFailed, rds.ErrHostKeyMismatch, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "other"
}

// ---- Kubernetes seams ----------------------------------------------------

var watched = map[string]bool{"nodes": true, "volumeattachments": true, "persistentvolumes": true}

// watchAPI counts successful writes to the watched resources (a reactor in
// front of the tracker) and the events an informer of our own receives.
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
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(w.ctx.Done())
	for _, ok := range f.WaitForCacheSync(w.ctx.Done()) {
		if !ok {
			return errors.New("engine: informers did not sync")
		}
	}
	w.apiSeen.Add(-int64(w.opts.Nodes)) // the initial list is not a write
	return nil
}

// recorder is the reconciler's event recorder: events go to the trace with
// virtual time (client-go's recorder stamps the wall clock).
type recorder struct{ w *World }

func (r *recorder) Event(obj runtime.Object, typ, reason, msg string) {
	f := map[string]any{"type": typ, "reason": reason, "msg": msg}
	if ref, ok := obj.(*corev1.ObjectReference); ok {
		f["object"] = ref.Kind + "/" + ref.Namespace + "/" + ref.Name
	} else if m, ok := obj.(metav1.Object); ok {
		f["object"] = fmt.Sprintf("%T/%s/%s", obj, m.GetNamespace(), m.GetName())
	}
	r.w.record("k8s.event", f)
}

func (r *recorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	r.Event(obj, typ, reason, fmt.Sprintf(format, args...))
}

func (r *recorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	r.Eventf(obj, typ, reason, format, args...)
}

// tickerSpy tells the World of the reconciler's periodic ticker, so a tick
// is known to cause a run.
type tickerSpy struct {
	*clockView
	w *World
}

func (t tickerSpy) Ticker(d time.Duration) *clock.Ticker {
	t.w.mgrMu.Lock()
	t.w.recTickNext, t.w.recTickEvery = t.Now().Add(d), d
	t.w.mgrMu.Unlock()
	return t.clockView.Ticker(d)
}

func (t tickerSpy) Tick(d time.Duration) <-chan time.Time { return t.Ticker(d).C }

func (w *World) reconcileRuns() float64 {
	mfs, err := w.reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "rds_csi_attachment_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "action" && l.GetValue() == "run" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// expectRun notes that a reconcile run is due (a tick passed, RDS came back).
func (w *World) expectRun() {
	n := w.reconcileRuns() + 1
	w.mgrMu.Lock()
	if n > w.runsWant {
		w.runsWant = n
	}
	w.mgrMu.Unlock()
}

// ---- barrier and time ------------------------------------------------------

type snapshot struct {
	cmds, connects, health, pendingCtx, afterFuncs int64
	apiLag                                         int64
	mgr                                            mgrWait
	connLost                                       bool
	netHeld                                        bool
	runsBehind                                     bool
	gen                                            [3]int64
}

func (s snapshot) idle() bool {
	return s.cmds == 0 && s.connects == 0 && s.health == 0 && s.pendingCtx == 0 && s.afterFuncs == 0 &&
		s.apiLag == 0 && s.mgr == mgrParked && !s.connLost && !s.netHeld && !s.runsBehind
}

func (w *World) snap() snapshot {
	now := w.Clock.Now()
	ns := w.Network.Stats()
	s := snapshot{
		cmds: w.cmds.Load(), connects: w.connects.Load(), health: w.health.Load(),
		pendingCtx: w.vc.pendingCtx.Load(), afterFuncs: w.vc.afterFuncs.Load(),
		apiLag: w.apiWrites.Load() - w.apiSeen.Load(),
		// bytes a toxic releases at or before now are still moving
		netHeld: ns.Parked > 0 && !ns.NextRelease.IsZero() && !ns.NextRelease.After(now),
		gen:     [3]int64{w.trace.generation(), w.vc.armed.Load(), int64(ns.Conns)},
	}
	w.mgrMu.Lock()
	s.mgr = w.mgrWait
	want := w.runsWant
	w.mgrMu.Unlock()
	// Connected but the link to RDS is gone: the manager has yet to notice.
	s.connLost = w.RDS.State() == rds.StateConnected && ns.Conns == 0
	if want > 0 {
		s.runsBehind = w.reconcileRuns() < want
	}
	return s
}

// settle is the quiescence barrier (see doc.go).
func (w *World) settle() error {
	deadline := time.Now().Add(w.opts.SettleTimeout)
	var last snapshot
	stable := 0
	for i := 0; ; i++ {
		s := w.snap()
		if s.idle() && s == last {
			stable++
			if stable >= w.opts.SettleChecks {
				return nil
			}
		} else {
			stable = 0
		}
		last = s
		if time.Now().After(deadline) {
			return fmt.Errorf("engine: not quiescent after %v at t=%v: %+v", w.opts.SettleTimeout, w.Now(), s)
		}
		if i%8 == 7 || !s.idle() {
			time.Sleep(50 * time.Microsecond)
		} else {
			for j := 0; j < 4; j++ {
				goruntime.Gosched()
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// stepTo moves the clock to t after telling the models what will fire.
func (w *World) stepTo(t time.Time) {
	w.mgrMu.Lock()
	if w.mgrWait == mgrParked && !w.mgrTimerAt.IsZero() && !w.mgrTimerAt.After(t) && w.mgrTimerAt.After(w.Clock.Now()) {
		if w.mgrTimerHC {
			w.mgrWait = mgrHealth
		} else {
			w.mgrWait = mgrEvent
		}
	}
	tick := false
	for w.recTickEvery > 0 && !w.recTickNext.After(t) {
		w.recTickNext = w.recTickNext.Add(w.recTickEvery)
		tick = true
	}
	w.mgrMu.Unlock()
	if tick {
		w.expectRun()
	}
	w.steps.Add(1)
	w.vc.set(t)
}

// Advance moves virtual time to `to` (since the start), timer by timer, each
// step only from a quiescent system. Events are flushed at every instant.
func (w *World) Advance(to time.Duration) error {
	target := w.start.Add(to)
	for {
		if err := w.settle(); err != nil {
			return err
		}
		w.trace.Flush()
		now := w.Clock.Now()
		if !now.Before(target) {
			return nil
		}
		next, ok := w.vc.next(now)
		if !ok || next.After(target) {
			next = target
		}
		w.stepTo(next)
	}
}

// Eventually advances virtual time until pred holds, for at most within. The
// check is traced with the virtual time it succeeded at (or failed).
func (w *World) Eventually(name string, within time.Duration, pred func() bool) (time.Duration, error) {
	begin := w.Now()
	deadline := w.Clock.Now().Add(within)
	for {
		if err := w.settle(); err != nil {
			return 0, err
		}
		w.trace.Flush()
		if pred() {
			took := w.Now() - begin
			w.record("expect", map[string]any{"name": name, "ok": true, "after": took.String()})
			return took, w.Advance(w.Now())
		}
		now := w.Clock.Now()
		if !now.Before(deadline) {
			w.record("expect", map[string]any{"name": name, "ok": false, "within": within.String()})
			_ = w.Advance(w.Now())
			return 0, fmt.Errorf("expectation %q not met within %v", name, within)
		}
		next, ok := w.vc.next(now)
		if !ok || next.After(deadline) {
			next = deadline
		}
		w.stepTo(next)
	}
}

// Check records an expectation evaluated now.
func (w *World) Check(name string, ok bool) error {
	w.record("expect", map[string]any{"name": name, "ok": ok})
	if err := w.Advance(w.Now()); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("expectation %q failed at %v", name, w.Now())
	}
	return nil
}

// ---- timeline -------------------------------------------------------------

// Step is one timed action of a programmatic timeline.
type Step struct {
	At   time.Duration
	Name string
	Do   func(w *World) error
}

// ApplyFault starts the catalogued fault name (chaos.Lookup) and traces it.
func (w *World) ApplyFault(name string, params map[string]string) error {
	f, err := chaos.Lookup(name, params)
	if err != nil {
		return err
	}
	undo, err := f.Apply(w.ctx, chaos.Targets{RDS: w.Emulator, Network: w.Network, Kube: w.Kube,
		Clock: w.vc.view(nil), Seed: w.opts.Seed})
	fields := map[string]any{"fault": name}
	for _, k := range sortedKeys(params) {
		fields["param."+k] = params[k]
	}
	if err != nil {
		fields["err"] = err.Error()
		w.record("fault.apply-failed", fields)
		return err
	}
	w.faults[name] = undo
	w.record("fault.applied", fields)
	return nil
}

// EndFault undoes the fault started under name.
func (w *World) EndFault(name string) error {
	undo, ok := w.faults[name]
	if !ok {
		return fmt.Errorf("engine: fault %q not active", name)
	}
	delete(w.faults, name)
	var err error
	if undo != nil {
		err = undo(w.ctx)
	}
	f := map[string]any{"fault": name}
	if err != nil {
		f["err"] = err.Error()
	}
	w.record("fault.ended", f)
	return err
}

// Fault is a Step applying a catalogued fault; End one ending it.
func Fault(at time.Duration, name string, params map[string]string) Step {
	return Step{At: at, Name: "fault " + name, Do: func(w *World) error { return w.ApplyFault(name, params) }}
}

// End is a Step ending the fault started under name.
func End(at time.Duration, name string) Step {
	return Step{At: at, Name: "end " + name, Do: func(w *World) error { return w.EndFault(name) }}
}

// Run plays steps in time order (stable for equal times).
func (w *World) Run(steps []Step) error {
	steps = append([]Step(nil), steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	for _, s := range steps {
		if err := w.Advance(s.At); err != nil {
			return err
		}
		if err := s.Do(w); err != nil {
			return fmt.Errorf("step %q at %v: %w", s.Name, s.At, err)
		}
		if err := w.Advance(w.Now()); err != nil {
			return err
		}
	}
	return nil
}
