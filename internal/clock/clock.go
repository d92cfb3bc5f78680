package clock

import (
	"context"
	"time"

	libclock "github.com/benbjohnson/clock"
)

// Clock is the only source of time for code the scenario runner drives.
// Its methods mirror the time package (and github.com/benbjohnson/clock).
type Clock interface {
	Now() time.Time
	Since(t time.Time) time.Duration
	Until(t time.Time) time.Duration
	// Timer fires once on its channel after d.
	Timer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after d; the Timer's C is nil.
	AfterFunc(d time.Duration, f func()) Timer
	// Ticker sends on its channel every d, dropping ticks a slow reader misses.
	Ticker(d time.Duration) Ticker
	After(d time.Duration) <-chan time.Time
	Sleep(d time.Duration)
	WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc)
	WithDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc)
}

// Timer is a single event, as time.Timer.
type Timer interface {
	// C delivers the firing time; nil for a timer made by AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing; false if it had already fired or
	// been stopped.
	Stop() bool
	// Reset re-arms the timer to fire after d; it reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

// Ticker delivers ticks at intervals, as time.Ticker.
type Ticker interface {
	C() <-chan time.Time
	// Stop turns the ticker off; no tick is sent after it returns.
	Stop()
	// Reset stops the ticker and restarts it with period d.
	Reset(d time.Duration)
}

// New returns the real clock.
func New() Clock { return FromLibrary(libclock.New()) }

// FromLibrary adapts a github.com/benbjohnson/clock clock, real or Mock.
func FromLibrary(c libclock.Clock) Clock { return libClock{c} }

type libClock struct{ c libclock.Clock }

func (l libClock) Now() time.Time                         { return l.c.Now() }
func (l libClock) Since(t time.Time) time.Duration        { return l.c.Since(t) }
func (l libClock) Until(t time.Time) time.Duration        { return l.c.Until(t) }
func (l libClock) After(d time.Duration) <-chan time.Time { return l.c.After(d) }
func (l libClock) Sleep(d time.Duration)                  { l.c.Sleep(d) }
func (l libClock) Timer(d time.Duration) Timer            { return libTimer{l.c.Timer(d)} }
func (l libClock) Ticker(d time.Duration) Ticker          { return libTicker{l.c.Ticker(d)} }

func (l libClock) AfterFunc(d time.Duration, f func()) Timer {
	return libTimer{l.c.AfterFunc(d, f)}
}

func (l libClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return l.c.WithTimeout(parent, d)
}

func (l libClock) WithDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	return l.c.WithDeadline(parent, deadline)
}

type libTimer struct{ t *libclock.Timer }

func (t libTimer) C() <-chan time.Time        { return t.t.C }
func (t libTimer) Stop() bool                 { return t.t.Stop() }
func (t libTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type libTicker struct{ t *libclock.Ticker }

func (t libTicker) C() <-chan time.Time   { return t.t.C }
func (t libTicker) Stop()                 { t.t.Stop() }
func (t libTicker) Reset(d time.Duration) { t.t.Reset(d) }
