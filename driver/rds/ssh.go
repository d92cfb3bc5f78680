package rds

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"
)

// Defaults for SSHConfig.
const (
	DefaultUser           = "admin"
	DefaultLoginOptions   = "ct512w"
	DefaultMaxSessions    = 8
	DefaultMaxOutputBytes = 8 << 20
	// HealthCommand is cheap, read-only and prints "name: <identity>".
	HealthCommand = "/system identity print"
)

// Dialer opens the byte stream an SSH connection runs over. It must honour
// ctx cancellation. Tests pass one returning an end of net.Pipe.
type Dialer func(ctx context.Context) (net.Conn, error)

// TCPDialer dials addr over TCP.
//
// Only cancellation of ctx is passed to the network stack, not its deadline:
// the deadline may come from a mock clock (the scenario runner), which the
// kernel knows nothing about. The caller's clock-based context cancels the
// dial when it expires.
func TCPDialer(addr string) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		var d net.Dialer
		return d.DialContext(dctx, "tcp", addr)
	}
}

// SSHConfig configures the SSH connection to RDS. Only public-key
// authentication is offered and the host key must be pinned.
type SSHConfig struct {
	// Address is "host:port"; it is dialled by the default Dialer and shown
	// in host key errors.
	Address string
	// User defaults to DefaultUser.
	User string
	// LoginOptions are appended to the user as "user+opts". The default
	// "ct512w" disables colours and terminal detection and sets 512
	// columns, which avoids most wrapping. Set NoLoginOptions to send the
	// bare user name.
	LoginOptions   string
	NoLoginOptions bool
	// Signer is the client's private key.
	Signer ssh.Signer
	// KnownHostsLine pins the host key with a known_hosts line
	// ("host ssh-ed25519 AAAA...") or an authorized_keys-style key
	// ("ssh-ed25519 AAAA..."). Host patterns in the line are ignored: the
	// key alone is pinned.
	KnownHostsLine string
	// HostKeyFingerprint pins the host key by "SHA256:<base64>" fingerprint,
	// as printed by ssh-keygen -lf. Either pin may be given, or both.
	HostKeyFingerprint string
	// HostKeyAlgorithms restricts the host key types negotiated. Derived
	// from KnownHostsLine when empty; set it when pinning only by
	// fingerprint and the server has several host keys.
	HostKeyAlgorithms []string
	// MaxSessions bounds concurrent command sessions on the connection.
	// One more session is reserved for the health check so that slow
	// commands cannot make a healthy connection look dead.
	MaxSessions int
	// MaxOutputBytes bounds what one command may print.
	MaxOutputBytes int
}

// SSHConnector opens SSH connections to RDS. It implements Connector.
type SSHConnector struct {
	dial    Dialer
	addr    string
	config  *ssh.ClientConfig
	maxSess int
	maxOut  int
}

// NewSSHConnector validates cfg and returns a Connector. A nil dial means
// TCPDialer(cfg.Address).
func NewSSHConnector(dial Dialer, cfg SSHConfig) (*SSHConnector, error) {
	if cfg.Signer == nil {
		return nil, invalidf("SSH: a private key (Signer) is required; password authentication is not supported")
	}
	if dial == nil {
		if cfg.Address == "" {
			return nil, invalidf("SSH: Address or Dialer required")
		}
		dial = TCPDialer(cfg.Address)
	}
	cb, algos, err := pinnedHostKey(cfg.Address, cfg.KnownHostsLine, cfg.HostKeyFingerprint)
	if err != nil {
		return nil, err
	}
	if len(cfg.HostKeyAlgorithms) > 0 {
		algos = cfg.HostKeyAlgorithms
	}
	user := cfg.User
	if user == "" {
		user = DefaultUser
	}
	if strings.ContainsAny(user, "+ \t\r\n") {
		return nil, invalidf("SSH user %q must not contain '+' or whitespace", user)
	}
	if !cfg.NoLoginOptions {
		opts := cfg.LoginOptions
		if opts == "" {
			opts = DefaultLoginOptions
		}
		user += "+" + opts
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	return &SSHConnector{
		dial: dial,
		addr: cfg.Address,
		config: &ssh.ClientConfig{
			User:              user,
			Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
			HostKeyCallback:   cb,
			HostKeyAlgorithms: algos,
		},
		maxSess: cfg.MaxSessions,
		maxOut:  cfg.MaxOutputBytes,
	}, nil
}

// pinnedHostKey builds a callback accepting only the pinned key(s).
func pinnedHostKey(addr, knownHostsLine, fingerprint string) (ssh.HostKeyCallback, []string, error) {
	var want []string
	var algos []string
	if l := strings.TrimSpace(knownHostsLine); l != "" {
		key, err := parseHostKeyLine(l)
		if err != nil {
			return nil, nil, err
		}
		want = append(want, ssh.FingerprintSHA256(key))
		algos = algorithmsFor(key.Type())
	}
	if fp := strings.TrimSpace(fingerprint); fp != "" {
		raw, ok := strings.CutPrefix(fp, "SHA256:")
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(raw, "="))
		if !ok || err != nil || len(b) != 32 {
			return nil, nil, invalidf("host key fingerprint %q is not SHA256:<base64 of 32 bytes>", truncate(fp, 80))
		}
		fp = "SHA256:" + base64.RawStdEncoding.EncodeToString(b)
		if len(want) > 0 && want[0] != fp {
			return nil, nil, invalidf("known_hosts line (%s) and fingerprint (%s) pin different keys", want[0], fp)
		}
		if len(want) == 0 {
			want = append(want, fp)
		}
	}
	if len(want) == 0 {
		return nil, nil, invalidf("SSH host key must be pinned (KnownHostsLine or HostKeyFingerprint)")
	}
	cb := func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		got := ssh.FingerprintSHA256(key)
		for _, w := range want {
			if got == w {
				return nil
			}
		}
		host := hostname
		if addr != "" {
			host = addr
		}
		return &HostKeyError{Host: host, Expected: want, Got: got}
	}
	return cb, algos, nil
}

