package loop

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLoopNum(t *testing.T) {
	for in, want := range map[string]int{"loop0": 0, "loop12": 12, "loop007": 7} {
		if got, ok := loopNum(in); !ok || got != want {
			t.Errorf("loopNum(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"loop", "loop-control", "loop1p2", "vda", "zram0", "loopx"} {
		if _, ok := loopNum(in); ok {
			t.Errorf("loopNum(%q) accepted", in)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	if d := retryDelay(1); d != 0 {
		t.Errorf("first retry waits %v, want 0", d)
	}
	prev := time.Duration(0)
	for a := 2; a < 100; a++ {
		d := retryDelay(a)
		if d < prev || d > maxRetryDelay || d <= 0 {
			t.Fatalf("retryDelay(%d) = %v after %v", a, d, prev)
		}
		prev = d
	}
	if prev != maxRetryDelay {
		t.Fatalf("delays top out at %v, want %v", prev, maxRetryDelay)
	}
}

func TestKeyedLock(t *testing.T) {
	var k keyedLock
	unlockA, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is independent.
	unlockB, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	// The same key waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held key: %v", err)
	}
	got := make(chan struct{})
	go func() {
		u, err := k.lock(context.Background(), "a")
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("lock of a held key did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-got
	if n := k.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
