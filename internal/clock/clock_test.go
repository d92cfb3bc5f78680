package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

var (
	_ clock.Clock = clock.New()
	_ clock.Clock = clock.FromLibrary(libclock.NewMock())
)

func TestTimerStopAndReset(t *testing.T) {
	m := libclock.NewMock()
	c := clock.FromLibrary(m)
	tm := c.Timer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer must report true")
	}
	m.Add(2 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer must report false")
	}
	m.Add(time.Second)
	if got := <-tm.C(); !got.Equal(m.Now()) {
		t.Fatalf("fired at %v, want %v", got, m.Now())
	}
	if tm.Stop() {
		t.Fatal("Stop after firing must report false")
	}
	tm2 := c.Timer(time.Second)
	if !tm2.Reset(5 * time.Second) {
		t.Fatal("Reset of an armed timer must report true")
	}
	m.Add(time.Second)
	select {
	case <-tm2.C():
		t.Fatal("fired at its old deadline")
	default:
	}
	m.Add(4 * time.Second)
	<-tm2.C()
}

func TestAfterFunc(t *testing.T) {
	m := libclock.NewMock()
	c := clock.FromLibrary(m)
	ran := make(chan struct{})
	f := c.AfterFunc(time.Second, func() { close(ran) })
	if f.C() != nil {
		t.Fatal("an AfterFunc timer has no channel")
	}
	m.Add(time.Second)
	<-ran
	if f.Stop() {
		t.Fatal("Stop after the function ran must report false")
	}
	stopped := c.AfterFunc(time.Second, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of an armed AfterFunc must report true")
	}
	m.Add(time.Minute)
}

func TestTicker(t *testing.T) {
	m := libclock.NewMock()
	c := clock.FromLibrary(m)
	start := m.Now()
	tk := c.Ticker(10 * time.Second)
	m.Add(10 * time.Second)
	if got := <-tk.C(); !got.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	tk.Reset(time.Second)
	m.Add(time.Second)
	if got := <-tk.C(); !got.Equal(start.Add(11 * time.Second)) {
		t.Fatalf("tick at %v after Reset", got)
	}
	tk.Stop()
	m.Add(time.Minute)
	select {
	case <-tk.C():
		t.Fatal("a stopped ticker ticked")
	default:
	}
}

func TestWithTimeout(t *testing.T) {
	m := libclock.NewMock()
	c := clock.FromLibrary(m)
	ctx, cancel := c.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(m.Now().Add(time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	m.Add(time.Second)
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal(ctx.Err())
	}
	ctx2, cancel2 := c.WithDeadline(context.Background(), m.Now().Add(time.Hour))
	cancel2()
	if !errors.Is(ctx2.Err(), context.Canceled) {
		t.Fatal(ctx2.Err())
	}
}

func TestRealClock(t *testing.T) {
	c := clock.New()
	tm := c.Timer(time.Hour)
	if !tm.Stop() {
		t.Fatal("Stop of an armed real timer must report true")
	}
	if tm.Reset(time.Millisecond) {
		t.Fatal("Reset of a stopped real timer must report false")
	}
	<-tm.C()
	ran := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(ran) })
	<-ran
	tk := c.Ticker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	ctx, cancel := c.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if c.Since(c.Now()) > time.Minute || c.Until(c.Now().Add(time.Hour)) <= 0 {
		t.Fatal("Since/Until")
	}
}
