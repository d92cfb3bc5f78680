package engine

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

type snapshot struct {
	work, parked, rpcs int64
	connects, afters   int64
	apiLag             int64
	mgr                mgrWait
	connLost           bool
	netHeld            bool
	runsBehind         bool
	recLag             int64 // watch events the reconciler has yet to handle
	recPending         bool  // a reconcile run is asked for or running
	unreported         bool  // the manager changed state; its event is still being handled
	waking             int64 // calls in flight whose context has ended: their callers are waking up
	woken              bool  // a failed call asked the manager to probe now
	gen                [3]int64
}

// idle: nothing the engine can attribute to a seam is moving. RouterOS
// commands and health checks that the emulator or the network holds for
// the clock (a hang, a latency) are parked, not busy; an RPC is parked when
// it waits in such a command.
func (s snapshot) idle() bool {
	parkedOnly := s.work <= s.parked
	return parkedOnly && (s.rpcs == 0 || s.work > 0) && s.connects == 0 && s.afters == 0 &&
		s.apiLag == 0 && s.mgr == mgrParked && !s.connLost && !s.netHeld && !s.runsBehind &&
		s.recLag <= 0 && !s.recPending && !s.unreported && s.waking == 0 && !s.woken
}

func (w *World) snap() snapshot {
	now := w.Clock.Now()
	ns := w.Network.Stats()
	s := snapshot{
		work: w.cmds.Load() + w.health.Load(), parked: int64(w.Emulator.Faults().Parked()),
		rpcs: w.rpcs.Load(), connects: w.connects.Load(), afters: w.vc.afterFuncs.Load(),
		apiLag: w.apiWrites.Load() - w.apiSeen.Load(),
		// bytes a toxic releases at or before now are still moving
		netHeld: ns.Parked > 0 && !ns.NextRelease.IsZero() && !ns.NextRelease.After(now),
		gen:     [3]int64{w.trace.generation(), w.vc.armed.Load(), int64(ns.Conns)},
		waking:  w.waits.ended(),
	}
	if ns.Parked > 0 || ns.HeldDials > 0 {
		// Work stuck behind network.timeout or a latency toxic waits for the
		// clock or the fault's end.
		s.parked += s.work
		s.connects -= min(s.connects, int64(ns.HeldDials))
	}
	if c := w.ctrl; c != nil {
		c.mu.Lock()
		s.mgr = c.mgrWait
		want := c.runsWant
		reported := c.reported
		c.mu.Unlock()
		// Connected but the link to RDS is gone: the manager has yet to notice.
		// A crashed RDS has no live connection either, whatever the network
		// has yet to notice.
		s.connLost = c.cp.RDS.State() == rds.StateConnected && (ns.Conns == 0 || !w.Emulator.Serving())
		if want > 0 {
			s.runsBehind = c.reconcileRuns() < want
		}
		s.recLag = w.recWrites.Load() - c.recBase - c.recSeen.Load()
		s.recPending = c.cp.Reconciler.Pending()
		s.unreported = c.cp.RDS.State() != reported
		s.woken = c.cp.RDS.HandlingWake()
	}
	return s
}

// waitSet holds the contexts of the RouterOS calls in flight. A call the
// emulator parks (a hang) stays parked on the emulator's side after its
// caller's deadline fires; the caller is then runnable, not parked, until
// it returns, and nothing else counts it.
type waitSet struct {
	mu   sync.Mutex
	next uint64
	ctxs map[uint64]context.Context
}

// enter registers ctx until the returned function is called.
func (s *waitSet) enter(ctx context.Context) (leave func()) {
	s.mu.Lock()
	if s.ctxs == nil {
		s.ctxs = map[uint64]context.Context{}
	}
	id := s.next
	s.next++
	s.ctxs[id] = ctx
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.ctxs, id)
		s.mu.Unlock()
	}
}

// ended counts the registered calls whose context is done.
func (s *waitSet) ended() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, ctx := range s.ctxs {
		if ctx.Err() != nil {
			n++
		}
	}
	return n
}

// settle is the quiescence barrier (see doc.go).
func (w *World) settle() error {
	deadline := time.Now().Add(w.opts.SettleTimeout)
	var last snapshot
	stable, busy := 0, 0
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
		if !s.idle() {
			// Most busy spells are one goroutine's few microseconds (the
			// manager arming its next timer after a probe): yield first, and
			// sleep only when the work takes longer.
			if busy++; busy < 64 {
				goruntime.Gosched()
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		} else {
			busy = 0
			for j := 0; j < 4; j++ {
				goruntime.Gosched()
			}
			// A rare real sleep lets goroutines that wait for a thread (not
			// for a run queue slot) show their work; sleeping more often
			// costs a replay more than its probes do.
			if i%16 == 15 {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
}

// quiesce settles the system and does the engine's own work for the current
// instant until nothing more happens at it: due tasks, the Kubernetes loop,
// the invariants.
func (w *World) quiesce() error {
	for round := 0; ; round++ {
		if round > 10000 {
			w.trace.Flush()
			ev := w.trace.Events()
			return fmt.Errorf("engine: no fixed point at t=%v; last events: %v", w.Now(), ev[max(0, len(ev)-6):])
		}
		if err := w.settle(); err != nil {
			return err
		}
		gen := w.trace.generation() + int64(w.kube.seq)
		now := w.Clock.Now()
		for {
			t, ok := w.tasks.due(now)
			if !ok {
				break
			}
			if err := t.do(); err != nil {
				return fmt.Errorf("engine: %s at %v: %w", t.name, w.Now(), err)
			}
		}
		if err := w.ensureNodePlugins(); err != nil {
			return err
		}
		if err := w.kube.sync(); err != nil {
			return err
		}
		w.observe()
		if w.trace.generation()+int64(w.kube.seq) == gen {
			break
		}
	}
	if w.ctrl != nil {
		w.ctrl.traceMetrics() // only now is every counter final for the instant
	}
	w.inv.check()
	for _, f := range w.onInstant {
		f()
	}
	w.trace.Flush()
	return nil
}

// observe traces the transitions the engine watches from outside: Probe.
func (w *World) observe() {
	ready := w.Probe()
	if !w.probeKnown || ready != w.probeReady {
		w.probeKnown, w.probeReady = true, ready
		w.record(trace.KindProbe, map[string]any{trace.FieldReady: ready})
	}
}
