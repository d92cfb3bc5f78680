package sshd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// Reply is what one console script printed and how the session ends.
type Reply struct {
	Output string
	// Failed reports that the output is an error message.
	Failed bool
	// NoExitStatus ends the session without an exit status, as a dropped
	// link does (reply faults use it).
	NoExitStatus bool
}

// Runner runs console scripts for one session.
type Runner interface {
	Run(ctx context.Context, script string) Reply
	// SetWidth changes the terminal width (a PTY window change). It may be
	// called while Run is not running, from another goroutine.
	SetWidth(width int)
	// Menu is the menu the prompt shows ("" at the root, "/disk" inside it),
	// read between commands.
	Menu() string
}

// Config wires the server to the rest of the emulator.
type Config struct {
	HostKey gossh.Signer
	// Authorize reports whether key may log in as user (the part before '+').
	Authorize func(user string, key gossh.PublicKey) bool
	// NewRunner starts a console session for a login at a terminal width.
	NewRunner func(user string, width int) Runner
	// Identity is shown in the prompt; read on every prompt so a rename shows.
	Identity func() string
	// ErrorExitStatus is the exec exit status when a command printed an error.
	// Real RouterOS leaves this undocumented, so clients must not rely on it; a
	// value of 0 lets tests prove that they don't.
	ErrorExitStatus int
	// Reject, when it returns true, makes new connections close right after accept.
	Reject func() bool
	// SessionStarted and SessionEnded report session counts for metrics.
	SessionStarted, SessionEnded func()
	// Limits; zero values take the defaults noted. They keep one client from
	// exhausting the emulator: connections that never authenticate or never
	// open a session, piles of sessions, and clients that stop reading.
	MaxConnections    int           // DefaultMaxConnections
	MaxSessions       int           // per connection, DefaultMaxSessions
	PreSessionTimeout time.Duration // connect to first session, DefaultPreSessionTimeout
	WriteTimeout      time.Duration // one reply's delivery, DefaultWriteTimeout
}

// Defaults for Config's limits.
const (
	DefaultMaxConnections    = 256
	DefaultMaxSessions       = 32
	DefaultPreSessionTimeout = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	// maxEnvRequests bounds the environment a session may send before its
	// command (gliderlabs keeps every one).
	maxEnvRequests = 64
)

// wallClock times the defences against hostile clients. Socket deadlines are
// kernel time by nature, and these limits guard real memory and real file
// descriptors, so they run on the wall clock even under a mock one; the
// scenario runner's well-behaved clients never come near them.
var wallClock = clock.New()

// Server is a RouterOS-style SSH server that can crash and come back.
type Server struct {
	cfg Config

	mu       sync.Mutex
	listener net.Listener
	srv      *ssh.Server
	conns    map[net.Conn]struct{}
	// served is closed when the current accept loop ends. One channel per
	// Start (not a WaitGroup) so a Stop racing a Start never waits on the
	// wrong loop.
	served chan struct{}
	// down is set by Stop and cleared by Start or Resume: a crashed server
	// refuses in-memory connections too, until it comes back.
	down bool
}

// New returns a server; call Start to listen.
func New(cfg Config) *Server {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxConnections, DefaultMaxConnections)
	def(&cfg.MaxSessions, DefaultMaxSessions)
	if cfg.PreSessionTimeout <= 0 {
		cfg.PreSessionTimeout = DefaultPreSessionTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return &Server{cfg: cfg, conns: map[net.Conn]struct{}{}}
}

type ctxKey struct{}

// connOf returns the tracked connection a session runs on.
func connOf(ctx ssh.Context) *trackedConn {
	tc, _ := ctx.Value(ctxKey{}).(*trackedConn)
	return tc
}

func (s *Server) newSSHServer() *ssh.Server {
	return &ssh.Server{
		HostSigners: []ssh.Signer{s.cfg.HostKey},
		Version:     "ROSSSH",
		Handler:     s.handle,
		PublicKeyHandler: func(ctx ssh.Context, key ssh.PublicKey) bool {
			return s.cfg.Authorize(ParseLogin(ctx.User()).User, key)
		},
		// No password or keyboard-interactive handler: keys only.
		// An empty, non-nil map means no global request is accepted, which is
		// how RouterOS answers keepalive@openssh.com.
		RequestHandlers: map[string]ssh.RequestHandler{},
		// Set explicitly: gliderlabs fills in defaults only in Serve, and
		// HandleConn (in-memory connections) bypasses Serve.
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": s.session},
		ConnCallback: func(ctx ssh.Context, c net.Conn) net.Conn {
			if s.cfg.Reject != nil && s.cfg.Reject() {
				return nil
			}
			tc := s.track(c)
			if tc == nil {
				return nil
			}
			ctx.SetValue(ctxKey{}, tc)
			// Until its first session, a connection lives on a timer: no
			// endless handshakes, no idle authenticated sockets. (Not a
			// socket deadline: gliderlabs resets those on every read.)
			tc.preSession = wallClock.AfterFunc(s.cfg.PreSessionTimeout, func() {
				if !tc.started.Load() {
					_ = tc.Close()
				}
			})
			return tc
		},
	}
}

