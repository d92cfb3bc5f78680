package emulator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/console"
	"github.com/rds-csi/rds-csi/emulator/faults"
	"github.com/rds-csi/rds-csi/emulator/routeros"
	"github.com/rds-csi/rds-csi/emulator/sshd"
	"github.com/rds-csi/rds-csi/emulator/store"
	"github.com/rds-csi/rds-csi/internal/memconn"
)

// Config describes one emulated RDS.
type Config struct {
	// Listen is the SSH address; "127.0.0.1:0" picks a free port.
	Listen string
	// StateDir holds the journal, the backing files and the host key. Empty keeps
	// everything in memory (no backing files), which is what the scenario runner
	// wants.
	StateDir string
	// HostKey, if set, is the server's host key; otherwise the state
	// directory's (created on first start) or, without one, a fresh key.
	HostKey gossh.Signer
	// AuthorizedKeys may log in as any of Users.
	AuthorizedKeys []gossh.PublicKey
	Users          []string // default: admin
	Identity       string   // default: rds
	Version        string   // default: 7.16 (stable)
	Pool           string   // default: storage-pool
	PoolSize       int64    // default: 8 TiB
	Clock          clock.Clock
	// Fsync makes every acknowledged change durable against a machine crash, not
	// just a process crash. It costs a disk flush per mutating command.
	Fsync bool
	// NoGroupCommit makes Fsync flush each change by itself, one fsync per
	// change under the store's lock, as before group commit: for measuring
	// what group commit buys and for ruling it out when debugging (see
	// store.Options.NoGroupCommit).
	NoGroupCommit bool
	// ZeroExitOnError makes failed exec commands exit 0, to prove a client reads
	// errors from the text as it must with real RouterOS.
	ZeroExitOnError bool
	// Registerer receives the emulator's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// CommandLog, if set, is called once per command script after it ran.
	CommandLog func(CommandRecord)
}

// CommandRecord is one line of the command log.
type CommandRecord struct {
	Time     time.Time     `json:"time"`
	User     string        `json:"user"`
	Command  string        `json:"command"`
	Output   string        `json:"output"`
	Status   string        `json:"status"` // ok, error or abandoned
	Duration time.Duration `json:"durationNs"`
	// Mangled names the reply fault that changed what the client got back
	// (see faults.ReplyMode); the command itself ran as logged.
	Mangled string `json:"mangled,omitempty"`
}

// maxLoggedOutput keeps a 10,000-disk listing out of the command log.
const maxLoggedOutput = 4096

// DefaultPoolSize is the pool size when none is configured: 8 TiB.
const DefaultPoolSize = 8 << 40

// Emulator is a running emulated RDS.
type Emulator struct {
	cfg     Config
	clk     clock.Clock
	store   *store.Store
	console *console.Console
	faults  *faults.Injector
	server  *sshd.Server
	hostKey gossh.Signer
	metrics *metrics
	keys    map[string]bool // marshalled authorized keys
	users   map[string]bool

	mu   sync.Mutex
	addr string
	// crashes counts Crash calls: what drops the NVMe/TCP connections of
	// every host, which a simulated data plane reconnects after.
	crashes atomic.Uint64
}

