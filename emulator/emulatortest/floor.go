package emulatortest

import (
	"io"
	"net"
	"testing"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// FloorReply is what the floor server answers to every command.
const FloorReply = "Flags: X - disabled; B - blocked\n"

// Floor is a bare SSH server on the same SSH stack as the emulator that answers
// every exec with FloorReply. Benchmarks run against it in the same process to
// measure what SSH alone costs on this machine, so the emulator's and the
// client's figures can be read as a ratio to that floor instead of as absolute
// numbers from an unknown machine.
type Floor struct {
	Addr    string
	HostKey gossh.PublicKey
	Signer  gossh.Signer // client key it accepts (any user)
}

// StartFloor starts a floor server on 127.0.0.1 until the test or benchmark ends.
func StartFloor(t testing.TB) *Floor {
	t.Helper()
	e := Start(t, Options{InMemory: true}) // borrow a host key and a client key
	hostSigner, err := gossh.NewSignerFromKey(mustKeyPriv(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clientKey := e.ClientSigner().PublicKey().Marshal()
	srv := &ssh.Server{
		HostSigners: []ssh.Signer{hostSigner},
		Handler: func(s ssh.Session) {
			_, _ = io.WriteString(s, FloorReply)
			_ = s.Exit(0)
		},
		PublicKeyHandler: func(_ ssh.Context, key ssh.PublicKey) bool {
			return string(key.Marshal()) == string(clientKey)
		},
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Floor{Addr: l.Addr().String(), HostKey: hostSigner.PublicKey(), Signer: e.ClientSigner()}
}

// ClientConfig pins the floor's host key.
func (f *Floor) ClientConfig() *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            "admin",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(f.Signer)},
		HostKeyCallback: gossh.FixedHostKey(f.HostKey),
	}
}