// track remembers a connection so Crash can drop it. It returns nil, refusing
// the connection, when the server has been stopped meanwhile or already holds
// MaxConnections.
func (s *Server) track(c net.Conn) *trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || len(s.conns) >= s.cfg.MaxConnections {
		return nil
	}
	tc := &trackedConn{Conn: c, s: s}
	s.conns[tc] = struct{}{}
	return tc
}

type trackedConn struct {
	net.Conn
	s          *Server
	once       sync.Once
	sessions   atomic.Int32
	started    atomic.Bool
	preSession clock.Timer
}

// sessionStarted stops the pre-session timer at the first session.
func (c *trackedConn) sessionStarted() {
	if c.started.CompareAndSwap(false, true) && c.preSession != nil {
		c.preSession.Stop()
	}
}

// session is gliderlabs' session handler behind two limits: at most
// MaxSessions at once per connection, and a bounded environment.
func (s *Server) session(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	tc := connOf(ctx)
	if tc != nil {
		if int(tc.sessions.Add(1)) > s.cfg.MaxSessions {
			tc.sessions.Add(-1)
			_ = newChan.Reject(gossh.ResourceShortage, "too many sessions")
			return
		}
		defer tc.sessions.Add(-1)
		tc.sessionStarted()
	}
	ssh.DefaultSessionHandler(srv, conn, limitedChannel{newChan}, ctx)
}

// limitedChannel refuses environment requests beyond maxEnvRequests, so a
// client cannot grow a session's memory before it runs anything.
type limitedChannel struct{ gossh.NewChannel }

func (l limitedChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := l.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		env := 0
		for r := range reqs {
			if r.Type == "env" {
				if env++; env > maxEnvRequests {
					if r.WantReply {
						_ = r.Reply(false, nil)
					}
					continue
				}
			}
			out <- r
		}
	}()
	return ch, out, nil
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// Start listens on addr ("127.0.0.1:0" picks a port) and serves in the background.
// It returns the bound address.
func (s *Server) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.listener != nil {
		s.mu.Unlock()
		_ = l.Close()
		return "", errors.New("sshd: already listening")
	}
	srv := s.srv
	if srv == nil {
		srv = s.newSSHServer()
	}
	served := make(chan struct{})
	s.srv, s.listener, s.served, s.down = srv, l, served, false
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	return l.Addr().String(), nil
}

// HandleConn serves one already-established connection, e.g. one end of a
// net.Pipe, so an in-process caller can skip TCP. It returns when the
// connection ends. The server must have been started or attached with Attach.
func (s *Server) HandleConn(c net.Conn) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		_ = c.Close()
		return
	}
	srv.HandleConn(c)
}

// Attach makes the server accept HandleConn calls without a TCP listener. It
// does not bring a stopped server back: that is Resume's or Start's job.
func (s *Server) Attach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil && !s.down {
		s.srv = s.newSSHServer()
	}
}

// Resume brings a stopped server back for in-memory connections only, for
// emulators that never listened on TCP.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
	if s.srv == nil {
		s.srv = s.newSSHServer()
	}
}

// Stop closes the listener and drops every connection at once, mid-command if
// need be, as a crashing RDS does. It waits for the accept loop to end.
func (s *Server) Stop() {
	s.mu.Lock()
	l, srv, served := s.listener, s.srv, s.served
	s.listener, s.srv, s.served, s.down = nil, nil, nil, true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if l != nil {
		_ = l.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	if served != nil { // nil when only attached for in-memory connections
		<-served
	}
}

// Serving reports whether the server is accepting connections.
func (s *Server) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// Stopped reports whether Stop was called and the server has not been
// resumed or restarted since: it refuses new connections.
func (s *Server) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// ConnCount is the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) handle(sess ssh.Session) {
	if s.cfg.SessionStarted != nil {
		s.cfg.SessionStarted()
	}
	if s.cfg.SessionEnded != nil {
		defer s.cfg.SessionEnded()
	}
	login := ParseLogin(sess.User())
	pty, winch, hasPty := sess.Pty()
	width := 0
	followPty := hasPty && !login.NoAutodetect && login.Width == 0
	if followPty {
		width = ClampWidth(pty.Window.Width)
	}
	if login.Width > 0 {
		width = login.Width
	}
	runner := s.cfg.NewRunner(login.User, width)
	if hasPty {
		// Window changes must be drained: gliderlabs delivers them on a
		// one-slot channel, and an unread one stalls the connection's
		// request handling. They change the width unless the login fixed it.
		go func() {
			for w := range winch {
				if followPty {
					runner.SetWidth(ClampWidth(w.Width))
				}
			}
		}()
	}
	out := io.Writer(sess)
	if hasPty {
		out = &crlfWriter{w: sess}
	}
	if cmd := sess.RawCommand(); cmd != "" {
		r := runner.Run(sess.Context(), cmd)
		if err := s.write(sess, out, r.Output); err != nil {
			return
		}
		if r.NoExitStatus {
			_ = sess.Close() // gliderlabs' own Exit afterwards finds the channel closed
			return
		}
		status := 0
		if r.Failed {
			status = s.cfg.ErrorExitStatus
		}
		_ = sess.Exit(status)
		return
	}
	s.shell(sess, out, runner, login.User, hasPty)
	_ = sess.Exit(0)
}

