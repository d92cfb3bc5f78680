package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/quietlog"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

// TestMain keeps klog quiet unless -v is given.
func TestMain(m *testing.M) { quietlog.Main(m) }

// patience bounds every poll: a behaviour that has not shown up by then is a
// failure, not a slow machine.
const patience = 5 * time.Second

// eventually polls cond until it holds or patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func startEmulator(t *testing.T) *emulatortest.Emulator {
	t.Helper()
	return emulatortest.Start(t, emulatortest.Options{InMemory: true})
}

// tcpDial reaches the emulator's SSH port, as the driver does.
func tcpDial(emu *emulatortest.Emulator) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", emu.Addr())
	}
}

// clientConfig logs in as admin with the emulator's host key pinned.
func clientConfig(emu *emulatortest.Emulator) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            "admin",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(emu.ClientSigner())},
		HostKeyCallback: gossh.FixedHostKey(emu.HostKey()),
	}
}

// sshOver runs an SSH handshake on c.
func sshOver(c net.Conn, emu *emulatortest.Emulator) (*gossh.Client, error) {
	cc, chans, reqs, err := gossh.NewClientConn(c, emu.Addr(), clientConfig(emu))
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return gossh.NewClient(cc, chans, reqs), nil
}

// dialSSH opens an SSH connection through n and closes it when the test ends.
func dialSSH(t *testing.T, n *Network, emu *emulatortest.Emulator) *gossh.Client {
	t.Helper()
	c, err := n.Dial(context.Background())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client, err := sshOver(c, emu)
	if err != nil {
		t.Fatalf("ssh handshake: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

type result struct {
	out    string
	status int
	err    error
}

// execAsync runs cmd on client in the background.
func execAsync(client *gossh.Client, cmd string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, status, err := emulatortest.Exec(client, cmd)
		ch <- result{out, status, err}
	}()
	return ch
}

// done reports whether ch has delivered, keeping the result in *r.
func done(ch <-chan result, r *result) bool {
	select {
	case *r = <-ch:
		return true
	default:
		return false
	}
}

// await waits (bounded) for the result of execAsync.
func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(patience):
		t.Fatal("command did not complete")
		return result{}
	}
}

// addDisk is the /disk add the driver sends, for a 1 GiB disk in slot.
func addDisk(slot string) string {
	return "/disk add type=file file-path=/storage-pool/k8s/" + slot + ".img file-size=1G slot=" + slot +
		" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:" + slot
}

const identityReply = "  name: rds\n"
