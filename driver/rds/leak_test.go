package rds

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// settle waits (bounded) for goroutines and fds to fall back to a baseline:
// closed connections finish their goroutines asynchronously.
func settle(t *testing.T, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("leak: %d goroutines (baseline %d), %d fds (baseline %d)\n%s", g, goroutines, f, fds, buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connectCycles runs the manager through n drop/reconnect cycles over real
// TCP + SSH, with a command on every connection.
func connectCycles(t *testing.T, n int) {
	s := newTestSSHServer(t, echoHandler)
	cfg := s.sshConfig()
	cfg.Address = s.listen()
	cn, err := NewSSHConnector(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := libclock.NewMock()
	m := newTestManager(t, cn, clock.FromLibrary(clk), func(c *ManagerConfig) { c.HealthInterval = 24 * time.Hour })
	ch := events(m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if out, err := m.Run(context.Background(), "cycle"); err != nil || out != "ran: cycle\n" {
			t.Fatalf("cycle %d: %q, %v", i, out, err)
		}
		s.dropAll()
		ev := next(t, ch, StateDisconnected)
		clk.Add(ev.RetryIn)
		next(t, ch, StateConnected)
	}
	m.Close()
	s.Close()
	if a := s.active.Load(); a != 0 {
		t.Fatalf("%d sessions still open on the server", a)
	}
	// One session per command, plus the health check that completes each
	// of the n+1 connects.
	if got := s.sessions.Load(); got != int64(2*n+1) {
		t.Fatalf("%d sessions for %d commands and %d connects", got, n, n+1)
	}
}

func TestManagerNoLeaks(t *testing.T) {
	connectCycles(t, 2) // warm up lazily started runtime and library goroutines
	settle(t, runtime.NumGoroutine(), openFDs(t))
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	connectCycles(t, 1000)
	settle(t, g0, f0)
}

// TestManagerConcurrentDropRestore: 32 callers hammer the client while the
// connection is dropped and restored; every call either succeeds or fails
// fast with ErrUnavailable, and nothing hangs or races.
func TestManagerConcurrentDropRestore(t *testing.T) {
	s := newTestSSHServer(t, echoHandler)
	cn, err := NewSSHConnector(s.pipeDialer(), s.sshConfig())
	if err != nil {
		t.Fatal(err)
	}
	clk := libclock.NewMock()
	m := newTestManager(t, cn, clock.FromLibrary(clk), nil)
	c, err := NewClient(m, ClientOptions{BasePath: testBase, Clock: clock.FromLibrary(clk)})
	if err != nil {
		t.Fatal(err)
	}
	ch := events(m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ok, unavailable atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := c.Identity(context.Background())
				switch {
				case err == nil && id == "rds-test":
					ok.Add(1)
				case errors.Is(err, ErrUnavailable):
					unavailable.Add(1)
					runtime.Gosched()
				default:
					t.Errorf("unexpected result %q, %v", id, err)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		waitFor(t, "some successes", func() bool { return ok.Load() > int64(i*10) })
		if i%3 == 0 {
			s.refuse.Store(true) // stay down for a couple of attempts
		}
		s.dropAll()
		ev := next(t, ch, StateDisconnected)
		for s.refuse.Load() && ev.Failures < 3 {
			clk.Add(ev.RetryIn)
			ev = next(t, ch, StateDisconnected)
		}
		s.refuse.Store(false)
		clk.Add(ev.RetryIn)
		next(t, ch, StateConnected)
	}
	close(stop)
	wg.Wait()
	if ok.Load() == 0 || unavailable.Load() == 0 {
		t.Fatalf("ok=%d unavailable=%d: the test did not exercise both paths", ok.Load(), unavailable.Load())
	}
	t.Logf("ok=%d unavailable=%d", ok.Load(), unavailable.Load())
}
