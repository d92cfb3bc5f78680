package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// This file is the engine's side of the controller's RDS connection: the
// transport and connector it hands the control plane, and the model of the
// RDS manager's goroutine (see doc.go) that tells the barrier whether the
// manager is busy or parked.

// mgrWait is what the modelled manager goroutine is doing or waiting for.
type mgrWait int

const (
	mgrParked mgrWait = iota
	mgrEvent          // until its next state event
	mgrTimer          // until it arms its health-check timer
	mgrHealth         // until its health check starts
	mgrProbe          // a backoff wait woke: until it arms its next timer or reports an event
)

func (m mgrWait) String() string {
	return [...]string{"parked", "event", "timer", "health", "probe"}[m]
}

// transport is the driver's RDS connection: the Manager, with every command
// counted while in flight and traced with its result.
type transport struct {
	c    *controller
	next driver.RDSConnection
}

func (t *transport) State() rds.State { return t.next.State() }

func (t *transport) Run(ctx context.Context, cmd string) (string, error) {
	w := t.c.w
	// Registered first so that it is released last, once the command
	// counter no longer says the call is in flight.
	defer w.waits.enter(ctx)()
	w.cmds.Add(1)
	defer w.cmds.Add(-1)
	out, err := t.next.Run(ctx, cmd)
	sum := sha256.Sum256([]byte(out))
	w.record(trace.KindRDSCommand, map[string]any{trace.FieldCmd: cmd, trace.FieldErr: errKind(err), trace.FieldOut: hex.EncodeToString(sum[:6])})
	return out, err
}

type connector struct {
	c   *controller
	ssh rds.Connector
}

func (cn *connector) Connect(ctx context.Context) (rds.Conn, error) {
	c, w := cn.c, cn.c.w
	w.connects.Add(1)
	defer w.connects.Add(-1)
	conn, err := cn.ssh.Connect(ctx)
	w.record(trace.KindRDSConnect, map[string]any{trace.FieldErr: errKind(err)})
	if err != nil {
		return nil, err
	}
	wc := &modelConn{c: c, Conn: conn}
	c.mu.Lock()
	c.mgrConn = wc
	c.mu.Unlock()
	go func() {
		<-conn.Done()
		c.mu.Lock()
		if c.mgrConn == wc && c.mgrWait == mgrParked {
			c.mgrWait = mgrEvent // the manager must notice and report it
		}
		c.mu.Unlock()
	}()
	return wc, nil
}

// Probe is the manager's reachability probe through the same network. While
// it runs the connects counter holds the manager busy; after it, the manager
// either arms its next timer (a failed probe) or starts connecting.
func (cn *connector) Probe(ctx context.Context) error {
	c, w := cn.c, cn.c.w
	w.connects.Add(1)
	defer w.connects.Add(-1)
	err := cn.ssh.(rds.Prober).Probe(ctx)
	c.mu.Lock()
	if err == nil {
		c.mgrWait = mgrEvent
	} else {
		c.mgrWait = mgrProbe
	}
	c.mu.Unlock()
	return err
}

type modelConn struct {
	rds.Conn
	c *controller
}

func (mc *modelConn) HealthCheck(ctx context.Context) error {
	c, w := mc.c, mc.c.w
	w.health.Add(1)
	// While the check runs, the health counter says whether the manager is
	// busy or parked (a hung RDS holds the check for the clock).
	c.mu.Lock()
	c.mgrWait = mgrParked
	c.mu.Unlock()
	leave := w.waits.enter(ctx)
	defer leave() // after the counter and the model say the check is over
	err := mc.Conn.HealthCheck(ctx)
	c.mu.Lock()
	if err == nil {
		c.mgrWait = mgrTimer
	} else {
		c.mgrWait = mgrEvent
	}
	c.mu.Unlock()
	w.record(trace.KindRDSHealth, map[string]any{trace.FieldErr: errKind(err)})
	w.health.Add(-1)
	return err
}

// mgrTimerArmed is the controller's clock view telling of a Timer. Only the
// manager arms plain Timers on it with these durations.
func (c *controller) mgrTimerArmed(d time.Duration, at time.Time) {
	if d == initialConnectTimeout {
		return // Start's wait, not the loop
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mgrTimerAt, c.mgrTimerHC = at, d == c.w.opts.HealthInterval
	if (c.mgrWait == mgrTimer && c.mgrTimerHC) || (c.mgrWait == mgrProbe && !c.mgrTimerHC) {
		c.mgrWait = mgrParked
	}
}

// onRDSEvent is the control plane's RDS hook: it traces the event, notes
// the reconcile a reconnect triggers, lets the control plane deliver it, and
// then updates the model of the manager's goroutine.
func (c *controller) onRDSEvent(ev rds.Event, deliver func()) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return
	}
	w := c.w
	f := map[string]any{trace.FieldState: ev.State.String(), trace.FieldPrevious: ev.Previous.String(), trace.FieldFailures: ev.Failures}
	if ev.RetryIn > 0 {
		f[trace.FieldRetryIn] = ev.RetryIn.String()
		f[trace.FieldRetryInNs] = int64(ev.RetryIn)
	}
	if ev.Err != nil {
		f[trace.FieldErr] = errKind(ev.Err)
	}
	w.record(trace.KindRDSState, f)
	if ev.Connected() || ev.Lost() {
		if ev.Connected() && c.rdsReported && c.cp.Reconciler.Ready() {
			c.expectRun() // a reconnect (not the first report) triggers a run
		}
		c.rdsReported = true
	}
	deliver()
	c.mu.Lock()
	switch ev.State {
	case rds.StateConnecting:
		c.mgrWait = mgrEvent
	case rds.StateConnected:
		c.mgrWait = mgrTimer
		now := c.view.Now()
		if c.mgrTimerHC && c.mgrTimerAt.After(now) && c.mgrTimerAt.Equal(now.Add(w.opts.HealthInterval)) {
			c.mgrWait = mgrParked // the health timer was armed before this event reached us
		}
	case rds.StateDisconnected:
		c.mgrWait = mgrParked // the backoff timer is armed before the event
		c.mgrConn = nil
	}
	c.reported = ev.State
	c.mu.Unlock()
}
