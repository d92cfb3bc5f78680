package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/leader"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
)

// Seams are what the environment provides: production passes the real
// clock, a client-go clientset, the SSH connector and a Lease elector; the
// scenario runner passes its mock clock, a fake clientset and in-memory
// connections.
type Seams struct {
	// Clock drives every wait of every part; nil means the real clock.
	Clock clock.Clock
	// Kube is the API server; nil means standalone (no reconciler).
	Kube kubernetes.Interface
	// Connector dials RDS. Required.
	Connector rds.Connector
	// Rand drives the RDS manager's backoff jitter; nil means a
	// non-deterministic source.
	Rand rds.Rand
	// Registerer receives every part's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Recorder receives the reconciler's Kubernetes events; nil builds one
	// that writes through Kube.
	Recorder record.EventRecorder
	// Elector decides when this replica leads; nil means always (one
	// replica, or standalone).
	Elector leader.Elector
}

// Options are each part's settings. The fields of a part's options that are
// seams or wiring (clocks, clients, registerers, the other parts, event
// sinks) belong to the assembly and must be left zero: New fills them in and
// refuses options that set them, so no caller can wire a part differently.
type Options struct {
	// Driver configures the CSI controller service. Its GracePeriod is also
	// the attachment rules' default grace.
	Driver driver.Options
	// RDS configures the connection manager (timeouts, backoff, health).
	RDS rds.ManagerConfig
	// MigrationWindow is how long two nodes may hold a live-migrating
	// volume (attachment.DefaultMigrationWindow when zero).
	MigrationWindow time.Duration
	// Reconciler configures the reconciler (interval, not-ready timeout,
	// identity); unused when standalone.
	Reconciler reconciler.Options
	// StandaloneNodes, without Kube, are the node IDs that exist besides
	// Driver.NodeID.
	StandaloneNodes []string
	// Hooks let the scenario runner watch the wiring; production sets none.
	Hooks Hooks
}

// Hooks observe the wiring without changing it. Each is optional.
type Hooks struct {
	// RDSEvent, when set, receives each RDS connection event and must call
	// deliver exactly once, synchronously: deliver hands the event to the
	// reconciler as the control plane always does.
	RDSEvent func(ev rds.Event, deliver func())
	// AttachmentEvent sees each attachment event before the reconciler does.
	AttachmentEvent func(attachment.Event)
	// WrapRDS wraps the connection the CSI service runs its commands on.
	WrapRDS func(driver.RDSConnection) driver.RDSConnection
	// Started runs on becoming leader, once the attachment state is rebuilt
	// (or its rebuild has failed), before the reconciler's loop starts.
	Started func()
	// WrapFencer wraps the reconciler's Fencer (with RestrictHosts): the
	// scenario runner plants a fencer that revokes nothing, to prove that
	// its invariants notice.
	WrapFencer func(reconciler.Fencer) reconciler.Fencer
}

// ControlPlane is one controller replica's running parts.
type ControlPlane struct {
	// Driver is the CSI identity and controller service.
	Driver *driver.Driver
	// RDS is the connection manager every RouterOS command goes through.
	RDS *rds.Manager
	// Attachments are the attachment rules: who holds which volume.
	Attachments *attachment.Manager
	// Reconciler keeps Attachments in step with the cluster; nil when
	// standalone.
	Reconciler *reconciler.Reconciler

	elector leader.Elector
	hooks   Hooks
}

// ErrLeadershipLost is Run's answer when this replica stopped leading while
// its context was still live. The process should exit: a restarted one
// campaigns afresh as a standby with nothing stale in memory.
var ErrLeadershipLost = errors.New("leadership lost")

