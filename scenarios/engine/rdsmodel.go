package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// This file is the engine's side of the controller's RDS connection: the
// transport and connector it hands the control plane, which trace every
// command, connection and health check with its result, and the hook that
// traces the manager's state events. None of it takes part in deciding
// when the World is quiescent: the runtime does (see doc.go).

// transport is the driver's RDS connection: the Manager, with every command
// traced with its result.
type transport struct {
	c    *controller
	next driver.RDSConnection
}

func (t *transport) State() rds.State { return t.next.State() }

func (t *transport) Run(ctx context.Context, cmd string) (string, error) {
	out, err := t.next.Run(ctx, cmd)
	sum := sha256.Sum256([]byte(out))
	t.c.w.record(trace.KindRDSCommand, map[string]any{trace.FieldCmd: cmd, trace.FieldErr: errKind(err), trace.FieldOut: hex.EncodeToString(sum[:6])})
	return out, err
}

type connector struct {
	c   *controller
	ssh rds.Connector
}

func (cn *connector) Connect(ctx context.Context) (rds.Conn, error) {
	conn, err := cn.ssh.Connect(ctx)
	cn.c.w.record(trace.KindRDSConnect, map[string]any{trace.FieldErr: errKind(err)})
	if err != nil {
		return nil, err
	}
	return &tracedConn{c: cn.c, Conn: conn}, nil
}

// Probe is the manager's reachability probe through the same network.
func (cn *connector) Probe(ctx context.Context) error { return cn.ssh.(rds.Prober).Probe(ctx) }

type tracedConn struct {
	rds.Conn
	c *controller
}

func (tc *tracedConn) HealthCheck(ctx context.Context) error {
	if tc.c.w.opts.Bugs.HealthCheckWithoutDeadline {
		ctx = context.WithoutCancel(ctx)
	}
	err := tc.Conn.HealthCheck(ctx)
	tc.c.w.record(trace.KindRDSHealth, map[string]any{trace.FieldErr: errKind(err)})
	return err
}

// onRDSEvent is the control plane's RDS hook: it traces the event and lets
// the control plane deliver it. A crashed controller's late events are not
// traced: its process is gone.
func (c *controller) onRDSEvent(ev rds.Event, deliver func()) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return
	}
	f := map[string]any{trace.FieldState: ev.State.String(), trace.FieldPrevious: ev.Previous.String(), trace.FieldFailures: ev.Failures}
	if ev.RetryIn > 0 {
		f[trace.FieldRetryIn] = ev.RetryIn.String()
		f[trace.FieldRetryInNs] = int64(ev.RetryIn)
	}
	if ev.Err != nil {
		f[trace.FieldErr] = errKind(ev.Err)
	}
	c.w.record(trace.KindRDSState, f)
	deliver()
}
