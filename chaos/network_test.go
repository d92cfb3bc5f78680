package chaos

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestNetworkPassesSSHThrough(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), nil)
	t.Cleanup(func() { _ = n.Close() })

	client := dialSSH(t, n, emu)
	for range 3 {
		if out, _, err := emulatortest.Exec(client, "/system identity print"); err != nil || out != identityReply {
			t.Fatalf("through the network: %q %v", out, err)
		}
	}
	if got := n.Stats().Conns; got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the closed connection to be forgotten", func() bool { return n.Stats().Conns == 0 })
}

func TestNetworkInMemory(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(func(context.Context) (net.Conn, error) { return emu.DialInMemory() }, nil)
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	if out, _, err := emulatortest.Exec(client, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("over an in-memory connection: %q %v", out, err)
	}
}

func TestNetworkCarriesTheDriver(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(rds.TCPDialer(emu.Addr()), nil)
	t.Cleanup(func() { _ = n.Close() })
	conn, err := rds.NewSSHConnector(n.Dial, rds.SSHConfig{
		Address:        emu.Addr(),
		Signer:         emu.ClientSigner(),
		KnownHostsLine: string(gossh.MarshalAuthorizedKey(emu.HostKey())),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect through the network: %v", err)
	}
	defer c.Close()
	if err := c.HealthCheck(context.Background()); err != nil {
		t.Fatalf("health check through the network: %v", err)
	}
	if got := n.Stats().Conns; got != 1 {
		t.Fatalf("the driver's connection did not go through the network (%d connections)", got)
	}
}

func TestNetworkPassesTheRDSsCloseOn(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), nil)
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()
	emu.Crash()
	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("the RDS's crash did not reach the client")
	}
	eventually(t, "the connection to be forgotten", func() bool { return n.Stats().Conns == 0 })
}

func TestNetworkClose(t *testing.T) {
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), nil)
	client := dialSSH(t, n, emu)
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("Close left a connection open")
	}
	if _, err := n.Dial(context.Background()); !errors.Is(err, ErrNetworkClosed) {
		t.Fatalf("dial after Close: %v, want ErrNetworkClosed", err)
	}
}

// pipeNetwork returns a Network on clk whose connections end in the test:
// each Dial sends the far end of its connection on the channel, so single
// chunks can be watched.
func pipeNetwork(t *testing.T, clk clock.Clock) (*Network, <-chan net.Conn) {
	t.Helper()
	fars := make(chan net.Conn, 8)
	n := NewNetwork(func(context.Context) (net.Conn, error) {
		near, far := net.Pipe()
		fars <- far
		return near, nil
	}, clk)
	t.Cleanup(func() { _ = n.Close() })
	return n, fars
}

// readAsync reads once from c in the background.
func readAsync(c net.Conn) <-chan string {
	ch := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			ch <- "error: " + err.Error()
			return
		}
		ch <- string(buf[:n])
	}()
	return ch
}

func received(ch <-chan string) (string, bool) {
	select {
	case s := <-ch:
		return s, true
	default:
		return "", false
	}
}

func awaitString(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(patience):
		t.Fatal("nothing arrived")
		return ""
	}
}
