package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// crashScenario is a three-hour RDS outage during which node-1 dies and is
// declared out of service; it returns the world (closed by the caller).
func crashScenario(t *testing.T, seed uint64, bugs Bugs) (*World, error) {
	t.Helper()
	w, err := NewWorld(Options{Seed: seed, Bugs: bugs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	for i := 1; i <= 3; i++ {
		if err := w.CreateVolume(Volume{Name: fmt.Sprintf("db-%d", i), Size: 1 << 30}, fmt.Sprintf("node-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	steps := []Step{
		{At: time.Minute, Name: "all attached", Do: func(w *World) error {
			return w.Check("every volume attached where its pod runs", slices.Equal(w.AttachedTo("db-1"), []string{"node-1"}) &&
				slices.Equal(w.AttachedTo("db-3"), []string{"node-3"}))
		}},
		Fault(10*time.Minute, "rds.crash", nil),
		{At: 10 * time.Minute, Name: "probe", Do: func(w *World) error {
			_, err := w.Eventually("probe not ready within one health interval", 10*time.Second, func() bool { return !w.Probe() })
			return err
		}},
		Fault(40*time.Minute, "node.not-ready", map[string]string{"node": "node-1"}),
		Fault(45*time.Minute, "node.out-of-service", map[string]string{"node": "node-1"}),
		{At: 47 * time.Minute, Name: "detached during the outage", Do: func(w *World) error {
			return w.Check("db-1 detached from node-1 while RDS is down", len(w.AttachedTo("db-1")) == 0)
		}},
		End(3*time.Hour+10*time.Minute, "rds.crash"),
		{At: 3*time.Hour + 10*time.Minute, Name: "recovery", Do: func(w *World) error {
			if _, err := w.Eventually("RDS connected within one backoff step", time.Duration(1.1*float64(16*time.Second)),
				func() bool { return w.RDSState() == rds.StateConnected }); err != nil {
				return err
			}
			_, err := w.Eventually("db-1 attached to a healthy node", 6*time.Minute, func() bool {
				at := w.AttachedTo("db-1")
				return len(at) == 1 && at[0] != "node-1"
			})
			return err
		}},
	}
	return w, w.Run(steps)
}

func TestRDSCrashThreeHours(t *testing.T) {
	begin := time.Now() // wall time, outside the bubble
	var virtual time.Duration
	var steps int64
	var lines int
	synctest.Test(t, func(t *testing.T) {
		w, err := crashScenario(t, 1, Bugs{})
		if err != nil {
			t.Fatal(err)
		}
		if v := w.Violations(); len(v) > 0 {
			t.Fatalf("invariants broken: %v", v)
		}
		virtual, steps, lines = w.Now(), w.VirtualSteps(), len(w.Trace().Events())
	})
	wall := time.Since(begin)
	t.Logf("virtual %v, wall %v, compression %.0fx, %d clock steps, %d trace lines",
		virtual, wall, virtual.Seconds()/wall.Seconds(), steps, lines)
}

// TestPlantedUnpublishBug: a controller whose Unpublish needs RDS leaves the
// dead node's attachment stuck for the whole outage. The run must fail on
// that expectation, traced as failed: any other error (a settle timeout, a
// step that could not run) is not the bug being caught.
func TestPlantedUnpublishBug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const broken = "db-1 detached from node-1 while RDS is down"
		w, err := crashScenario(t, 1, Bugs{UnpublishNeedsRDS: true})
		if err == nil {
			t.Fatal("the outage scenario passed with Unpublish depending on RDS")
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("expectation %q failed", broken)) {
			t.Fatalf("the run failed, but not on the expectation %q: %v", broken, err)
		}
		var traced []bool
		for _, e := range w.Trace().Events() {
			if e.Kind == trace.KindExpect && e.Text(trace.FieldName) == broken {
				ok, _ := e.Flag(trace.FieldOk)
				traced = append(traced, ok)
			}
		}
		if !slices.Equal(traced, []bool{false}) {
			t.Fatalf("expectation %q traced with ok=%v, want one ok=false", broken, traced)
		}
	})
}

func TestDeterminism(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hashes := map[string]int{}
		for i := 0; i < 5; i++ {
			w, err := crashScenario(t, 7, Bugs{})
			if err != nil {
				t.Fatal(err)
			}
			hashes[w.TraceHash()]++
			w.Close()
		}
		if len(hashes) != 1 {
			t.Fatalf("5 runs gave %d different traces: %v", len(hashes), hashes)
		}
		a, _ := crashScenario(t, 7, Bugs{})
		b, _ := crashScenario(t, 8, Bugs{})
		ja, jb := retryIns(a), retryIns(b)
		if len(ja) == 0 || fmt.Sprint(ja) == fmt.Sprint(jb) {
			t.Fatalf("seed 7 and 8 give the same jitter: %v", ja[:min(5, len(ja))])
		}
	})
}

func retryIns(w *World) []int64 {
	var out []int64
	for _, e := range w.Trace().Events() {
		if e.Kind == "rds.state" && e.Fields["retryInNs"] != nil {
			out = append(out, e.Fields["retryInNs"].(int64))
		}
	}
	return out
}

// TestBackoffIntervals reads the reconnect attempts of the outage from the
// trace: the gaps between Connecting events are 1, 2, 4, 8, 16, 16... s ±10%.
func TestBackoffIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := crashScenario(t, 3, Bugs{})
		if err != nil {
			t.Fatal(err)
		}
		var attempts []time.Duration
		for _, e := range w.Trace().Events() {
			if e.Kind == "rds.state" && e.Fields["state"] == "connecting" && e.T > 10*time.Minute {
				attempts = append(attempts, e.T)
			}
		}
		if len(attempts) < 10 {
			t.Fatalf("only %d reconnect attempts", len(attempts))
		}
		// The connection is lost at 10m (counted as the first failure).
		prev := 10 * time.Minute
		for i, at := range attempts[:len(attempts)-1] {
			want := 16 * time.Second
			if i < 4 {
				want = time.Second << i
			}
			gap := at - prev
			if gap < want*9/10 || gap > want*11/10 {
				t.Errorf("attempt %d at %v: gap %v, want %v ±10%%", i+1, at, gap, want)
			}
			prev = at
		}
	})
}
