//go:build e2e || e2ekubelet

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one external process, logging to its own file. A supervised proc is
// restarted a second after it exits, the way kubelet restarts a container, until
// Stop.
type proc struct {
	name       string
	bin        string
	args       []string
	env        []string
	logPath    string
	supervised bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current instance exits
	stopped  bool
	starts   int
	lastExit error
}

func newProc(logDir, name, bin string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, logPath: filepath.Join(logDir, name+".log")}
}

// Start starts the process (and, when supervised, keeps it running).
func (p *proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = false
	return p.startLocked()
}

func (p *proc) startLocked() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logf, "=== %s start #%d: %s %s\n", time.Now().Format(time.RFC3339Nano), p.starts, p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and killed with the test binary if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), err)
		logf.Close()
		p.mu.Lock()
		p.lastExit = err
		close(done)
		restart := p.supervised && !p.stopped && p.cmd == cmd
		p.mu.Unlock()
		if restart {
			time.Sleep(time.Second)
			p.mu.Lock()
			if !p.stopped && p.cmd == cmd {
				if err := p.startLocked(); err != nil {
					fmt.Fprintf(os.Stderr, "e2e: restart %s: %v\n", p.name, err)
				}
			}
			p.mu.Unlock()
		}
	}()
	return nil
}

// Kill sends SIGKILL to the current instance and waits for it to exit. A
// supervised proc comes back by itself.
func (p *proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Stop ends the process for good: SIGTERM, then SIGKILL after grace.
func (p *proc) Stop(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	if grace <= 0 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Running reports whether the current instance is alive.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid of the current instance (0 if none).
func (p *proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logContains reports whether the log holds s.
func (p *proc) logContains(s string) bool {
	b, _ := os.ReadFile(p.logPath)
	return bytes.Contains(b, []byte(s))
}

// procs is every process of a control plane, for stopping and log tails.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

func (ps *procs) add(p *proc) *proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, p)
	return p
}

func (ps *procs) all() []*proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := append([]*proc(nil), ps.list...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// dump writes the tail of every log to w.
func (ps *procs) dump(w io.Writer, n int) {
	for _, p := range ps.all() {
		fmt.Fprintf(w, "----- %s (%s), last %d lines -----\n%s\n", p.name, p.logPath, n, p.tail(n))
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// permanentError ends a waitFor at once.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }

// permanent wraps err so that waitFor gives up at once instead of retrying.
func permanent(err error) error { return permanentError{err} }

// waitFor polls cond every interval until it returns true, returns an error,
// or timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(interval):
		}
	}
}

// httpOK reports whether GET url answers 200 (with an optional client).
func httpOK(ctx context.Context, c *http.Client, url string) (bool, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return true, nil
}
