package rds

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rds-csi/rds-csi/internal/memconn"

	"golang.org/x/crypto/ssh"
)

// testSSHServer is a tiny exec-only SSH server built on x/crypto/ssh. Like
// RouterOS it accepts only public keys and rejects keepalive@openssh.com.
type testSSHServer struct {
	t            testing.TB
	hostSigner   ssh.Signer
	clientSigner ssh.Signer
	config       *ssh.ServerConfig

	// handler answers one command. done closes when the client closes the
	// session or the connection goes. noExit suppresses exit-status.
	handler func(cmd string, done <-chan struct{}) (out string, noExit bool)

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
	ln        net.Listener
	wg        sync.WaitGroup
	users     []string
	active    atomic.Int64
	maxActive atomic.Int64
	sessions  atomic.Int64
	// running counts handlers in progress: unlike sessions, a handler has
	// finished before the client can see its command end.
	running    atomic.Int64
	maxRunning atomic.Int64
	refuse     atomic.Bool // refuse new connections (server "down")
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestSSHServer(t testing.TB, handler func(cmd string, done <-chan struct{}) (string, bool)) *testSSHServer {
	t.Helper()
	s := &testSSHServer{t: t, hostSigner: newSigner(t), clientSigner: newSigner(t), handler: handler, conns: map[net.Conn]struct{}{}}
	want := s.clientSigner.PublicKey().Marshal()
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) != string(want) {
				return nil, errors.New("unknown key")
			}
			s.mu.Lock()
			s.users = append(s.users, md.User())
			s.mu.Unlock()
			return nil, nil
		},
	}
	s.config.AddHostKey(s.hostSigner)
	t.Cleanup(s.Close)
	return s
}

// sshConfig returns a client config pinned to this server by known_hosts line.
func (s *testSSHServer) sshConfig() SSHConfig {
	return SSHConfig{
		Address:        "rds.test:22",
		Signer:         s.clientSigner,
		KnownHostsLine: "rds.test " + string(ssh.MarshalAuthorizedKey(s.hostSigner.PublicKey())),
	}
}

func (s *testSSHServer) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.refuse.Load() {
		nc.Close()
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

// pipeDialer returns a Dialer connecting over an in-memory pipe.
func (s *testSSHServer) pipeDialer() Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		if s.refuse.Load() {
			return nil, errors.New("connection refused")
		}
		c, srv := memconn.Pipe()
		if !s.track(srv) {
			c.Close()
			return nil, errors.New("connection refused")
		}
		go s.serve(srv)
		return c, nil
	}
}

// listen serves on a loopback TCP port and returns its address.
func (s *testSSHServer) listen() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if s.track(nc) {
				go s.serve(nc)
			}
		}
	}()
	return ln.Addr().String()
}

// dropAll closes every server-side connection, as a crash would.
func (s *testSSHServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *testSSHServer) Close() {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testSSHServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs) // rejects keepalive@openssh.com like RouterOS
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ch, creqs)
		}()
	}
}

func (s *testSSHServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	s.sessions.Add(1)
	n := s.active.Add(1)
	for {
		m := s.maxActive.Load()
		if n <= m || s.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	defer s.active.Add(-1)
	defer ch.Close()
	done := make(chan struct{})
	var once sync.Once
	var handlerWG sync.WaitGroup
	defer handlerWG.Wait()
	defer once.Do(func() { close(done) })
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			continue
		}
		req.Reply(true, nil)
		handlerWG.Add(1)
		go func() {
			defer handlerWG.Done()
			n := s.running.Add(1)
			for m := s.maxRunning.Load(); n > m && !s.maxRunning.CompareAndSwap(m, n); m = s.maxRunning.Load() {
			}
			out, noExit := s.handler(payload.Command, done)
			s.running.Add(-1)
			select {
			case <-done:
				return
			default:
			}
			ch.Write([]byte(out))
			if !noExit {
				var st [4]byte
				binary.BigEndian.PutUint32(st[:], 0)
				ch.SendRequest("exit-status", false, st[:])
			}
			ch.CloseWrite()
			ch.Close()
		}()
	}
	once.Do(func() { close(done) })
}