func parseHostKeyLine(l string) (ssh.PublicKey, error) {
	marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(l))
	if err == nil {
		if marker != "" {
			return nil, invalidf("known_hosts marker %q is not supported for pinning", marker)
		}
		return key, nil
	}
	key, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(l))
	if err2 != nil {
		return nil, invalidf("cannot parse host key line: %v", err)
	}
	return key, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// Connect dials and performs the SSH handshake, bounded by ctx.
func (s *SSHConnector) Connect(ctx context.Context) (Conn, error) {
	nc, err := s.dial(ctx)
	if err != nil {
		return nil, unavailablef("%w: dial: %w", ErrUnreachable, err)
	}
	// The handshake has no context; closing the socket is how it is
	// abandoned when ctx ends.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(nc, s.addr, s.config)
	if !stop() {
		if err == nil {
			cc.Close()
		}
		nc.Close()
		return nil, unavailablef("SSH handshake: %w", ctx.Err())
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, ErrHostKeyMismatch) {
			klog.ErrorS(err, "RDS host key does not match the pinned key")
		}
		return nil, unavailablef("SSH handshake: %w", err)
	}
	c := &sshConn{
		client: ssh.NewClient(cc, chans, reqs),
		sem:    make(chan struct{}, s.maxSess),
		hsem:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		maxOut: s.maxOut,
	}
	go func() {
		_ = c.client.Wait()
		close(c.done)
	}()
	return c, nil
}

// Probe reports whether RDS accepts a TCP connection on its SSH port. It
// closes the connection at once, before any SSH byte is exchanged, so a
// probe costs RDS one accept and no handshake, login or session.
func (s *SSHConnector) Probe(ctx context.Context) error {
	nc, err := s.dial(ctx)
	if err != nil {
		return unavailablef("%w: probe: %w", ErrUnreachable, err)
	}
	_ = nc.Close()
	return nil
}

func unavailablef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}

// errConnClosed is returned for commands on a connection that has gone.
var errConnClosed = errors.New("connection closed")

// sshConn is one SSH connection; every command gets its own session.
type sshConn struct {
	client    *ssh.Client
	sem       chan struct{} // command sessions
	hsem      chan struct{} // the health check's reserved session
	done      chan struct{}
	closeOnce sync.Once
	maxOut    int
}

func (c *sshConn) Done() <-chan struct{} { return c.done }

func (c *sshConn) Close() error {
	c.closeOnce.Do(func() { _ = c.client.Close() })
	return nil
}

func (c *sshConn) Run(ctx context.Context, cmd string) (string, error) {
	return c.run(ctx, cmd, c.sem)
}

// HealthCheck runs HealthCommand on the reserved session slot.
func (c *sshConn) HealthCheck(ctx context.Context) error {
	out, err := c.run(ctx, HealthCommand, c.hsem)
	if err != nil {
		return err
	}
	if kind, line := Classify(out); kind != nil {
		return fmt.Errorf("%w: health check: %s", kind, line)
	}
	if !strings.Contains(out, "name:") {
		return fmt.Errorf("%w: health check printed %q", ErrFailed, truncate(out, 80))
	}
	return nil
}

