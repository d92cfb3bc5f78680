package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
)

// ReplyMode is how a reply is mangled. The command itself has run (a remove
// removed): what the client gets back is wrong, short or missing, as from a
// link that drops mid-reply, a buggy firmware or a box that lies. A client
// that stays safe against these is safe against a hostile RDS in the middle.
type ReplyMode string

const (
	// ReplyTruncate cuts the output at a seeded point and still exits cleanly.
	ReplyTruncate ReplyMode = "truncate"
	// ReplyCut cuts the output and ends the session without an exit status:
	// the connection dropped mid-reply.
	ReplyCut ReplyMode = "cut"
	// ReplyEmpty prints nothing and exits cleanly.
	ReplyEmpty ReplyMode = "empty"
	// ReplyNoExit prints the whole output but sends no exit status.
	ReplyNoExit ReplyMode = "no-exit"
	// ReplyDropLegend removes the "Flags:" legend line(s).
	ReplyDropLegend ReplyMode = "drop-legend"
	// ReplyLegendOnly keeps only the legend: "nothing matched".
	ReplyLegendOnly ReplyMode = "legend-only"
	// ReplyGarble flips a few seeded bytes of the output (never a newline).
	ReplyGarble ReplyMode = "garble"
	// ReplyRewrap prints the reply at another terminal width (Width).
	ReplyRewrap ReplyMode = "rewrap"
	// ReplyDuplicate prints every entry twice.
	ReplyDuplicate ReplyMode = "duplicate"
	// ReplyHang never answers, until Release or the client gives up.
	ReplyHang ReplyMode = "hang"
)

// ReplyModes lists every mode, for tests and the control endpoint.
var ReplyModes = []ReplyMode{ReplyTruncate, ReplyCut, ReplyEmpty, ReplyNoExit, ReplyDropLegend,
	ReplyLegendOnly, ReplyGarble, ReplyRewrap, ReplyDuplicate, ReplyHang}

// ReplyFault mangles the replies of commands whose text matches Match.
type ReplyFault struct {
	// Match is a regular expression on the command text; "" matches every
	// command.
	Match string    `json:"match,omitempty"`
	Mode  ReplyMode `json:"mode"`
	// Count is how many replies to mangle; 0 means every match until cleared.
	Count int `json:"count,omitempty"`
	// Width is the terminal width for ReplyRewrap (default 60).
	Width int `json:"width,omitempty"`
	// Seed makes truncation points and garbled bytes repeatable.
	Seed uint64 `json:"seed,omitempty"`

	re   *regexp.Regexp
	used int
}

// AddReplyFault installs f; faults are tried in the order added, and the first
// that matches a command mangles its reply.
func (i *Injector) AddReplyFault(f ReplyFault) error {
	known := false
	for _, m := range ReplyModes {
		known = known || m == f.Mode
	}
	if !known {
		return fmt.Errorf("reply fault: unknown mode %q", f.Mode)
	}
	re, err := regexp.Compile(f.Match)
	if err != nil {
		return fmt.Errorf("reply fault: match: %w", err)
	}
	if f.Count < 0 {
		return fmt.Errorf("reply fault: negative count")
	}
	if f.Mode == ReplyRewrap && f.Width == 0 {
		f.Width = 60
	}
	f.re = re
	i.mu.Lock()
	defer i.mu.Unlock()
	i.replies = append(i.replies, &f)
	return nil
}

// ClearReplyFaults removes every reply fault.
func (i *Injector) ClearReplyFaults() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.replies = nil
}

// ReplyFaultFor returns the fault that applies to the reply of script and
// counts it as used; ok is false when the reply is to be left alone.
func (i *Injector) ReplyFaultFor(script string) (f ReplyFault, ok bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for k, rf := range i.replies {
		if !rf.re.MatchString(script) {
			continue
		}
		rf.used++
		got := *rf
		got.Seed += uint64(rf.used) // a different cut or garble each time, the same for the same run
		if rf.Count > 0 && rf.used >= rf.Count {
			i.replies = append(i.replies[:k:k], i.replies[k+1:]...)
		}
		return got, true
	}
	return ReplyFault{}, false
}

// WaitRelease blocks a hung reply until Release or until ctx ends; it counts
// as hanging (and parked) meanwhile.
func (i *Injector) WaitRelease(ctx context.Context) error {
	i.mu.Lock()
	i.hanging++
	release := i.release
	i.mu.Unlock()
	return i.park(ctx, release)
}

// park waits for release (taken, and counted in hanging, by the caller under
// the lock, so a Release in between is not missed) or for ctx to end.
func (i *Injector) park(ctx context.Context, release <-chan struct{}) error {
	select {
	case <-release:
	case <-ctx.Done():
	}
	i.mu.Lock()
	i.hanging--
	i.mu.Unlock()
	if ctx.Err() != nil {
		return ErrHangAborted
	}
	return nil
}

// Mangle applies f to out. It returns the text to send and whether the
// session must end without an exit status. ReplyRewrap and ReplyHang are
// applied by the caller (they change how the command runs, not its text) and
// leave out as it is.
func Mangle(f ReplyFault, out string) (mangled string, noExit bool) {
	rng := rand.New(rand.NewPCG(f.Seed, 0x5eed))
	switch f.Mode {
	case ReplyTruncate, ReplyCut:
		n := 0
		if len(out) > 0 {
			n = rng.IntN(len(out))
		}
		return out[:n], f.Mode == ReplyCut
	case ReplyEmpty:
		return "", false
	case ReplyNoExit:
		return out, true
	case ReplyDropLegend, ReplyLegendOnly:
		var keep []string
		inLegend := false
		for _, l := range strings.SplitAfter(out, "\n") {
			legend := strings.HasPrefix(l, "Flags:") || (inLegend && strings.HasPrefix(l, " ") && !isEntryStart(l))
			inLegend = legend
			if legend == (f.Mode == ReplyLegendOnly) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, ""), false
	case ReplyGarble:
		b := []byte(out)
		if len(b) == 0 {
			return out, false
		}
		for k := 0; k < 1+len(b)/200; k++ {
			p := rng.IntN(len(b))
			if b[p] == '\n' {
				continue
			}
			b[p] = byte(0x21 + rng.IntN(0x5e)) // another printable byte
		}
		return string(b), false
	case ReplyDuplicate:
		lines := strings.SplitAfter(out, "\n")
		var head, body []string
		for k, l := range lines {
			if isEntryStart(l) {
				head, body = lines[:k], lines[k:]
				break
			}
		}
		if body == nil {
			return out, false
		}
		joined := strings.Join(body, "")
		if !strings.HasSuffix(joined, "\n") {
			joined += "\n"
		}
		return strings.Join(head, "") + joined + "\n" + joined, false
	}
	return out, false
}

// isEntryStart reports whether l starts a print entry (" 0   type=...").
func isEntryStart(l string) bool {
	t := strings.TrimLeft(l, " ")
	return t != "" && t[0] >= '0' && t[0] <= '9' && len(l)-len(t) < 8
}
