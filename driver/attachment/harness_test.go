package attachment

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// t0 is where every harness clock starts, so messages carry readable dates.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// at formats t0+d the way messages do.
func at(d time.Duration) string { return fmtTime(t0.Add(d)) }

type recorder struct {
	mu     sync.Mutex
	events []Event
	// last is what the previous take returned, for checks on messages.
	last []Event
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// take returns the events since the last take in the compact form
// "Type volume node other".
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, compact(e))
	}
	r.last, r.events = r.events, nil
	return out
}

func compact(e Event) string {
	return strings.TrimRight(fmt.Sprintf("%s %s %s %s", e.Type, e.Volume, e.Node, e.OtherNode), " ")
}

type harness struct {
	// anomalous skips checkInvariant for scenarios that Restore a state
	// breaking it on purpose.
	anomalous bool
	clk       *libclock.Mock
	rec       *recorder
	m         *Manager
}

func newHarness(o Options) *harness {
	h := &harness{clk: libclock.NewMock(), rec: &recorder{}}
	h.clk.Set(t0)
	o.Clock = clock.FromLibrary(h.clk)
	o.Events = h.rec
	h.m = New(o)
	return h
}

type opKind int

const (
	opPublish opKind = iota
	opUnpublish
	opGone
	opBack
	opForget
	opAdvance
	opSweep
	opRestore
)

// step is one action and everything expected of it. Expectations left
// empty mean "none": a step with no ev() must emit no events, one with no
// err() must succeed. holders() and the sweep expectations are only checked
// when set.
type step struct {
	op        opKind
	vol, node string
	mode      Mode
	grace     time.Duration
	d         time.Duration
	claims    []Claim

	wantErr     error
	wantMsg     []string
	wantHolder  string // for ErrConflict: ConflictError.Holder
	wantLapses  time.Duration
	wantEvents  []string
	wantHolders []string
	checkHold   bool
	holdVol     string   // volume for wantHolders when the step has none
	wantCleared []string // "vol/node"
	wantOverdue []string // volumes
	wantForgot  int
	check       func(t *testing.T, h *harness)
}

func pub(vol, node string) step { return step{op: opPublish, vol: vol, node: node} }
func pubM(vol, node string) step {
	return step{op: opPublish, vol: vol, node: node, mode: MultiNodeBlock}
}
func pubG(vol, node string, grace time.Duration) step {
	return step{op: opPublish, vol: vol, node: node, grace: grace}
}
func unpub(vol, node string) step    { return step{op: opUnpublish, vol: vol, node: node} }
func gone(node string) step          { return step{op: opGone, node: node} }
func back(node string) step          { return step{op: opBack, node: node} }
func forget(node string, n int) step { return step{op: opForget, node: node, wantForgot: n} }
func adv(d time.Duration) step       { return step{op: opAdvance, d: d} }
func sweep() step                    { return step{op: opSweep} }
func restore(cs ...Claim) step       { return step{op: opRestore, claims: cs} }
func (s step) err(e error, msg ...string) step {
	s.wantErr, s.wantMsg = e, msg
	return s
}
func (s step) ev(evs ...string) step { s.wantEvents = evs; return s }
func (s step) holders(nodes ...string) step {
	s.wantHolders, s.checkHold = nodes, true
	return s
}
func (s step) hold(vol string, nodes ...string) step {
	s.holdVol = vol
	return s.holders(nodes...)
}
func (s step) holder(n string, lapsesIn time.Duration) step {
	s.wantHolder, s.wantLapses = n, lapsesIn
	return s
}
func (s step) cleared(c ...string) step { s.wantCleared = c; return s }
func (s step) overdue(v ...string) step { s.wantOverdue = v; return s }
func (s step) then(f func(t *testing.T, h *harness)) step {
	s.check = f
	return s
}

type scenario struct {
	name      string
	opts      Options
	anomalous bool
	steps     []step
}

func runScenarios(t *testing.T, cases []scenario) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(c.opts)
			h.anomalous = c.anomalous
			for i, s := range c.steps {
				h.run(t, i, s)
			}
		})
	}
}

