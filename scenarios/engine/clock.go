package engine

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// vclock wraps the one *clock.Mock of a World. Every component gets a view of
// it (clockView), so the engine learns every deadline that is armed — which
// the archived Mock does not expose — and can jump to the next one.
//
// What it cannot see: Stop and Reset on the *clock.Timer / *clock.Ticker it
// hands out (they are methods on the library's structs). A stopped timer
// therefore stays in the deadline set as a "phantom" until its time passes:
// the engine then jumps to an instant where nothing fires, which costs one idle
// step and changes nothing observable. Contexts with deadlines are implemented
// here instead of by the Mock, so their cancellation is seen and they leave no
// phantom.
type vclock struct {
	m *clock.Mock

	mu        sync.Mutex
	nextID    uint64
	deadlines map[uint64]time.Time // timers, AfterFuncs, context deadlines
	tickers   []*tickRec
	ctxs      map[uint64]*deadlineCtx

	armed      atomic.Int64 // generation: deadlines ever armed
	pendingCtx atomic.Int64 // context deadlines passed whose cancel has not run yet
	afterFuncs atomic.Int64 // AfterFunc callbacks running
}

type tickRec struct {
	next   time.Time
	period time.Duration
}

func newVClock(m *clock.Mock) *vclock {
	return &vclock{m: m, deadlines: map[uint64]time.Time{}, ctxs: map[uint64]*deadlineCtx{}}
}

func (v *vclock) track(at time.Time) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.nextID++
	v.deadlines[v.nextID] = at
	v.armed.Add(1)
	return v.nextID
}

func (v *vclock) forget(id uint64) {
	v.mu.Lock()
	delete(v.deadlines, id)
	v.mu.Unlock()
}

// next returns the earliest armed deadline strictly after now.
func (v *vclock) next(now time.Time) (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var best time.Time
	found := false
	for _, d := range v.deadlines {
		if d.After(now) && (!found || d.Before(best)) {
			best, found = d, true
		}
	}
	for _, t := range v.tickers {
		for !t.next.After(now) {
			t.next = t.next.Add(t.period)
		}
		if !found || t.next.Before(best) {
			best, found = t.next, true
		}
	}
	return best, found
}

// set moves the mock to t, firing every timer due by then. Before it does,
// the context deadlines that will expire are counted as pending, so the
// barrier waits for their cancellation to have happened.
func (v *vclock) set(t time.Time) {
	v.mu.Lock()
	for id, d := range v.deadlines {
		if !d.After(t) {
			delete(v.deadlines, id)
			if c, ok := v.ctxs[id]; ok && c.expect() {
				v.pendingCtx.Add(1)
			}
		}
	}
	v.mu.Unlock()
	v.m.Set(t)
}

// view returns a clock.Clock on v. onTimer, if set, is told of every Timer
// the holder of the view arms (the RDS manager's model uses it).
func (v *vclock) view(onTimer func(d time.Duration, at time.Time)) clock.Clock {
	return &clockView{v: v, onTimer: onTimer}
}

type clockView struct {
	v       *vclock
	onTimer func(time.Duration, time.Time)
}

var _ clock.Clock = (*clockView)(nil)

func (c *clockView) Now() time.Time                  { return c.v.m.Now() }
func (c *clockView) Since(t time.Time) time.Duration { return c.v.m.Since(t) }
func (c *clockView) Until(t time.Time) time.Duration { return c.v.m.Until(t) }
func (c *clockView) After(d time.Duration) <-chan time.Time {
	return c.Timer(d).C
}
func (c *clockView) Sleep(d time.Duration)                 { <-c.After(d) }
func (c *clockView) Tick(d time.Duration) <-chan time.Time { return c.Ticker(d).C }

func (c *clockView) Timer(d time.Duration) *clock.Timer {
	at := c.v.m.Now().Add(d)
	c.v.track(at)
	if c.onTimer != nil {
		c.onTimer(d, at)
	}
	return c.v.m.Timer(d)
}

func (c *clockView) AfterFunc(d time.Duration, f func()) *clock.Timer {
	c.v.track(c.v.m.Now().Add(d))
	return c.v.m.AfterFunc(d, func() {
		c.v.afterFuncs.Add(1)
		defer c.v.afterFuncs.Add(-1)
		f()
	})
}

func (c *clockView) Ticker(d time.Duration) *clock.Ticker {
	c.v.mu.Lock()
	c.v.tickers = append(c.v.tickers, &tickRec{next: c.v.m.Now().Add(d), period: d})
	c.v.armed.Add(1)
	c.v.mu.Unlock()
	return c.v.m.Ticker(d)
}

func (c *clockView) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return c.WithDeadline(parent, c.v.m.Now().Add(d))
}

// WithDeadline is the Mock's, re-done so that the engine sees cancellation
// (no phantom deadline) and knows when an expiry's cancel has really run.
func (c *clockView) WithDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if cur, ok := parent.Deadline(); ok && cur.Before(deadline) {
		return context.WithCancel(parent)
	}
	ctx := &deadlineCtx{parent: parent, deadline: deadline, done: make(chan struct{}), v: c.v}
	dur := c.v.m.Until(deadline)
	if dur <= 0 {
		ctx.cancel(context.DeadlineExceeded)
		return ctx, func() {}
	}
	c.v.mu.Lock()
	c.v.nextID++
	ctx.id = c.v.nextID
	c.v.deadlines[ctx.id] = deadline
	c.v.ctxs[ctx.id] = ctx
	c.v.armed.Add(1)
	c.v.mu.Unlock()
	ctx.mu.Lock()
	ctx.timer = c.v.m.AfterFunc(dur, func() { ctx.cancel(context.DeadlineExceeded) })
	ctx.mu.Unlock()
	ctx.stopParent = context.AfterFunc(parent, func() { ctx.cancel(parent.Err()) })
	return ctx, func() { ctx.cancel(context.Canceled) }
}

type deadlineCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}
	v        *vclock
	id       uint64

	mu         sync.Mutex
	err        error
	timer      *clock.Timer
	stopParent func() bool
	expected   bool // counted in pendingCtx
}

// expect marks the context as due; false if it is already done.
func (c *deadlineCtx) expect() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.expected = true
	return true
}

func (c *deadlineCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	t, stop, expected := c.timer, c.stopParent, c.expected
	c.timer, c.expected = nil, false
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if stop != nil {
		stop()
	}
	if c.id != 0 {
		c.v.mu.Lock()
		delete(c.v.deadlines, c.id)
		delete(c.v.ctxs, c.id)
		c.v.mu.Unlock()
	}
	if expected {
		c.v.pendingCtx.Add(-1)
	}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *deadlineCtx) Done() <-chan struct{}       { return c.done }
func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
func (c *deadlineCtx) Value(k any) any { return c.parent.Value(k) }

// sortedKeys is a helper for deterministic iteration.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
