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

func TestNetworkTimeout(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), nil)
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)

	undo := apply(t, "network.timeout", nil, Targets{Network: n})

	// An open connection: the command goes out and nothing comes back.
	res := execAsync(client, "/system identity print")
	eventually(t, "the request to be held", func() bool { return n.Stats().Parked > 0 })
	var r result
	if done(res, &r) {
		t.Fatalf("a command completed through the black hole: %+v", r)
	}
	if n.Stats().Conns != 1 {
		t.Fatal("the black hole closed the connection")
	}

	// A new dial hangs until its context ends...
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		c, err := n.Dial(ctx)
		if err == nil {
			c.Close()
		}
		gaveUp <- err
	}()
	eventually(t, "the dial to be held", func() bool { return n.Stats().HeldDials == 1 })
	cancel()
	select {
	case err := <-gaveUp:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("held dial ended with %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("a held dial ignored its context")
	}

	// ...or until the network heals.
	healed := make(chan error, 1)
	go func() {
		c, err := n.Dial(context.Background())
		if err != nil {
			healed <- err
			return
		}
		client, err := sshOver(c, emu)
		if err == nil {
			_, _, err = emulatortest.Exec(client, "/system identity print")
			client.Close()
		}
		healed <- err
	}()
	eventually(t, "the second dial to be held", func() bool { return n.Stats().HeldDials == 1 })

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	// What was held is delivered, not lost: the command completes.
	if r := await(t, res); r.err != nil || r.out != identityReply {
		t.Fatalf("held command after the network healed: %+v", r)
	}
	select {
	case err := <-healed:
		if err != nil {
			t.Fatalf("held dial after the network healed: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("a held dial stayed held after the network healed")
	}
}

func TestNetworkTimeoutCloses(t *testing.T) {
	clk := libclock.NewMock()
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), clock.FromLibrary(clk))
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()

	apply(t, "network.timeout", map[string]string{"timeout": "30s"}, Targets{Network: n})
	dialed := make(chan error, 1)
	go func() {
		c, err := n.Dial(context.Background())
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	eventually(t, "the dial to be held", func() bool { return n.Stats().HeldDials == 1 })

	clk.Add(30*time.Second - time.Millisecond)
	if n.Stats().Conns != 1 || n.Stats().HeldDials != 1 {
		t.Fatalf("gave up before the timeout: %+v", n.Stats())
	}
	clk.Add(time.Millisecond)
	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("the connection stayed open after the timeout")
	}
	select {
	case err := <-dialed:
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("held dial ended with %v, want ETIMEDOUT", err)
		}
	case <-time.After(patience):
		t.Fatal("the held dial outlived the timeout")
	}
}

func TestNetworkToxicsDoNotStack(t *testing.T) {
	n, _ := pipeNetwork(t, nil)
	for _, name := range []string{"network.timeout", "network.reset_peer", "network.latency"} {
		params := map[string]string{}
		if name == "network.latency" {
			params["latency"] = "1s"
		}
		apply(t, name, params, Targets{Network: n})
		f, _ := Lookup(name, params)
		if _, err := f.Apply(context.Background(), Targets{Network: n}); !errors.Is(err, ErrActive) {
			t.Errorf("%s applied twice: %v, want ErrActive", name, err)
		}
	}
}
