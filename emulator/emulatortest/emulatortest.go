// Package emulatortest starts an emulator for a test and hands back what a client
// needs to reach it: the address, the host key to pin and an authorized client
// key. Every package that talks to RDS tests against it.
package emulatortest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator"
)

// Options adjust the emulator; the zero value is a persistent emulator in a
// temporary directory with an 8 TiB pool on the real clock.
type Options struct {
	PoolSize        int64
	Clock           clock.Clock
	StateDir        string // default: t.TempDir()
	InMemory        bool   // no state directory at all
	ZeroExitOnError bool
	Registerer      prometheus.Registerer
	CommandLog      func(emulator.CommandRecord)
	Identity        string
	Version         string
	Pool            string // default: storage-pool
	Fsync           bool   // flush every change before acknowledging it, as the binary does by default
	NoGroupCommit   bool   // with Fsync, one flush per change (the store before group commit)
}

// Emulator is a started emulator plus a client key it accepts for user "admin".
type Emulator struct {
	*emulator.Emulator
	t      testing.TB
	signer gossh.Signer
}

// Start starts an emulator on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	signer, err := gossh.NewSignerFromKey(mustKeyPriv(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := o.StateDir
	if dir == "" && !o.InMemory {
		dir = t.TempDir()
	}
	emu, err := emulator.New(emulator.Config{
		Listen:          "127.0.0.1:0",
		StateDir:        dir,
		AuthorizedKeys:  []gossh.PublicKey{signer.PublicKey()},
		PoolSize:        o.PoolSize,
		Clock:           o.Clock,
		ZeroExitOnError: o.ZeroExitOnError,
		Registerer:      o.Registerer,
		CommandLog:      o.CommandLog,
		Identity:        o.Identity,
		Version:         o.Version,
		Pool:            o.Pool,
		Fsync:           o.Fsync,
		NoGroupCommit:   o.NoGroupCommit,
	})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	if err := emu.Start(); err != nil {
		t.Fatalf("emulator start: %v", err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	return &Emulator{Emulator: emu, t: t, signer: signer}
}

// ClientSigner is a private key authorized for user "admin".
func (e *Emulator) ClientSigner() gossh.Signer { return e.signer }

// ClientConfig is an SSH client configuration for login (e.g. "admin" or
// "admin+ct512w") with the emulator's host key pinned.
func (e *Emulator) ClientConfig(login string) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            login,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(e.signer)},
		HostKeyCallback: gossh.FixedHostKey(e.HostKey()),
		Timeout:         10 * time.Second,
	}
}

// Dial opens an SSH connection as login.
func (e *Emulator) Dial(login string) (*gossh.Client, error) {
	return gossh.Dial("tcp", e.Addr(), e.ClientConfig(login))
}

// Run executes one command over a fresh SSH connection as "admin" and returns its
// output; a transport failure fails the test.
func (e *Emulator) Run(cmd string) string {
	e.t.Helper()
	out, _, err := e.RunAs("admin", cmd)
	if err != nil {
		e.t.Fatalf("ssh %q: %v", cmd, err)
	}
	return out
}

// RunAs executes one command as login and returns its output and exit status.
func (e *Emulator) RunAs(login, cmd string) (string, int, error) {
	c, err := e.Dial(login)
	if err != nil {
		return "", -1, err
	}
	defer c.Close()
	return Exec(c, cmd)
}

// Exec runs cmd in a new session on an existing connection.
func Exec(c *gossh.Client, cmd string) (string, int, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", -1, err
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout = &out
	err = s.Run(cmd)
	if ee, ok := err.(*gossh.ExitError); ok {
		return out.String(), ee.ExitStatus(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

func mustKeyPriv(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