// New builds the control plane. Nothing runs until Start and Run.
func New(s Seams, o Options) (*ControlPlane, error) {
	if s.Connector == nil {
		return nil, errors.New("controlplane: no RDS connector")
	}
	if err := checkUnwired(o); err != nil {
		return nil, err
	}
	if s.Clock == nil {
		s.Clock = clock.New()
	}
	if s.Elector == nil {
		s.Elector = &leader.Always{}
	}
	p := &ControlPlane{elector: s.Elector, hooks: o.Hooks}

	rc := o.RDS
	rc.Connector, rc.Clock, rc.Rand, rc.Registerer = s.Connector, s.Clock, s.Rand, s.Registerer
	mgr, err := rds.NewManager(rc)
	if err != nil {
		return nil, err
	}
	grace := o.Driver.GracePeriod
	if grace == 0 {
		grace = driver.DefaultGracePeriod
	}
	// The reconciler does not exist yet when the attachment rules are
	// built; the sink reads p.Reconciler at delivery time, and no event is
	// delivered before New returns (nothing has published yet).
	p.Attachments = attachment.New(attachment.Options{Clock: s.Clock, GracePeriod: grace,
		MigrationWindow: o.MigrationWindow, Events: attachment.EventFunc(p.attachmentEvent)})

	var nodes driver.NodeLookup = standaloneNodes(o)
	var stateReady func() bool // standalone: always ready
	if s.Kube != nil {
		ro := o.Reconciler
		ro.DriverName, ro.Client, ro.Attachments = o.Driver.Name, s.Kube, p.Attachments
		if ro.DriverName == "" {
			ro.DriverName = driver.DefaultName
		}
		ro.Clock, ro.Recorder, ro.Registerer = s.Clock, s.Recorder, s.Registerer
		if o.Driver.RestrictHosts {
			ro.Fencer = lateFencer{p}
			if o.Hooks.WrapFencer != nil {
				ro.Fencer = o.Hooks.WrapFencer(ro.Fencer)
			}
		}
		if p.Reconciler, err = reconciler.New(ro); err != nil {
			return nil, err
		}
		nodes, stateReady = p.Reconciler, p.Reconciler.Ready
	}

	var conn driver.RDSConnection = mgr
	if o.Hooks.WrapRDS != nil {
		conn = o.Hooks.WrapRDS(mgr)
	}
	do := o.Driver
	do.GracePeriod, do.Clock, do.RDS, do.Nodes, do.StateReady = grace, s.Clock, conn, nodes, stateReady
	do.Attachments, do.Registerer = p.Attachments, s.Registerer
	if do.RestrictHosts && p.Reconciler != nil {
		do.OnRevocationPending = func() { p.Reconciler.Trigger("revocation-pending") }
	}
	if p.Driver, err = driver.New(do); err != nil {
		return nil, err
	}
	p.RDS = mgr
	// Subscribed before Start, so that the first connection reaches the
	// reconciler too.
	mgr.Subscribe(p.rdsEvent)
	return p, nil
}

// lateFencer is the driver as the reconciler's Fencer: the reconciler is
// built before the driver, and nothing fences before New returns.
type lateFencer struct{ p *ControlPlane }

func (f lateFencer) Fence(ctx context.Context, volume string, nodes []string) error {
	return f.p.Driver.Fence(ctx, volume, nodes)
}
func (f lateFencer) ApplyPending(ctx context.Context) error { return f.p.Driver.ApplyPending(ctx) }
func (f lateFencer) MarkChanged(volume string)              { f.p.Driver.MarkChanged(volume) }

// checkUnwired refuses options that set what the assembly wires.
func checkUnwired(o Options) error {
	d, r, c := o.Driver, o.RDS, o.Reconciler
	switch {
	case d.Clock != nil || d.RDS != nil || d.Nodes != nil || d.StateReady != nil || d.Attachments != nil || d.Registerer != nil ||
		d.OnRevocationPending != nil:
		return errors.New("controlplane: Options.Driver sets a seam the assembly wires (Clock, RDS, Nodes, StateReady, Attachments, Registerer, OnRevocationPending)")
	case r.Connector != nil || r.Clock != nil || r.Rand != nil || r.Registerer != nil:
		return errors.New("controlplane: Options.RDS sets a seam the assembly wires (Connector, Clock, Rand, Registerer)")
	case c.DriverName != "" || c.Client != nil || c.Attachments != nil || c.Clock != nil || c.Recorder != nil || c.Registerer != nil ||
		c.Fencer != nil:
		return errors.New("controlplane: Options.Reconciler sets a seam the assembly wires (DriverName, Client, Attachments, Clock, Recorder, Registerer, Fencer)")
	}
	return nil
}

