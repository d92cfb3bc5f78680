package engine

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sort"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/driver/rds"
)

// taskQueue is work the engine itself does at a virtual instant (a Lease
// expiring, the second half of a migration), run on its own goroutine.
type taskQueue struct {
	seq   uint64
	items []task
}

type task struct {
	at   time.Time
	seq  uint64
	name string
	do   func() error
}

func (q *taskQueue) add(at time.Time, name string, do func() error) {
	q.seq++
	q.items = append(q.items, task{at: at, seq: q.seq, name: name, do: do})
	sort.Slice(q.items, func(i, j int) bool {
		if !q.items[i].at.Equal(q.items[j].at) {
			return q.items[i].at.Before(q.items[j].at)
		}
		return q.items[i].seq < q.items[j].seq
	})
}

func (q *taskQueue) pending(name string) bool {
	for _, t := range q.items {
		if t.name == name {
			return true
		}
	}
	return false
}

// due removes and returns the first task due at or before now.
func (q *taskQueue) due(now time.Time) (task, bool) {
	if len(q.items) == 0 || q.items[0].at.After(now) {
		return task{}, false
	}
	t := q.items[0]
	q.items = q.items[1:]
	return t, true
}

func (q *taskQueue) next() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].at, true
}

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
		s.connLost = c.rds.State() == rds.StateConnected && (ns.Conns == 0 || !w.Emulator.Serving())
		if want > 0 {
			s.runsBehind = c.reconcileRuns() < want
		}
		s.recLag = w.recWrites.Load() - c.recBase - c.recSeen.Load()
		s.recPending = c.rec.Pending()
		s.unreported = c.rds.State() != reported
		s.woken = c.rds.HandlingWake()
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

// stepTo moves the clock to t. The entries due fire one at a time, each
// followed by a settle, so two timers of one instant (a reconcile tick and a
// grace deadline) are never handled in an order, or coalesced in a way, that
// depends on scheduling.
func (w *World) stepTo(t time.Time) error {
	w.steps.Add(1)
	for {
		e := w.vc.popDue(t)
		if e == nil {
			break
		}
		fireAt := e.at
		if !w.vc.claim(e) {
			continue
		}
		w.beforeFire(e, fireAt)
		e.fire(fireAt)
		if err := w.settle(); err != nil {
			return err
		}
	}
	w.vc.advance(t)
	return nil
}

// beforeFire tells the models what a firing entry will wake.
func (w *World) beforeFire(e *entry, at time.Time) {
	c := w.ctrl
	if c == nil || e.view != c.view {
		return
	}
	if e.kind == tickerChannel { // the reconciler's: the only ticker on the view
		c.expectRun()
		return
	}
	c.mu.Lock()
	if c.mgrWait == mgrParked && at.Equal(c.mgrTimerAt) && e.kind == timerChannel {
		if c.mgrTimerHC {
			c.mgrWait = mgrHealth
		} else {
			c.mgrWait = mgrProbe // a probe, or the end of the backoff
		}
	}
	c.mu.Unlock()
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

// OnInstant registers f to run once per virtual instant, after the system
// has settled (the scenario runner evaluates its expectations there).
func (w *World) OnInstant(f func()) { w.onInstant = append(w.onInstant, f) }

// Wake makes sure the clock stops at t (since the start), e.g. at the end of
// an expectation's window.
func (w *World) Wake(t time.Duration) {
	w.tasks.add(w.start.Add(t), "wake", func() error { return nil })
}

// observe traces the transitions the engine watches from outside: Probe.
func (w *World) observe() {
	ready := w.Probe()
	if !w.probeKnown || ready != w.probeReady {
		w.probeKnown, w.probeReady = true, ready
		w.record("probe", map[string]any{"ready": ready})
	}
}

// nextInstant is the earliest instant after now at which something is due.
func (w *World) nextInstant() (time.Time, bool) {
	now := w.Clock.Now()
	best, ok := w.vc.next()
	consider := func(t time.Time, found bool) {
		if found && t.After(now) && (!ok || t.Before(best)) {
			best, ok = t, true
		}
	}
	consider(w.tasks.next())
	consider(w.kube.nextDue(now))
	consider(w.fab.pathsDue(now))
	return best, ok
}

// Advance moves virtual time to `to` (since the start), instant by instant,
// each step only from a quiescent system.
func (w *World) Advance(to time.Duration) error {
	target := w.start.Add(to)
	for {
		if err := w.quiesce(); err != nil {
			return err
		}
		now := w.Clock.Now()
		if !now.Before(target) {
			return nil
		}
		next, ok := w.nextInstant()
		if !ok || next.After(target) {
			next = target
		}
		if err := w.stepTo(next); err != nil {
			return err
		}
	}
}

// Until advances virtual time until pred holds, for at most within, and
// returns how long it took.
func (w *World) Until(within time.Duration, pred func() bool) (time.Duration, bool, error) {
	begin := w.Now()
	deadline := w.Clock.Now().Add(within)
	for {
		if err := w.quiesce(); err != nil {
			return 0, false, err
		}
		if pred() {
			return w.Now() - begin, true, nil
		}
		now := w.Clock.Now()
		if !now.Before(deadline) {
			return 0, false, nil
		}
		next, ok := w.nextInstant()
		if !ok || next.After(deadline) {
			next = deadline
		}
		if err := w.stepTo(next); err != nil {
			return 0, false, err
		}
	}
}

// Eventually advances virtual time until pred holds, for at most within. The
// check is traced with the virtual time it succeeded at (or failed).
func (w *World) Eventually(name string, within time.Duration, pred func() bool) (time.Duration, error) {
	took, ok, err := w.Until(within, pred)
	if err != nil {
		return 0, err
	}
	if !ok {
		w.record("expect", map[string]any{"name": name, "ok": false, "within": within.String()})
		w.trace.Flush()
		return 0, fmt.Errorf("expectation %q not met within %v", name, within)
	}
	w.record("expect", map[string]any{"name": name, "ok": true, "after": took.String()})
	w.trace.Flush()
	return took, nil
}

// Always advances virtual time over window and fails at the first instant
// pred does not hold.
func (w *World) Always(name string, window time.Duration, pred func() bool) error {
	var at time.Duration
	_, broke, err := w.Until(window, func() bool {
		if !pred() {
			at = w.Now()
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if broke {
		w.record("expect", map[string]any{"name": name, "ok": false, "msg": "broken at " + at.String()})
		w.trace.Flush()
		return fmt.Errorf("expectation %q broken at %v", name, at)
	}
	w.record("expect", map[string]any{"name": name, "ok": true, "after": window.String()})
	w.trace.Flush()
	return nil
}

// Check records an expectation evaluated now.
func (w *World) Check(name string, ok bool) error {
	w.record("expect", map[string]any{"name": name, "ok": ok})
	w.trace.Flush()
	if !ok {
		return fmt.Errorf("expectation %q failed at %v", name, w.Now())
	}
	return nil
}
