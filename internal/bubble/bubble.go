package bubble

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var host atomic.Pointer[testing.T]

// ErrNoHost: Run was called with no host registered.
var ErrNoHost = errors.New("bubble: no host: call bubble.Host(t) in the test, or run the binary under bubble.Main")

// Host makes t the host of the bubbles Run starts until t ends; then the
// previous host (a parent test's) is back. Tests that host bubbles must not
// run in parallel with each other.
func Host(t *testing.T) {
	prev := host.Swap(t)
	t.Cleanup(func() { host.Store(prev) })
}

// Main runs main with a host registered and exits with its status. Use it
// as a binary's whole main; the command line stays main's to parse.
func Main(main func() int) {
	args := os.Args
	os.Args = args[:1] // the testing package parses os.Args; the program's own are its own
	testing.Main(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "bubble-host", F: func(t *testing.T) {
			os.Args = args
			host.Store(t)
			code := main()
			host.Store(nil)
			os.Exit(code)
		}}}, nil, nil)
}

// StallReport is how long a bubble may run, in real time, before Run writes
// every goroutine's stack to stderr (once): a bubble that never quiesces is
// otherwise silent. It does not stop the bubble.
var StallReport = 5 * time.Minute

// Run runs f in a new bubble and returns once f and every goroutine it
// started have returned. A panic in f, or goroutines still blocked when f
// returns (a leak: the bubble can never end), come back as errors.
func Run(f func()) (err error) {
	t := host.Load()
	if t == nil {
		return ErrNoHost
	}
	done := make(chan struct{})
	defer close(done)
	go stallReport(done)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bubble: %v", r)
		}
	}()
	var inner error
	synctest.Test(t, func(*testing.T) {
		defer func() {
			if r := recover(); r != nil {
				buf := make([]byte, 64<<10)
				inner = fmt.Errorf("bubble: panic: %v\n%s", r, buf[:runtime.Stack(buf, false)])
			}
		}()
		f()
	})
	return inner
}

func stallReport(done <-chan struct{}) {
	timer := time.NewTimer(StallReport)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		buf := make([]byte, 16<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		fmt.Fprintf(os.Stderr, "bubble: still running after %v; goroutines:\n%s\n", StallReport, stacks)
	}
}

// Inside reports whether the calling goroutine runs in a bubble.
func Inside() (in bool) {
	defer func() {
		if recover() != nil {
			in = false
		}
	}()
	synctest.Wait() // panics outside a bubble; inside, the caller waits for the others to block
	return true
}

// Wait blocks until every other goroutine of the caller's bubble is durably
// blocked (synctest.Wait).
func Wait() { synctest.Wait() }

// Stacks returns the stacks of every goroutine in a bubble (the runtime
// names the bubble on each goroutine's state line), for a diagnostic.
func Stacks() string {
	buf := make([]byte, 16<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	var out []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(strings.SplitN(g, "\n", 2)[0], "synctest bubble") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
