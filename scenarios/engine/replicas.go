package engine

import (
	"fmt"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// replica is one controller Pod. Only the Lease holder runs a controller
// (as the binary does: standbys wait for the Lease before opening the CSI
// socket), so the World runs at most one controller at a time and models
// the Lease's timing: a leader that dies without releasing it blocks every
// successor for LeaseDuration.
type replica struct {
	name     string
	up       bool // the process runs (as leader or standby)
	restarts int
}

// elect makes the first live replica (in name order) the leader once the
// Lease is free, unless a controller already runs.
func (w *World) elect() error {
	if w.ctrl != nil {
		return nil
	}
	for _, r := range w.replicas {
		if r.up {
			return w.startController(r)
		}
	}
	return nil
}

// CrashController kills the leader's process. Another live replica takes
// over once the Lease it never released has expired.
func (w *World) CrashController() error {
	if w.ctrl == nil {
		return fmt.Errorf("engine: no controller is running")
	}
	c := w.ctrl
	c.stop()
	w.ctrl = nil
	c.replica.up = false
	w.record(trace.KindController, map[string]any{trace.FieldReplica: c.replica.name, trace.FieldState: "crashed"})
	w.afterLease()
	return nil
}

// RestartController starts every crashed replica again; each comes back as
// a standby, or as the leader when the Lease is free.
func (w *World) RestartController() error {
	restarted := false
	for _, r := range w.replicas {
		if !r.up {
			r.up, restarted = true, true
			r.restarts++
			w.timelineRestarts++
			w.record(trace.KindController, map[string]any{trace.FieldReplica: r.name, trace.FieldState: "started"})
		}
	}
	if !restarted {
		return fmt.Errorf("engine: no crashed controller to restart")
	}
	if w.ctrl == nil && !w.tasks.pending("lease") {
		return w.elect()
	}
	return nil
}

// LoseLeadership makes the leader lose its Lease: the binary exits at once
// (and is restarted as a standby), and a successor acquires the Lease when
// it expires.
func (w *World) LoseLeadership() error {
	if w.ctrl == nil {
		return fmt.Errorf("engine: no leader")
	}
	c := w.ctrl
	c.stop()
	w.ctrl = nil
	c.replica.restarts++
	w.timelineRestarts++
	w.record(trace.KindController, map[string]any{trace.FieldReplica: c.replica.name, trace.FieldState: "standby"})
	// The lost leader goes to the back of the queue.
	for i, r := range w.replicas {
		if r == c.replica {
			w.replicas = append(append(w.replicas[:i:i], w.replicas[i+1:]...), r)
			break
		}
	}
	w.afterLease()
	return nil
}

func (w *World) afterLease() {
	w.tasks.add(w.Clock.Now().Add(w.opts.LeaseDuration), "lease", func() error { return w.elect() })
}
