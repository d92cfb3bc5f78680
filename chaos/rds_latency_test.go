package chaos

import (
	"context"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestRDSLatency(t *testing.T) {
	clk := libclock.NewMock()
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true, Clock: clock.FromLibrary(clk)})
	client, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	emu.Faults().SetLatency(time.Second) // what Undo must restore

	const latency = 2 * time.Second
	undo := apply(t, "rds.latency", map[string]string{"latency": "2s"}, Targets{RDS: emu.Emulator, Clock: clock.FromLibrary(clk)})
	if got := emu.Faults().Snapshot().Latency; got != latency {
		t.Fatalf("latency %s, want %s", got, latency)
	}

	// The command cannot finish before its timer, started no earlier than
	// now, has run for latency: advance in quarter steps and note when it
	// finished.
	res := execAsync(client, "/system identity print")
	var (
		advanced time.Duration
		r        result
	)
	for step := latency / 4; ; advanced += step {
		if advanced > 4*latency {
			t.Fatalf("command not done after %s on the clock", advanced)
		}
		if pollFor(res, &r, 20*time.Millisecond) {
			break
		}
		clk.Add(step)
	}
	if advanced < latency {
		t.Fatalf("command finished after %s on the clock, before the latency of %s", advanced, latency)
	}
	if r.err != nil || r.out != identityReply {
		t.Fatalf("slow command: %+v", r)
	}

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := emu.Faults().Snapshot().Latency; got != time.Second {
		t.Fatalf("undo left latency %s, want the previous 1s", got)
	}
}

// pollFor waits up to d (real time) for ch.
func pollFor(ch <-chan result, r *result, d time.Duration) bool {
	select {
	case *r = <-ch:
		return true
	case <-time.After(d):
		return false
	}
}