type runResult struct {
	out        string
	err        error
	sessionErr bool
}

// cmdSession lets the caller close a session the worker goroutine opened,
// or tell the worker to close it if it arrives after the caller gave up.
type cmdSession struct {
	mu        sync.Mutex
	sess      *ssh.Session
	abandoned bool
}

func (cs *cmdSession) abandon() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.abandoned = true
	if cs.sess != nil {
		_ = cs.sess.Close()
	}
}

func (c *sshConn) run(ctx context.Context, cmd string, sem chan struct{}) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", unavailablef("%w", err)
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return "", unavailablef("waiting for a free SSH session: %w", ctx.Err())
	case <-c.done:
		return "", unavailablef("%w", errConnClosed)
	}
	cs := &cmdSession{}
	res := make(chan runResult, 1)
	// The worker owns the semaphore slot until the session is really gone:
	// an abandoned command still occupies a session on the server.
	go func() {
		defer func() { <-sem }()
		sess, err := c.client.NewSession()
		if err != nil {
			res <- runResult{err: err, sessionErr: true}
			return
		}
		cs.mu.Lock()
		if cs.abandoned {
			cs.mu.Unlock()
			_ = sess.Close()
			return
		}
		cs.sess = sess
		cs.mu.Unlock()
		defer sess.Close()
		out := &limitedBuffer{max: c.maxOut}
		sess.Stdout = out
		sess.Stderr = out // RouterOS prints errors on stdout; keep anything else too
		err = sess.Run(cmd)
		res <- runResult{out: out.String(), err: outputErr(out, err)}
	}()
	select {
	case r := <-res:
		return c.finish(ctx, r)
	case <-ctx.Done():
		cs.abandon()
		return "", unavailablef("command abandoned: %w", ctx.Err())
	}
}

func outputErr(b *limitedBuffer, err error) error {
	if b.overflow {
		return fmt.Errorf("%w: output exceeded %d bytes", ErrFailed, b.max)
	}
	return err
}

func (c *sshConn) finish(ctx context.Context, r runResult) (string, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	var openErr *ssh.OpenChannelError
	switch {
	case r.err == nil:
		return r.out, nil
	case errors.Is(r.err, ErrFailed):
		return "", r.err
	case errors.As(r.err, &exitErr):
		// The exit status is undocumented; the text decides.
		return r.out, nil
	case r.sessionErr && errors.As(r.err, &openErr):
		// The server refused a session (e.g. too many); the connection is fine.
		return "", unavailablef("opening session: %w", r.err)
	case errors.As(r.err, &missing):
		// The session ended without an exit status: the connection dropped
		// mid-command, or the server cut the session short. Either way the
		// output may be truncated at any byte, so it proves nothing (a cut
		// listing reads like a shorter one) and is never returned. A reply
		// to a global request, even a rejection, proves the connection
		// itself is alive and worth keeping.
		if alive, known := c.alive(ctx); !alive && known {
			c.Close()
		}
		return "", fmt.Errorf("%w: %w: the session ended without an exit status", ErrUnavailable, ErrIncompleteReply)
	default:
		c.Close()
		return "", unavailablef("SSH: %w", r.err)
	}
}

// alive sends a keepalive@openssh.com request. RouterOS rejects it, which is
// fine: any reply proves the connection works; only an error means it is
// dead. known is false if ctx ended before an answer came.
func (c *sshConn) alive(ctx context.Context) (alive, known bool) {
	select {
	case <-c.done:
		return false, true
	default:
	}
	ch := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		ch <- err
	}()
	select {
	case err := <-ch:
		return err == nil, true
	case <-c.done:
		return false, true
	case <-ctx.Done():
		return false, false
	}
}

// limitedBuffer collects output up to max bytes and then discards, so a
// runaway command cannot exhaust memory.
type limitedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); len(p) > room {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// ReadFrom lets io.Copy (which the SSH session runs for stdout and stderr)
// read straight into the buffer: without it every command allocated two
// 32 KiB copy buffers, most of the driver's garbage on the provisioning path.
func (b *limitedBuffer) ReadFrom(r io.Reader) (int64, error) {
	bp := copyChunks.Get().(*[4096]byte)
	defer copyChunks.Put(bp)
	chunk := bp[:]
	var total int64
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			total += int64(n)
			_, _ = b.Write(chunk[:n])
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// copyChunks are ReadFrom's read buffers, shared by every command.
var copyChunks = sync.Pool{New: func() any { return new([4096]byte) }}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
