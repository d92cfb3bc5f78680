package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestVClockFiresInOrderAtTheirInstants(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	var fired []string
	a := c.Timer(2 * time.Second)
	b := c.Timer(time.Second)
	done := make(chan struct{})
	c.AfterFunc(3*time.Second, func() { fired = append(fired, "func@"+c.Now().Sub(t0).String()); close(done) })
	if at, ok := v.next(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("next = %v %v, want 1s", at, ok)
	}
	v.set(t0.Add(10 * time.Second))
	got := []time.Time{<-b.C, <-a.C}
	if !got[0].Equal(t0.Add(time.Second)) || !got[1].Equal(t0.Add(2*time.Second)) {
		t.Fatalf("timers fired at %v, want each at its own instant", got)
	}
	<-done
	if len(fired) != 1 || fired[0] != "func@10s" {
		// The callback runs after set returns, when now is 10s; what matters
		// is that it ran exactly once.
		t.Fatalf("AfterFunc: %v", fired)
	}
	if !c.Now().Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("now = %v", c.Now())
	}
}

func TestVClockStoppedTimersNeverFireAndLeaveNoDeadline(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tm := c.Timer(time.Second)
	called := false
	f := c.AfterFunc(time.Second, func() { called = true })
	if !tm.Stop() || !f.Stop() {
		t.Fatal("Stop of an armed timer must report true")
	}
	if at, ok := v.next(); ok {
		t.Fatalf("a stopped timer left a deadline at %v", at)
	}
	v.set(t0.Add(time.Minute))
	select {
	case <-tm.C:
		t.Fatal("a stopped timer fired")
	default:
	}
	if called {
		t.Fatal("a stopped AfterFunc ran")
	}
	// After firing, Stop reports false, as for a real timer.
	tm2 := c.Timer(time.Second)
	v.set(t0.Add(time.Minute + time.Second))
	if tm2.Stop() {
		t.Fatal("Stop after the timer fired must report false")
	}
}

func TestVClockTickerAndClosedView(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tk := c.Ticker(10 * time.Second)
	v.set(t0.Add(10 * time.Second))
	if got := <-tk.C; !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	v.set(t0.Add(35 * time.Second)) // 20s and 30s: the channel holds one, like a real ticker
	if got := <-tk.C; !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	c.close() // the component died: its ticker goes silent
	if at, ok := v.next(); ok {
		t.Fatalf("a closed view left a deadline at %v", at)
	}
	v.set(t0.Add(time.Hour))
	select {
	case <-tk.C:
		t.Fatal("a closed view's ticker ticked")
	default:
	}
}

func TestVClockContextDeadline(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	ctx, cancel := c.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	v.set(t0.Add(4 * time.Second))
	if ctx.Err() != nil {
		t.Fatal("expired early")
	}
	v.set(t0.Add(5 * time.Second))
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded at once, without another goroutine", ctx.Err())
	}
	// A context cancelled early leaves no deadline behind.
	ctx2, cancel2 := c.WithTimeout(context.Background(), time.Minute)
	cancel2()
	if !errors.Is(ctx2.Err(), context.Canceled) {
		t.Fatal(ctx2.Err())
	}
	if at, ok := v.next(); ok {
		t.Fatalf("a cancelled context left a deadline at %v", at)
	}
	// A parent's cancellation reaches the child.
	parent, cancelParent := context.WithCancel(context.Background())
	child, cancelChild := c.WithTimeout(parent, time.Minute)
	defer cancelChild()
	cancelParent()
	<-child.Done()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatal(child.Err())
	}
}