func (h *harness) run(t *testing.T, i int, s step) {
	t.Helper()
	var err error
	switch s.op {
	case opPublish:
		err = h.m.Publish(s.vol, s.node, s.mode, s.grace)
	case opUnpublish:
		h.m.Unpublish(s.vol, s.node)
	case opGone:
		h.m.NodeGone(s.node)
	case opBack:
		h.m.NodeBack(s.node)
	case opForget:
		if n := h.m.ForgetNode(s.node); n != s.wantForgot {
			t.Errorf("step %d: ForgetNode(%s) = %d, want %d", i, s.node, n, s.wantForgot)
		}
	case opAdvance:
		h.clk.Add(s.d)
	case opSweep:
		res := h.m.Sweep()
		var cl, od []string
		for _, c := range res.Cleared {
			cl = append(cl, c.Volume+"/"+c.Node)
		}
		for _, mg := range res.Overdue {
			od = append(od, mg.Volume)
		}
		if !slices.Equal(cl, s.wantCleared) {
			t.Errorf("step %d: Sweep cleared %q, want %q", i, cl, s.wantCleared)
		}
		if !slices.Equal(od, s.wantOverdue) {
			t.Errorf("step %d: Sweep overdue %q, want %q", i, od, s.wantOverdue)
		}
	case opRestore:
		err = h.m.Restore(s.claims)
	}

	if s.wantErr == nil && s.op != opRestore {
		if err != nil {
			t.Errorf("step %d: unexpected error: %v", i, err)
		}
	} else if s.wantErr != nil && !errors.Is(err, s.wantErr) {
		t.Errorf("step %d: error %v, want %v", i, err, s.wantErr)
	}
	if s.op == opRestore && len(s.wantMsg) == 0 && err != nil {
		t.Errorf("step %d: Restore: unexpected error: %v", i, err)
	}
	for _, want := range s.wantMsg {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("step %d: error %v, want it to contain %q", i, err, want)
		}
	}
	if errors.Is(s.wantErr, ErrConflict) {
		var ce *ConflictError
		if !errors.As(err, &ce) {
			t.Errorf("step %d: %v is not a *ConflictError", i, err)
		} else {
			if ce.Volume != s.vol || ce.Node != s.node {
				t.Errorf("step %d: ConflictError for %s/%s, want %s/%s", i, ce.Volume, ce.Node, s.vol, s.node)
			}
			if s.wantHolder != "" && ce.Holder != s.wantHolder {
				t.Errorf("step %d: ConflictError.Holder = %q, want %q", i, ce.Holder, s.wantHolder)
			}
			var want time.Time
			if s.wantLapses != 0 {
				want = h.clk.Now().Add(s.wantLapses)
			}
			if !ce.LapsesAt.Equal(want) {
				t.Errorf("step %d: ConflictError.LapsesAt = %v, want %v", i, ce.LapsesAt, want)
			}
		}
	}
	if errors.Is(s.wantErr, ErrTooManyAttachments) {
		var te *TooManyAttachmentsError
		if !errors.As(err, &te) {
			t.Errorf("step %d: %v is not a *TooManyAttachmentsError", i, err)
		} else {
			var want []string
			for _, c := range h.m.Holders(s.vol) {
				want = append(want, c.Node)
			}
			if te.Volume != s.vol || te.Node != s.node || !slices.Equal(te.Holders, want) {
				t.Errorf("step %d: TooManyAttachmentsError{%s %s %q}, want {%s %s %q}", i, te.Volume, te.Node, te.Holders, s.vol, s.node, want)
			}
		}
	}
	if got := h.rec.take(); !slices.Equal(got, s.wantEvents) {
		t.Errorf("step %d: events\n got %q\nwant %q", i, got, s.wantEvents)
	}
	if s.checkHold {
		vol := s.vol
		if s.holdVol != "" {
			vol = s.holdVol
		}
		var got []string
		for _, c := range h.m.Holders(vol) {
			got = append(got, c.Node)
		}
		if !slices.Equal(got, s.wantHolders) {
			t.Errorf("step %d: Holders(%s) = %q, want %q", i, vol, got, s.wantHolders)
		}
	}
	if s.check != nil {
		s.check(t, h)
	}
	if !h.anomalous {
		checkInvariant(t, h.m.Snapshot())
	}
}

// checkInvariant is the safety property the package exists for: a SingleNode
// volume never has two holders and no volume ever has three.
func checkInvariant(t *testing.T, snap []Claim) {
	t.Helper()
	byVol := map[string][]Claim{}
	for _, c := range snap {
		byVol[c.Volume] = append(byVol[c.Volume], c)
	}
	for v, cs := range byVol {
		if len(cs) > 2 {
			t.Errorf("volume %s has %d holders: %v", v, len(cs), cs)
		}
		if len(cs) == 2 && (cs[0].Mode != MultiNodeBlock || cs[1].Mode != MultiNodeBlock) {
			t.Errorf("SingleNode volume %s has two holders: %v", v, cs)
		}
	}
}