// write delivers one reply, or closes the session if the client has not taken
// it within WriteTimeout: a client that never reads must not hold a reply (up
// to megabytes for a big listing) and a goroutine forever.
func (s *Server) write(sess ssh.Session, out io.Writer, text string) error {
	t := wallClock.AfterFunc(s.cfg.WriteTimeout, func() { _ = sess.Close() })
	defer t.Stop()
	return writeString(out, text)
}

// writeChunk is the most writeString copies at once: the SSH channel splits
// writes into packets of 32 KiB at most anyway.
const writeChunk = 32 << 10

var writeBufs = sync.Pool{New: func() any { return new([writeChunk]byte) }}

// writeString writes text through a pooled buffer: io.WriteString would copy a
// multi-megabyte listing into a fresh []byte, since a session is no
// io.StringWriter.
func writeString(w io.Writer, text string) error {
	if len(text) <= 512 {
		_, err := io.WriteString(w, text)
		return err
	}
	buf := writeBufs.Get().(*[writeChunk]byte)
	defer writeBufs.Put(buf)
	for text != "" {
		n := copy(buf[:], text)
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		text = text[n:]
	}
	return nil
}

// shell runs an interactive console: prompt, read a line, run it, repeat. With a
// PTY the server echoes and edits the line itself, as the client's terminal is raw.
func (s *Server) shell(sess ssh.Session, out io.Writer, runner Runner, user string, echo bool) {
	in := bufio.NewReader(sess)
	for {
		identity := "rds"
		if s.cfg.Identity != nil {
			identity = s.cfg.Identity()
		}
		fmt.Fprintf(out, "[%s@%s] %s> ", user, identity, runner.Menu())
		line, err := readLine(in, out, echo)
		if err != nil {
			return
		}
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "quit", "/quit":
			_, _ = io.WriteString(out, "interrupted\n")
			return
		}
		r := runner.Run(sess.Context(), line)
		if err := s.write(sess, out, r.Output); err != nil {
			return
		}
		if r.NoExitStatus {
			return
		}
	}
}

// errInterrupted is how readLine reports Ctrl-D on an empty line.
var errInterrupted = errors.New("interrupted")

// readLine reads one line. With echo it behaves like a minimal line editor:
// printable bytes are echoed, backspace erases, Ctrl-C drops the line, Ctrl-D on
// an empty line ends the session and escape sequences (arrow keys) are ignored.
func readLine(in *bufio.Reader, out io.Writer, echo bool) (string, error) {
	if !echo {
		// ReadSlice, not ReadString: a line that never ends must not grow
		// memory past maxLine.
		var line []byte
		for {
			chunk, err := in.ReadSlice('\n')
			if len(line)+len(chunk) > maxLine {
				return "", errLineTooLong
			}
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil && (err != io.EOF || len(line) == 0) {
				return "", err
			}
			return strings.TrimRight(string(line), "\r\n"), nil
		}
	}
	var buf bytes.Buffer
	for {
		c, err := in.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '\r' || c == '\n':
			_, _ = io.WriteString(out, "\n")
			return buf.String(), nil
		case c == 0x7f || c == 0x08:
			if buf.Len() > 0 {
				buf.Truncate(buf.Len() - 1)
				_, _ = io.WriteString(out, "\b \b")
			}
		case c == 0x03:
			_, _ = io.WriteString(out, "^C\n")
			return "", nil
		case c == 0x04:
			if buf.Len() == 0 {
				return "", errInterrupted
			}
		case c == 0x1b:
			skipEscape(in)
		case c < 0x20:
			// other control bytes are ignored
		default:
			if buf.Len() >= maxLine {
				return "", errLineTooLong
			}
			buf.WriteByte(c)
			_, _ = out.Write([]byte{c})
		}
	}
}

// maxLine bounds one console line so a client cannot grow memory without limit.
const maxLine = 64 << 10

var errLineTooLong = errors.New("line too long")

// skipEscape consumes a CSI sequence (ESC [ params final) after the ESC byte.
func skipEscape(in *bufio.Reader) {
	c, err := in.ReadByte()
	if err != nil || c != '[' {
		return
	}
	for i := 0; i < 16; i++ {
		c, err := in.ReadByte()
		if err != nil || c >= 0x40 && c <= 0x7e {
			return
		}
	}
}

// crlfWriter turns \n into \r\n for PTY sessions, whose terminal is raw.
type crlfWriter struct{ w io.Writer }

func (c *crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
