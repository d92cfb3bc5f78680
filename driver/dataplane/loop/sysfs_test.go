package loop

import (
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
