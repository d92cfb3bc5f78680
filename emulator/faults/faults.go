package faults

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// ErrHangAborted is returned by BeforeCommand when a hung command's context ends
// before the hang is released (the client gave up or the connection dropped).
var ErrHangAborted = errors.New("hung command abandoned")

// State is a snapshot of the active faults, for the control endpoint and logs.
type State struct {
	Latency           time.Duration `json:"latency"`
	FailNext          int           `json:"failNext"`
	FailText          string        `json:"failText,omitempty"`
	HangNext          int           `json:"hangNext"`
	HangAll           bool          `json:"hangAll"`
	Hanging           int           `json:"hanging"`
	RejectConnections bool          `json:"rejectConnections"`
	Replies           []ReplyFault  `json:"replies,omitempty"`
}

// Injector decides, per command and per connection, whether to misbehave.
// The zero value is not usable; call New.
type Injector struct {
	clk clock.Clock

	mu       sync.Mutex
	latency  time.Duration
	failNext int
	failText string
	hangNext int
	hangAll  bool
	hanging  int
	delayed  int           // commands waiting out their latency
	release  chan struct{} // closed by Release; replaced afterwards
	reject   bool
	replies  []*ReplyFault // see reply.go
}

// New returns an Injector with no faults active. Delays are measured on clk so a
// mock clock controls them.
func New(clk clock.Clock) *Injector {
	return &Injector{clk: clk, release: make(chan struct{})}
}

// DefaultFailText is what a failed command prints when no text was given.
const DefaultFailText = "failure: injected fault"

// SetLatency delays every command by d (0 turns it off).
func (i *Injector) SetLatency(d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.latency = d
}

// FailNext makes the next n commands print text instead of running. The text is
// printed as RouterOS prints errors, so it should look like one
// ("failure: not enough space", "bad command name x (line 1 column 2)").
func (i *Injector) FailNext(n int, text string) {
	if text == "" {
		text = DefaultFailText
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failNext, i.failText = n, text
}

// HangNext makes the next n commands block until Release (or their context ends).
func (i *Injector) HangNext(n int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hangNext = n
}

// HangAll makes every command block until Release.
func (i *Injector) HangAll() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hangAll = true
}

// Release lets every hung command continue and turns hanging off.
func (i *Injector) Release() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hangAll, i.hangNext = false, 0
	close(i.release)
	i.release = make(chan struct{})
}

// RejectConnections makes new connections close right after accept (true) or be
// served again (false). Existing connections are untouched.
func (i *Injector) RejectConnections(on bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.reject = on
}

// Rejecting reports whether new connections should be refused.
func (i *Injector) Rejecting() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.reject
}

// Clear turns every fault off and releases hung commands.
func (i *Injector) Clear() {
	i.Release()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.latency, i.failNext, i.failText, i.reject = 0, 0, "", false
	i.replies = nil
}

// Snapshot returns the active faults.
func (i *Injector) Snapshot() State {
	i.mu.Lock()
	defer i.mu.Unlock()
	st := State{
		Latency: i.latency, FailNext: i.failNext, FailText: i.failText,
		HangNext: i.hangNext, HangAll: i.hangAll, Hanging: i.hanging,
		RejectConnections: i.reject,
	}
	for _, r := range i.replies {
		st.Replies = append(st.Replies, *r)
	}
	return st
}

// Hanging reports how many commands are currently blocked by a hang fault. Tests
// and the scenario runner wait on it instead of sleeping.
func (i *Injector) Hanging() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hanging
}

// Parked reports how many commands wait for a hang's release or for their
// latency to pass: work that only the clock or the fault's undo can move.
func (i *Injector) Parked() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hanging + i.delayed
}

// BeforeCommand applies the active faults to one command. It returns a non-empty
// failText when the command must print that text instead of running, and an error
// when ctx ended while the command was delayed or hung (the caller then abandons
// the command without output). Hang is checked first, then latency, then failure,
// so a hung command that is released still pays its latency, as a slow box would.
func (i *Injector) BeforeCommand(ctx context.Context) (failText string, err error) {
	i.mu.Lock()
	hang := i.hangAll
	if !hang && i.hangNext > 0 {
		i.hangNext--
		hang = true
	}
	var release chan struct{}
	if hang {
		i.hanging++
		release = i.release
	}
	latency := i.latency
	i.mu.Unlock()

	if hang {
		if err := i.park(ctx, release); err != nil {
			return "", err
		}
	}
	if latency > 0 {
		i.mu.Lock()
		i.delayed++
		i.mu.Unlock()
		t := i.clk.Timer(latency)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
		}
		i.mu.Lock()
		i.delayed--
		i.mu.Unlock()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failNext > 0 {
		i.failNext--
		return i.failText, nil
	}
	return "", nil
}