// standaloneNodes is the fixed node list of a control plane without Kubernetes.
func standaloneNodes(o Options) driver.StaticNodes {
	nodes := driver.StaticNodes{}
	if o.Driver.NodeID != "" {
		nodes[o.Driver.NodeID] = true
	}
	for _, n := range o.StandaloneNodes {
		nodes[n] = true
	}
	return nodes
}

// attachmentEvent is the attachment rules' event sink.
func (p *ControlPlane) attachmentEvent(e attachment.Event) {
	if p.hooks.AttachmentEvent != nil {
		p.hooks.AttachmentEvent(e)
	}
	if p.Reconciler != nil {
		p.Reconciler.Event(e)
		return
	}
	driver.LogAttachmentEvent(e)
}

// rdsEvent hands RDS connection transitions to the reconciler: events on the
// controller's Pod and, on a reconnect, an immediate reconcile.
func (p *ControlPlane) rdsEvent(ev rds.Event) {
	deliver := func() {
		if p.Reconciler == nil {
			return
		}
		switch {
		case ev.Connected():
			p.Reconciler.RDSStateChanged(true, "connection to RDS established")
		case ev.Lost():
			// The event already says the connection was lost; the reason
			// is what the manager saw.
			reason := "connection closed"
			if ev.Err != nil {
				reason = ev.Err.Error()
			}
			p.Reconciler.RDSStateChanged(false, reason)
		}
	}
	if p.hooks.RDSEvent != nil {
		p.hooks.RDSEvent(ev, deliver)
		return
	}
	deliver()
}

// Start launches the RDS connection loop and waits for the first connection
// for at most the manager's InitialConnectTimeout or until ctx ends. An error
// means only that RDS is not reachable yet: the manager keeps trying in the
// background, Probe and Ready report not-ready, and RDS calls fail fast.
func (p *ControlPlane) Start(ctx context.Context) error {
	return p.RDS.Start(ctx)
}

// Run campaigns for leadership until ctx ends. On becoming leader it
// rebuilds the attachment state from the cluster (a failed rebuild leaves
// the controller degraded: publishes are refused and the reconciler keeps
// retrying), starts the reconciler, and calls serve with a context that ends
// with the leadership. serve must return when its context ends.
//
// Run returns serve's error, ErrLeadershipLost when leadership ended while
// ctx is live (the process must not lead again with what it holds in
// memory), an error when the elector gave up without ever leading, or nil
// once ctx ends.
func (p *ControlPlane) Run(ctx context.Context, serve func(ctx context.Context) error) error {
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	// An elector may call lead on a goroutine of its own and return before
	// that goroutine ends (client-go's does): Run waits for it, and a lead
	// that starts after Run has decided to return does nothing.
	var (
		mu       sync.Mutex
		finished bool
		led      chan struct{} // closed when the one lead has returned
		serveErr error
	)
	p.elector.Run(ectx, func(lctx context.Context) {
		mu.Lock()
		if finished || led != nil { // lead at most once per process
			mu.Unlock()
			return
		}
		done := make(chan struct{})
		led = done
		mu.Unlock()
		defer close(done)
		defer stop() // stop campaigning: leadership is not taken twice
		p.lead(lctx)
		serveErr = serve(lctx)
	})
	mu.Lock()
	finished = true
	done := led
	mu.Unlock()
	if done != nil {
		<-done
	}
	switch {
	case serveErr != nil:
		return serveErr
	case ctx.Err() != nil:
		return nil
	case done == nil:
		return errors.New("controlplane: leader election ended without leading")
	}
	return ErrLeadershipLost
}

// lead is what a new leader does before it serves.
func (p *ControlPlane) lead(ctx context.Context) {
	if p.Reconciler != nil {
		if err := p.Reconciler.Start(ctx); err != nil {
			klog.ErrorS(err, "Attachment state not rebuilt; serving in degraded mode and retrying")
		}
	}
	if p.hooks.Started != nil {
		p.hooks.Started()
	}
	if p.Reconciler != nil {
		go p.Reconciler.Run(ctx)
	}
}

// Ready reports whether the controller can serve RDS calls: /readyz.
func (p *ControlPlane) Ready() error {
	if s := p.RDS.State(); s != rds.StateConnected {
		return fmt.Errorf("RDS %s", s)
	}
	return nil
}

// Close ends the RDS connection and its loop. It is idempotent.
func (p *ControlPlane) Close() error {
	return p.RDS.Close()
}
