package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeFencer records what the reconciler asks of the storage, and what
// the claims were when it asked.
type fakeFencer struct {
	e       *env
	mu      sync.Mutex
	fail    error
	calls   []string // "fence vol-1 [n1] holders=n1!"
	changed []string
	applied int
}

func (f *fakeFencer) Fence(_ context.Context, volume string, nodes []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("fence %s %v holders=%s", volume, nodes, f.e.holders(volume)))
	return f.fail
}

func (f *fakeFencer) ApplyPending(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	return f.fail
}

func (f *fakeFencer) MarkChanged(volume string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, volume)
}

// TestFenceBeforeClear: a deleted node's lapsed claim is cleared only after
// its host was fenced, with the claim still held while fencing; when the
// fence fails (RDS down) the claim is kept, and the next run clears it once
// fencing works.
func TestFenceBeforeClear(t *testing.T) {
	f := &fakeFencer{}
	e := newEnv(t, func(o *Options) { o.Fencer = f }, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	f.e = e
	e.start()
	e.deleteNode("n1")
	e.reconcile()
	if len(f.calls) != 0 {
		t.Fatalf("fenced inside the grace period: %v", f.calls)
	}

	e.clk.Add(30 * time.Second)
	f.fail = errors.New("RDS unreachable")
	res := e.reconcile()
	if res.StaleCleared != 0 || e.holders("vol-1") != "n1!" {
		t.Fatalf("claim cleared although its host could not be fenced: %+v, holders %q", res, e.holders("vol-1"))
	}
	if res.Err == nil {
		t.Fatal("a failed fence is not reported")
	}
	if want := []string{"fence vol-1 [n1] holders=n1!"}; !slices.Equal(f.calls, want) {
		t.Fatalf("fence calls %v, want %v", f.calls, want)
	}

	f.fail = nil
	f.calls = nil
	res = e.reconcile()
	if res.StaleCleared != 1 || e.holders("vol-1") != "" {
		t.Fatalf("after a working fence: %+v, holders %q", res, e.holders("vol-1"))
	}
	// Fenced while the claim was still held, then cleared, then the
	// storage told the claims changed and asked to apply them.
	if want := []string{"fence vol-1 [n1] holders=n1!"}; !slices.Equal(f.calls, want) {
		t.Fatalf("fence calls %v, want %v", f.calls, want)
	}
	if !slices.Contains(f.changed, "vol-1") || f.applied == 0 {
		t.Fatalf("changed %v, applied %d: the cleared claim's volume was not handed to the fencer", f.changed, f.applied)
	}
}
