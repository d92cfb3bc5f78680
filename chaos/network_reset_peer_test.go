package chaos

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestNetworkResetPeer(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), nil)
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()
	// A hung command shows whether the RDS noticed: its session ends.
	emu.Faults().HangAll()
	defer emu.Faults().Release()
	res := execAsync(client, "/system identity print")
	eventually(t, "the command to hang", func() bool { return emu.Faults().Hanging() == 1 })

	undo := apply(t, "network.reset_peer", nil, Targets{Network: n})

	select {
	case err := <-dropped:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the client saw %v, want connection reset by peer", err)
		}
	case <-time.After(patience):
		t.Fatal("the open connection was not reset")
	}
	if r := await(t, res); r.err == nil {
		t.Fatalf("the command survived the reset: %+v", r)
	}
	eventually(t, "the RDS to drop the hung session", func() bool { return emu.Faults().Hanging() == 0 })
	emu.Faults().Release()

	// A new connection is reset at once: the dial works, SSH does not.
	c, err := n.Dial(context.Background())
	if err != nil {
		t.Fatalf("dial during reset_peer: %v (toxiproxy accepts, then resets)", err)
	}
	if _, err := sshOver(c, emu); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("handshake during reset_peer: %v, want connection reset by peer", err)
	}

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	client = dialSSH(t, n, emu)
	if out, _, err := emulatortest.Exec(client, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("after undo: %q %v", out, err)
	}
}

func TestNetworkResetPeerTimeout(t *testing.T) {
	clk := libclock.NewMock()
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), clock.FromLibrary(clk))
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()

	undo := apply(t, "network.reset_peer", map[string]string{"timeout": "5s"}, Targets{Network: n})
	clk.Add(5*time.Second - time.Millisecond)
	if out, _, err := emulatortest.Exec(client, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("reset before the timeout: %q %v", out, err)
	}
	// A connection dialled now has its own 5 s.
	spared := dialSSH(t, n, emu)
	clk.Add(time.Millisecond)
	select {
	case err := <-dropped:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the timeout the client saw %v, want connection reset by peer", err)
		}
	case <-time.After(patience):
		t.Fatal("the connection was not reset after the timeout")
	}
	if _, _, err := emulatortest.Exec(spared, "/system identity print"); err != nil {
		t.Fatalf("a younger connection was reset early: %v", err)
	}
	// Undo spares connections still waiting for their timeout.
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if out, _, err := emulatortest.Exec(spared, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("reset after undo: %q %v", out, err)
	}
}