// New opens (or creates) the state and prepares the server; Start listens.
func New(cfg Config) (*Emulator, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if len(cfg.Users) == 0 {
		cfg.Users = []string{"admin"}
	}
	if cfg.Pool == "" {
		cfg.Pool = "storage-pool"
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	hostKey := cfg.HostKey
	var err error
	if hostKey == nil {
		hostKey, err = loadOrCreateHostKey(cfg.StateDir)
	}
	if err != nil {
		return nil, err
	}
	st, err := store.Open(store.Options{
		Dir: cfg.StateDir, Pool: cfg.Pool, PoolSize: cfg.PoolSize, Clock: cfg.Clock, Fsync: cfg.Fsync,
		NoGroupCommit: cfg.NoGroupCommit,
	})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	e := &Emulator{
		cfg:     cfg,
		clk:     cfg.Clock,
		store:   st,
		faults:  faults.New(cfg.Clock),
		hostKey: hostKey,
		keys:    map[string]bool{},
		users:   map[string]bool{},
	}
	e.console = console.New(st, console.Config{Identity: cfg.Identity, Version: cfg.Version, Clock: cfg.Clock})
	for _, k := range cfg.AuthorizedKeys {
		e.keys[string(k.Marshal())] = true
	}
	for _, u := range cfg.Users {
		e.users[u] = true
	}
	exit := 1
	if cfg.ZeroExitOnError {
		exit = 0
	}
	e.metrics = newMetrics(cfg.Registerer, e)
	e.server = sshd.New(sshd.Config{
		HostKey: hostKey,
		Authorize: func(user string, key gossh.PublicKey) bool {
			return e.users[user] && e.keys[string(key.Marshal())]
		},
		NewRunner:       e.newRunner,
		Identity:        e.console.Identity,
		ErrorExitStatus: exit,
		Reject:          e.faults.Rejecting,
		SessionStarted:  e.metrics.sessions.Inc,
		SessionEnded:    e.metrics.sessions.Dec,
	})
	return e, nil
}

// Start begins accepting SSH connections on Config.Listen.
func (e *Emulator) Start() error {
	addr, err := e.server.Start(e.cfg.Listen)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.addr = addr
	e.mu.Unlock()
	return nil
}

// Addr is the address the SSH server listens on (stable across Restart).
func (e *Emulator) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// HostKey is the public host key clients should pin.
func (e *Emulator) HostKey() gossh.PublicKey { return e.hostKey.PublicKey() }

// Faults is the switchboard of deliberate failures.
func (e *Emulator) Faults() *faults.Injector { return e.faults }

// Store gives tests and the scenario runner direct access to the state, e.g. to
// check that no volume was lost.
func (e *Emulator) Store() *store.Store { return e.store }

// Crash drops every connection and stops listening, mid-command if need be. Disk
// state is kept, as on the real box, whose disks outlive a crash.
func (e *Emulator) Crash() {
	e.crashes.Add(1)
	e.server.Stop()
}

// Crashes is how many times Crash was called (a reboot is one).
func (e *Emulator) Crashes() uint64 { return e.crashes.Load() }

// Restart listens again on the same address after a Crash. An emulator that
// never listened (in-memory connections only) just answers again.
func (e *Emulator) Restart() error {
	addr := e.Addr()
	if addr == "" && e.cfg.Listen == "" {
		e.server.Resume()
		return nil
	}
	if addr == "" {
		addr = e.cfg.Listen
	}
	got, err := e.server.Start(addr)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.addr = got
	e.mu.Unlock()
	return nil
}

// Serving reports whether the SSH server accepts connections.
func (e *Emulator) Serving() bool { return e.server.Serving() }

// HandleConn serves an already-connected stream (e.g. one end of a socket pair)
// without a TCP listener. The stream must buffer: SSH's two sides both write
// their version line first, so an unbuffered net.Pipe deadlocks.
func (e *Emulator) HandleConn(c net.Conn) {
	e.server.Attach()
	e.server.HandleConn(c)
}

// DialInMemory returns a connection to the emulator over a buffered
// in-memory pipe (internal/memconn): no TCP port, no listener, no file
// descriptor, so a reader waiting on it waits on a condition variable, which
// the scenario engine's synctest bubble sees as blocked (a socket's reader
// is in a system call, which it cannot tell from work). A crashed emulator refuses it, as a crashed RDS's stopped
// listener does (ECONNREFUSED). Closing it ends the SSH connection.
func (e *Emulator) DialInMemory() (net.Conn, error) {
	if e.server.Stopped() {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	}
	client, server := memconn.Pipe()
	go e.HandleConn(server)
	return client, nil
}

// Close stops the server and closes the state.
func (e *Emulator) Close() error {
	e.faults.Release()
	e.server.Stop()
	return e.store.Close()
}

// Exec runs a script as user without SSH, through the same fault, metric and log
// path as an SSH command; benchmarks and the scenario runner use it.
func (e *Emulator) Exec(ctx context.Context, user, script string) (output string, failed bool) {
	r := e.newRunner(user, 0).Run(ctx, script)
	return r.Output, r.Failed
}

type runner struct {
	e     *Emulator
	user  string
	sess  *console.Session
	width atomic.Int64 // set by PTY window changes, applied before each command
}

func (e *Emulator) newRunner(user string, width int) sshd.Runner {
	r := &runner{e: e, user: user, sess: e.console.NewSession(user, width)}
	r.width.Store(int64(r.sess.Width))
	return r
}

func (r *runner) SetWidth(w int) { r.width.Store(int64(w)) }

func (r *runner) Menu() string { return r.sess.Menu() }

func (r *runner) Run(ctx context.Context, script string) sshd.Reply {
	e := r.e
	start := e.clk.Now()
	var (
		out     string
		failed  bool
		noExit  bool
		status  = "ok"
		verb    = "none"
		mangled string
	)
	r.sess.Width = int(r.width.Load())
	rf, mangle := e.faults.ReplyFaultFor(script)
	if mangle && rf.Mode == faults.ReplyRewrap {
		r.sess.Width = rf.Width
	}
	failText, err := e.faults.BeforeCommand(ctx)
	switch {
	case err != nil:
		status, failed, verb = "abandoned", true, verbOf(script)
	case failText != "":
		out, failed, verb = failText+"\n", true, verbOf(script)
	default:
		res := r.sess.Run(ctx, script)
		out, failed, verb = res.Output, res.Failed, res.Verb
	}
	if mangle && status != "abandoned" {
		mangled = string(rf.Mode)
		if rf.Mode == faults.ReplyHang {
			// The command ran; its answer never comes (until released).
			if e.faults.WaitRelease(ctx) != nil {
				status, failed = "abandoned", true
			}
		}
		out, noExit = faults.Mangle(rf, out)
	}
	if failed && status == "ok" {
		status = "error"
	}
	elapsed := e.clk.Since(start)
	e.metrics.observe(verb, status, elapsed)
	if e.cfg.CommandLog != nil {
		logged := out
		if len(logged) > maxLoggedOutput {
			logged = logged[:maxLoggedOutput] + "...(truncated)"
		}
		e.cfg.CommandLog(CommandRecord{
			Time: start, User: r.user, Command: script, Output: logged, Status: status, Duration: elapsed, Mangled: mangled,
		})
	}
	return sshd.Reply{Output: out, Failed: failed, NoExitStatus: noExit}
}

// verbOf labels a command that did not run (injected failure, abandoned).
func verbOf(script string) string {
	cmds, err := routeros.Parse(script, routeros.DefaultSchema())
	if err != nil || len(cmds) == 0 {
		return "invalid"
	}
	return cmds[0].Verb
}

// hostKeyFile is where the host key lives in the state directory, so it stays the
// same across restarts and clients can pin it.
const hostKeyFile = "ssh_host_ed25519_key"

func loadOrCreateHostKey(dir string) (gossh.Signer, error) {
	path := ""
	if dir != "" {
		path = filepath.Join(dir, hostKeyFile)
		if b, err := os.ReadFile(path); err == nil {
			s, err := gossh.ParsePrivateKey(b)
			if err != nil {
				return nil, fmt.Errorf("host key %s: %w", path, err)
			}
			return s, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("host key: %w", err)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return signer, nil
	}
	block, err := gossh.MarshalPrivateKey(priv, "rds-emulator host key")
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write host key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("write host key: %w", err)
	}
	return signer, nil
}

// ParseAuthorizedKeys reads an OpenSSH authorized_keys file's contents. Blank and
// comment lines are skipped; any other line that is not a key is an error naming
// its line number, so a typo does not silently lock everyone out.
func ParseAuthorizedKeys(b []byte) ([]gossh.PublicKey, error) {
	var keys []gossh.PublicKey
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("authorized keys line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
