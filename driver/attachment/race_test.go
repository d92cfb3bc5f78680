package attachment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// TestConcurrentInvariant runs publishers, unpublishers, node churn, clock
// advances and Sweep at once and checks the safety invariant at every step,
// from three angles:
//
//   - steady nodes are never reported gone, so nothing may take their claims
//     away; each one records the exclusive volumes it won in an external
//     owner table with compare-and-swap. A second node winning the same
//     SingleNode volume fails the swap: that is a double attachment as
//     seen by the callers, whatever the Manager's internal state says.
//   - flapping nodes share other volumes under NodeGone/NodeBack/ForgetNode
//     and time passing, where claims legitimately move; there the Manager's
//     state is checked instead.
//   - a checker takes Snapshots continuously, and the event sink checks the
//     volume of every event as it is delivered.
func TestConcurrentInvariant(t *testing.T) {
	clk := libclock.NewMock()
	var sinkEvents, conflicts atomic.Int64
	var m *Manager
	check := func(where string, cs []Claim) {
		if len(cs) > 2 {
			t.Errorf("%s: volume has %d holders: %v", where, len(cs), cs)
		}
		if len(cs) == 2 && (cs[0].Mode != MultiNodeBlock || cs[1].Mode != MultiNodeBlock) {
			t.Errorf("%s: SingleNode volume with two holders: %v", where, cs)
		}
	}
	m = New(Options{Clock: clock.FromLibrary(clk), GracePeriod: 30 * time.Millisecond, MigrationWindow: 50 * time.Millisecond,
		Events: EventFunc(func(e Event) {
			sinkEvents.Add(1)
			check("event "+string(e.Type), m.Holders(e.Volume))
		})})

	const (
		steadyNodes = 8
		flapNodes   = 4
		iterations  = 3000
	)
	excl := names("excl", 12)
	mig := names("mig", 4)
	shared := names("shared", 8)
	owner := map[string]*atomic.Pointer[string]{}
	for _, v := range excl {
		owner[v] = new(atomic.Pointer[string])
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var checkerDone sync.WaitGroup
	checkerDone.Add(1)
	go func() {
		defer checkerDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			byVol := map[string][]Claim{}
			for _, c := range m.Snapshot() {
				byVol[c.Volume] = append(byVol[c.Volume], c)
			}
			for _, cs := range byVol {
				check("snapshot", cs)
			}
		}
	}()

	for n := range steadyNodes {
		me := fmt.Sprintf("steady-%d", n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(n), 1))
			held := map[string]bool{}
			for range iterations {
				switch r.IntN(4) {
				case 0, 1:
					v := excl[r.IntN(len(excl))]
					if held[v] {
						if err := m.Publish(v, me, SingleNode, 0); err != nil {
							t.Errorf("%s: repeated publish of %s: %v", me, v, err)
						}
						if p := owner[v].Load(); p == nil || *p != me {
							t.Errorf("%s: lost exclusive ownership of %s", me, v)
						}
						owner[v].Store(nil)
						m.Unpublish(v, me)
						held[v] = false
						continue
					}
					err := m.Publish(v, me, SingleNode, 0)
					if err != nil {
						var ce *ConflictError
						if !errors.As(err, &ce) || ce.Holder == me || !ce.LapsesAt.IsZero() {
							t.Errorf("%s: publish %s: unexpected refusal %v", me, v, err)
						}
						conflicts.Add(1)
						continue
					}
					p := &me
					if !owner[v].CompareAndSwap(nil, p) {
						t.Errorf("%s: won %s while %s holds it", me, v, *owner[v].Load())
					}
					check(me, m.Holders(v))
					held[v] = true
				case 2:
					v := mig[r.IntN(len(mig))]
					if r.IntN(2) == 0 {
						m.Unpublish(v, me)
						continue
					}
					err := m.Publish(v, me, MultiNodeBlock, 0)
					if err != nil && !errors.Is(err, ErrTooManyAttachments) && !errors.Is(err, ErrConflict) {
						t.Errorf("%s: publish %s: %v", me, v, err)
					}
					check(me, m.Holders(v))
				case 3:
					m.Snapshot()
				}
			}
			for v, h := range held {
				if h {
					owner[v].Store(nil)
					m.Unpublish(v, me)
				}
			}
		}()
	}

	for n := range flapNodes {
		me := fmt.Sprintf("flap-%d", n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(n), 2))
			for range iterations {
				pool := shared
				mode := SingleNode
				if r.IntN(3) == 0 {
					pool, mode = mig, MultiNodeBlock
				}
				v := pool[r.IntN(len(pool))]
				if r.IntN(3) == 0 {
					m.Unpublish(v, me)
					continue
				}
				err := m.Publish(v, me, mode, time.Duration(r.IntN(3))*10*time.Millisecond)
				if err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrTooManyAttachments) && !errors.Is(err, ErrNodeGone) {
					t.Errorf("%s: publish %s: %v", me, v, err)
				}
				check(me, m.Holders(v))
			}
		}()
	}

	// Chaos: one goroutine, because the mock clock wants a single writer.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(99, 3))
		for range iterations / 10 {
			node := fmt.Sprintf("flap-%d", r.IntN(flapNodes))
			switch r.IntN(6) {
			case 0:
				m.NodeGone(node)
			case 1:
				m.NodeBack(node)
			case 2:
				m.ForgetNode(node)
			case 3:
				clk.Add(time.Duration(r.IntN(20)) * time.Millisecond)
			default:
				res := m.Sweep()
				for _, c := range res.Cleared {
					if c.Node[:5] != "flap-" {
						t.Errorf("Sweep cleared a claim of a node never reported gone: %+v", c)
					}
				}
			}
		}
	}()

	wg.Wait()
	close(stop)
	checkerDone.Wait()
	for _, v := range excl {
		if p := owner[v].Load(); p != nil {
			t.Errorf("owner table still names %s for %s", *p, v)
		}
		if hs := m.Holders(v); len(hs) != 0 {
			t.Errorf("%s still held after every steady node let go: %v", v, hs)
		}
	}
	if sinkEvents.Load() == 0 || conflicts.Load() == 0 {
		t.Errorf("%d events, %d conflicts between steady nodes: the test exercised nothing", sinkEvents.Load(), conflicts.Load())
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
