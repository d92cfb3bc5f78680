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

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Runner runs one console script and returns what RouterOS would print. failed
// reports that the output is an error message.
type Runner interface {
	Run(ctx context.Context, script string) (output string, failed bool)
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
}

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
	return &Server{cfg: cfg, conns: map[net.Conn]struct{}{}}
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
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler},
		ConnCallback: func(ctx ssh.Context, c net.Conn) net.Conn {
			if s.cfg.Reject != nil && s.cfg.Reject() {
				return nil
			}
			return s.track(c)
		},
	}
}

// track remembers a connection so Crash can drop it. It returns nil, refusing
// the connection, when the server has been stopped meanwhile.
func (s *Server) track(c net.Conn) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	tc := &trackedConn{Conn: c, s: s}
	s.conns[tc] = struct{}{}
	return tc
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
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
	pty, _, hasPty := sess.Pty()
	width := 0
	if hasPty && !login.NoAutodetect {
		width = pty.Window.Width
	}
	if login.Width > 0 {
		width = login.Width
	}
	runner := s.cfg.NewRunner(login.User, width)
	out := io.Writer(sess)
	if hasPty {
		out = &crlfWriter{w: sess}
	}
	if cmd := sess.RawCommand(); cmd != "" {
		text, failed := runner.Run(sess.Context(), cmd)
		_, _ = io.WriteString(out, text)
		status := 0
		if failed {
			status = s.cfg.ErrorExitStatus
		}
		_ = sess.Exit(status)
		return
	}
	s.shell(sess, out, runner, login.User, hasPty)
	_ = sess.Exit(0)
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
		fmt.Fprintf(out, "[%s@%s] > ", user, identity)
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
		text, _ := runner.Run(sess.Context(), line)
		_, _ = io.WriteString(out, text)
	}
}

// errInterrupted is how readLine reports Ctrl-D on an empty line.
var errInterrupted = errors.New("interrupted")

// readLine reads one line. With echo it behaves like a minimal line editor:
// printable bytes are echoed, backspace erases, Ctrl-C drops the line, Ctrl-D on
// an empty line ends the session and escape sequences (arrow keys) are ignored.
func readLine(in *bufio.Reader, out io.Writer, echo bool) (string, error) {
	if !echo {
		line, err := in.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", err
		}
		if len(line) > maxLine {
			return "", errLineTooLong
		}
		return strings.TrimRight(line, "\r\n"), nil
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
const maxLine = 1 << 20

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
