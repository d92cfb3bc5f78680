package faults

import (
	"context"
	"reflect"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

func TestFailNextCountsDownThenPasses(t *testing.T) {
	inj := New(clock.FromLibrary(libclock.NewMock()))
	inj.FailNext(2, "failure: not enough space")
	for n, want := range []string{"failure: not enough space", "failure: not enough space", ""} {
		got, err := inj.BeforeCommand(context.Background())
		if err != nil || got != want {
			t.Fatalf("command %d: got (%q, %v), want (%q, nil)", n, got, err, want)
		}
	}
}

func TestFailNextDefaultText(t *testing.T) {
	inj := New(clock.FromLibrary(libclock.NewMock()))
	inj.FailNext(1, "")
	if got, _ := inj.BeforeCommand(context.Background()); got != DefaultFailText {
		t.Fatalf("got %q, want %q", got, DefaultFailText)
	}
}

func TestLatencyWaitsOnTheClock(t *testing.T) {
	clk := libclock.NewMock()
	inj := New(clock.FromLibrary(clk))
	inj.SetLatency(3 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := inj.BeforeCommand(context.Background()); err != nil {
			t.Errorf("BeforeCommand: %v", err)
		}
	}()
	// The timer is registered asynchronously; advancing in small steps until the
	// command returns proves it waited on the mock clock and not on real time.
	var advanced time.Duration
	for {
		select {
		case <-done:
			if advanced < 3*time.Second {
				t.Fatalf("command finished after %v of mock time, want >= 3s", advanced)
			}
			return
		default:
		}
		if advanced > time.Minute {
			t.Fatal("command never finished")
		}
		clk.Add(500 * time.Millisecond)
		advanced += 500 * time.Millisecond
	}
}

func TestHangNextBlocksUntilRelease(t *testing.T) {
	inj := New(clock.FromLibrary(libclock.NewMock()))
	inj.HangNext(1)
	done := make(chan error, 1)
	go func() { _, err := inj.BeforeCommand(context.Background()); done <- err }()
	waitFor(t, func() bool { return inj.Hanging() == 1 })
	select {
	case <-done:
		t.Fatal("hung command returned before release")
	default:
	}
	inj.Release()
	if err := <-done; err != nil {
		t.Fatalf("released command: %v", err)
	}
	// Only one command was to hang.
	if _, err := inj.BeforeCommand(context.Background()); err != nil {
		t.Fatalf("second command: %v", err)
	}
}

func TestHangAbandonedByContext(t *testing.T) {
	inj := New(clock.FromLibrary(libclock.NewMock()))
	inj.HangAll()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := inj.BeforeCommand(ctx); done <- err }()
	waitFor(t, func() bool { return inj.Hanging() == 1 })
	cancel()
	if err := <-done; err != ErrHangAborted {
		t.Fatalf("got %v, want ErrHangAborted", err)
	}
	if inj.Hanging() != 0 {
		t.Fatalf("hanging = %d after abandon", inj.Hanging())
	}
}

func TestClearResetsEverything(t *testing.T) {
	inj := New(clock.FromLibrary(libclock.NewMock()))
	inj.SetLatency(time.Second)
	inj.FailNext(5, "x")
	inj.RejectConnections(true)
	inj.HangAll()
	if err := inj.AddReplyFault(ReplyFault{Mode: ReplyEmpty}); err != nil {
		t.Fatal(err)
	}
	inj.Clear()
	if s := inj.Snapshot(); !reflect.DeepEqual(s, State{}) {
		t.Fatalf("state after Clear = %+v, want zero", s)
	}
}

// waitFor polls a condition that another goroutine makes true; bounded so a
// regression fails instead of hanging.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
