package engine

import (
	"fmt"

	"github.com/rds-csi/rds-csi/internal/bubble"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// settle is the quiescence barrier: it returns once every goroutine of the
// World is durably blocked, i.e. waits for something only the World can
// release (the clock, a fault's end, an RPC the engine has yet to make).
// The Go runtime answers that question itself (synctest.Wait, see doc.go).
// What the release traced is then written in canonical order (Trace.Flush):
// one release can wake two goroutines at once (a crash ends every session).
// Then the watch events the release wrote go out one at a time, each
// followed by another standstill (watchGate).
func (w *World) settle() {
	for {
		bubble.Wait()
		w.trace.Flush()
		if !w.watches.releaseOne(w.order) {
			return
		}
	}
}

// quiesce settles the system and does the engine's own work for the current
// instant until nothing more happens at it: due tasks, the Kubernetes loop,
// the invariants. An idle instant (idle.go) skips that work: it would find
// nothing to do.
func (w *World) quiesce() error {
	w.settle()
	if w.idleInstant() {
		w.idleN++
		w.drawLikePass()
		w.trace.Flush()
		return nil
	}
	for round := 0; ; round++ {
		if round > 10000 {
			w.trace.Flush()
			ev := w.trace.Events()
			return fmt.Errorf("engine: no fixed point at t=%v; last events: %v", w.Now(), ev[max(0, len(ev)-6):])
		}
		if round > 0 { // round 0 starts from the standstill the idle check settled to
			w.settle()
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
			w.settle() // what the task set going stops before the next task

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
	w.markIdle()
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
