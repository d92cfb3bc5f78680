package rds

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/memconn"

	"golang.org/x/crypto/ssh"
)

func echoHandler(cmd string, _ <-chan struct{}) (string, bool) {
	if cmd == HealthCommand {
		return "  name: rds-test\n", false
	}
	return "ran: " + cmd + "\n", false
}

func connect(t *testing.T, s *testSSHServer, cfg SSHConfig) *sshConn {
	t.Helper()
	cn, err := NewSSHConnector(s.pipeDialer(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cn.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*sshConn)
}

func TestSSHRun(t *testing.T) {
	s := newTestSSHServer(t, echoHandler)
	cfg := s.sshConfig()
	c := connect(t, s, cfg)
	out, err := c.Run(context.Background(), `/disk print detail where slot="a"`)
	if err != nil || out != "ran: /disk print detail where slot=\"a\"\n" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	if err := c.HealthCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	user := s.users[0]
	s.mu.Unlock()
	if user != "admin+ct512w" {
		t.Errorf("login name %q, want admin+ct512w", user)
	}

	// Pin by fingerprint instead, and send the bare user name.
	cfg = SSHConfig{Signer: s.clientSigner, HostKeyFingerprint: ssh.FingerprintSHA256(s.hostSigner.PublicKey()), User: "csi", NoLoginOptions: true}
	c = connect(t, s, cfg)
	if _, err := c.Run(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	user = s.users[1]
	s.mu.Unlock()
	if user != "csi" {
		t.Errorf("login name %q, want csi", user)
	}
}

func TestSSHHostKeyPinning(t *testing.T) {
	s := newTestSSHServer(t, echoHandler)
	other := newSigner(t)
	wantFP := ssh.FingerprintSHA256(other.PublicKey())
	gotFP := ssh.FingerprintSHA256(s.hostSigner.PublicKey())
	for name, cfg := range map[string]SSHConfig{
		"known_hosts": {Address: "rds:22", Signer: s.clientSigner, KnownHostsLine: "rds " + string(ssh.MarshalAuthorizedKey(other.PublicKey()))},
		"fingerprint": {Address: "rds:22", Signer: s.clientSigner, HostKeyFingerprint: wantFP},
	} {
		t.Run(name, func(t *testing.T) {
			cn, err := NewSSHConnector(s.pipeDialer(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cn.Connect(context.Background())
			var hk *HostKeyError
			if !errors.Is(err, ErrHostKeyMismatch) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &hk) {
				t.Fatalf("Connect = %v, want a host key mismatch", err)
			}
			if !strings.Contains(err.Error(), "expected "+wantFP) || !strings.Contains(err.Error(), "got "+gotFP) || hk.Host != "rds:22" {
				t.Errorf("error does not name both fingerprints: %v", err)
			}
		})
	}

	bad := []SSHConfig{
		{Signer: s.clientSigner},                                  // no pin
		{Signer: s.clientSigner, HostKeyFingerprint: "MD5:aa:bb"}, // wrong format
		{Signer: s.clientSigner, HostKeyFingerprint: "SHA256:short"},
		{Signer: s.clientSigner, KnownHostsLine: "not a key"},
		{Signer: s.clientSigner, KnownHostsLine: "@revoked rds " + string(ssh.MarshalAuthorizedKey(other.PublicKey()))},
		{Signer: s.clientSigner, KnownHostsLine: "rds " + string(ssh.MarshalAuthorizedKey(other.PublicKey())), HostKeyFingerprint: gotFP}, // disagree
		{HostKeyFingerprint: gotFP},                                                                                                       // no key: passwords are not an option
		{Signer: s.clientSigner, HostKeyFingerprint: gotFP, User: "a+b"},                                                                  // options smuggled in the user
	}
	for i, cfg := range bad {
		if _, err := NewSSHConnector(s.pipeDialer(), cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("config %d accepted: %v", i, err)
		}
	}
	// An authorized_keys style line and a padded fingerprint are accepted.
	for _, cfg := range []SSHConfig{
		{Signer: s.clientSigner, KnownHostsLine: string(ssh.MarshalAuthorizedKey(s.hostSigner.PublicKey()))},
		{Signer: s.clientSigner, HostKeyFingerprint: gotFP + "="},
	} {
		cn, err := NewSSHConnector(s.pipeDialer(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cn.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

func TestSSHSessionLimit(t *testing.T) {
	release := make(chan struct{})
	s := newTestSSHServer(t, func(cmd string, done <-chan struct{}) (string, bool) {
		if cmd == HealthCommand {
			return "  name: x\n", false
		}
		select {
		case <-release:
		case <-done:
		}
		return "ok\n", false
	})
	cfg := s.sshConfig()
	cfg.MaxSessions = 3
	c := connect(t, s, cfg)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Run(context.Background(), "slow"); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "3 commands busy", func() bool { return s.running.Load() == 3 })
	// The health check has its own slot and is not starved.
	if err := c.HealthCheck(context.Background()); err != nil {
		t.Fatalf("health check starved: %v", err)
	}
	close(release)
	wg.Wait()
	if m := s.maxRunning.Load(); m != 4 {
		t.Fatalf("%d commands ran concurrently, want the limit 3 + 1 health check", m)
	}
}

// waitFor polls cond with a bounded real-time deadline; used only where the
// condition is produced by another goroutine and there is no event to wait on.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSSHHungCommandAbandoned(t *testing.T) {
	closed := make(chan struct{}, 1)
	s := newTestSSHServer(t, func(cmd string, done <-chan struct{}) (string, bool) {
		if cmd == "hang" {
			<-done // until the client closes the session
			closed <- struct{}{}
			return "", false
		}
		return "ok\n", false
	})
	cfg := s.sshConfig()
	cfg.MaxSessions = 1
	c := connect(t, s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "hang")
		errc <- err
	}()
	waitFor(t, "command running", func() bool { return s.active.Load() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned command = %v", err)
	}
	<-closed // the server saw the session closed
	// The only session slot is free again and the connection still works.
	out, err := c.Run(context.Background(), "next")
	if err != nil || out != "ok\n" {
		t.Fatalf("after abandon: %q, %v", out, err)
	}
	select {
	case <-c.Done():
		t.Fatal("abandoning a command must not drop the connection")
	default:
	}
}

func TestSSHExitStatusAndErrors(t *testing.T) {
	var mu sync.Mutex
	var drop func()
	s := newTestSSHServer(t, func(cmd string, done <-chan struct{}) (string, bool) {
		switch cmd {
		case "no-exit":
			return "printed\n", true
		case "big":
			return strings.Repeat("x", 2000), false
		case "drop":
			mu.Lock()
			drop()
			mu.Unlock()
			<-done
			return "", false
		}
		return "failure: not enough space\n", false
	})
	mu.Lock()
	drop = s.dropAll
	mu.Unlock()
	cfg := s.sshConfig()
	cfg.MaxOutputBytes = 1000
	c := connect(t, s, cfg)
	ctx := context.Background()

	// No exit-status: whatever was printed may be cut short, so it is an
	// incomplete reply, never output; the (rejected) keepalive proves the
	// link itself alive, so the connection is kept.
	if out, err := c.Run(ctx, "no-exit"); !errors.Is(err, ErrIncompleteReply) || !errors.Is(err, ErrUnavailable) || out != "" {
		t.Fatalf("no-exit = %q, %v; want no output and an incomplete-reply error", out, err)
	}
	select {
	case <-c.Done():
		t.Fatal("a missing exit status on a live link must not drop the connection")
	default:
	}
	// Errors come back as text for the client to classify.
	if out, err := c.Run(ctx, "fail"); err != nil || out != "failure: not enough space\n" {
		t.Fatalf("fail = %q, %v", out, err)
	}
	if _, err := c.Run(ctx, "big"); !errors.Is(err, ErrFailed) {
		t.Fatalf("oversized output = %v", err)
	}
	// Connection dropped mid-command: unavailable, and the conn is done.
	if _, err := c.Run(ctx, "drop"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dropped = %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("conn not done after drop")
	}
	if _, err := c.Run(ctx, "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("run on dead conn = %v", err)
	}
}

func TestSSHConnectAbandonedByContext(t *testing.T) {
	s := newTestSSHServer(t, echoHandler)
	// A dialer whose peer never speaks: the handshake hangs until ctx ends.
	var peers []func() error
	var mu sync.Mutex
	cn, err := NewSSHConnector(func(ctx context.Context) (net.Conn, error) {
		c, srv := memconn.Pipe()
		mu.Lock()
		peers = append(peers, srv.Close)
		mu.Unlock()
		return c, nil
	}, s.sshConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cn.Connect(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v", err)
	}
	mu.Lock()
	for _, p := range peers {
		p()
	}
	mu.Unlock()
}
