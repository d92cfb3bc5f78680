package chaos

import (
	"context"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

func TestRDSSlowReconnect(t *testing.T) {
	clk := libclock.NewMock()
	emu := startEmulator(t)
	client, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()

	apply(t, "rds.slow-reconnect", map[string]string{"delay": "90s"}, Targets{RDS: emu.Emulator, Clock: clock.FromLibrary(clk)})

	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("an open connection survived the crash")
	}
	if !emu.Serving() {
		t.Fatal("the port must be open again at once")
	}
	refused := func() bool {
		c, err := emu.Dial("admin")
		if err == nil {
			c.Close()
		}
		return err != nil
	}
	if !refused() {
		t.Fatal("a connection got through right after the crash")
	}
	clk.Add(90*time.Second - time.Millisecond)
	if !refused() {
		t.Fatal("a connection got through before the delay was over")
	}
	clk.Add(time.Millisecond)
	eventually(t, "connections to be accepted once the delay is over", func() bool { return !refused() })
}

func TestRDSSlowReconnectUndo(t *testing.T) {
	clk := libclock.NewMock()
	emu := startEmulator(t)
	undo := apply(t, "rds.slow-reconnect", map[string]string{"delay": "1h"}, Targets{RDS: emu.Emulator, Clock: clock.FromLibrary(clk)})
	if !emu.Faults().Rejecting() {
		t.Fatal("not refusing after the crash")
	}
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := emu.Run("/system identity print"); out != identityReply {
		t.Fatalf("after undo: %q", out)
	}
}
