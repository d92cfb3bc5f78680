package scenarios

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/bubble"

	"github.com/rds-csi/rds-csi/internal/quietlog"

	"github.com/rds-csi/rds-csi/scenarios/engine"
	"github.com/rds-csi/rds-csi/scenarios/report"
	"github.com/rds-csi/rds-csi/scenarios/runner"
	"github.com/rds-csi/rds-csi/scenarios/spec"
	"github.com/rds-csi/rds-csi/scenarios/swarm"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

var (
	runs       = flag.Int("determinism-runs", 0, "runs per scenario in TestDeterminism (default 20, 2 under -race)")
	swarmSeeds = flag.Int("swarm-seeds", 0, "seeds TestSwarm runs (default 50, 5 under -race)")
)

// TestMain keeps klog quiet unless -v is given.
func TestMain(m *testing.M) { quietlog.Main(m) }

// shipped lists every scenario file of this directory tree.
func shipped(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "spec") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("only %d scenario files: %v", len(files), files)
	}
	return files
}

func run(t *testing.T, file string, o runner.Options) *runner.Result {
	t.Helper()
	bubble.Host(t)
	res, err := runner.Check(file, o)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return res
}

// TestShipped runs every shipped scenario; each must pass.
func TestShipped(t *testing.T) {
	for _, file := range shipped(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			res := run(t, file, runner.Options{})
			for _, f := range res.Summary.Failures {
				t.Error(f)
			}
			events, err := res.Events()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events { // written in the names the report reads
				if err := trace.Check(e); err != nil {
					t.Fatalf("at %v: %v", e.T, err)
				}
			}
			t.Log(res.Summary.Line())
		})
	}
}

// TestIncidentCompression: the three-hour incident replays fast. The ratio
// is printed (it is a measurement); the test checks only that the replay
// covered the whole outage in virtual time.
func TestIncidentCompression(t *testing.T) {
	res := run(t, "incidents/rds-crash-2026-02-05.yaml", runner.Options{})
	if !res.Summary.Pass {
		t.Fatalf("incident failed: %v", res.Summary.Failures)
	}
	if res.Summary.Virtual < 3*time.Hour {
		t.Fatalf("virtual duration %v, want the whole 3h outage", res.Summary.Virtual)
	}
	t.Logf("%s (%d clock steps)", res.Summary.Line(), res.Summary.Steps)
}

// TestDeterminism: every shipped scenario gives one trace hash per seed.
func TestDeterminism(t *testing.T) {
	n := *runs
	if n == 0 {
		n = 20
		if raceEnabled {
			n = 2
		}
	}
	for _, file := range shipped(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			hashes := map[string]int{}
			var first []byte
			for i := 0; i < n; i++ {
				res := run(t, file, runner.Options{})
				if first == nil {
					first = res.Trace
				} else if res.Summary.TraceHash != hashOf(first) {
					t.Errorf("run %d differs from run 1: %s", i+1, trace.FirstDivergence(first, res.Trace))
				}
				hashes[res.Summary.TraceHash]++
			}
			if len(hashes) != 1 {
				t.Fatalf("%d runs gave %d different traces: %v", n, len(hashes), hashes)
			}
		})
	}
}

// TestPlantedBugs: a driver with a known defect fails the scenario that
// guards against it, with a message that says what went wrong.
func TestPlantedBugs(t *testing.T) {
	for _, c := range []struct {
		name, file string
		bugs       engine.Bugs
		want       string // in the failure
	}{
		{"unpublish needs RDS", "incidents/rds-crash-2026-02-05.yaml", engine.Bugs{UnpublishNeedsRDS: true},
			`{volumes: "{db,vm}-*", attachedTo: [], within: 1m0s}: not within 1m0s`},
		{"grace period ignored", "node-deletion-grace.yaml", engine.Bugs{IgnoreGracePeriod: true},
			`{claims: {volume: "db-*", nodes: [node-a]}, always: 29s}: broken at`},
		{"health check without deadline", "rds-hang.yaml", engine.Bugs{HealthCheckWithoutDeadline: true}, "probe"},
		{"unpublish needs RDS, RDS hung", "rds-hang-leader-failover.yaml", engine.Bugs{UnpublishNeedsRDS: true},
			`{volumes: db-3, attachedTo: [], within: 10s}: not within 10s`},
		{"unpublish needs RDS, link dark", "network-toxics.yaml", engine.Bugs{UnpublishNeedsRDS: true},
			`{volumes: db-3, attachedTo: [], within: 10s}: not within 10s`},
		// The partitioned node's claim is cleared with its host still
		// allowed: its path keeps working with no claim behind it until
		// node-b's publish rewrites the list (see the scenario README).
		{"revocation disabled", "partition-fencing.yaml", engine.Bugs{RevocationDisabled: true},
			`invariant 3m30s: data-plane-single-writer: node node-a (gone from the API server but running) has a working NVMe/TCP path to volume db-1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, c.file, runner.Options{Bugs: c.bugs})
			if res.Summary.Pass {
				t.Fatalf("%s passed with the bug planted", c.file)
			}
			joined := strings.Join(res.Summary.Failures, "\n")
			if !strings.Contains(joined, c.want) {
				t.Fatalf("failures do not name the broken expectation %q:\n%s", c.want, joined)
			}
			if !strings.Contains(res.Summary.Line(), "FAIL") || !strings.Contains(res.Summary.Reproduce, "--seed") {
				t.Fatalf("summary %q / reproduce %q", res.Summary.Line(), res.Summary.Reproduce)
			}
		})
	}
}

// TestFlappingBackoff reads the reconnect delays of the flapping scenario
// from its trace: within an outage they double from 1s to a 16s cap, ±10%.
func TestFlappingBackoff(t *testing.T) {
	res := run(t, "rds-flapping.yaml", runner.Options{})
	events, err := res.Events()
	if err != nil {
		t.Fatal(err)
	}
	seen, connects := 0, 0
	for _, e := range events {
		if e.Kind == "rds.connect" {
			connects++
		}
		if e.Kind != "rds.state" || e.Fields["state"] != "disconnected" || e.Fields["retryInNs"] == nil {
			continue
		}
		failures := int(number(t, e.Fields["failures"]))
		retry := time.Duration(number(t, e.Fields["retryInNs"]))
		want := 16 * time.Second
		if failures <= 5 {
			want = time.Second << (failures - 1)
		}
		if retry < want*9/10 || retry > want*11/10 {
			t.Errorf("at %v after %d failures: retry in %v, want %v ±10%%", e.T, failures, retry, want)
		}
		seen++
	}
	if seen < 60 {
		t.Fatalf("only %d reconnect delays in 60 outages", seen)
	}
	// No storm: one attempt per backoff step, at most three per 6s outage.
	if connects > 60*3+10 {
		t.Fatalf("%d connection attempts for 60 short outages", connects)
	}
	t.Logf("%d backoff delays checked, %d connection attempts", seen, connects)
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// firstDiff shows the first lines where two traces part.
func number(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestSwarm runs generated schedules with every invariant on.
func TestSwarm(t *testing.T) {
	n := *swarmSeeds
	if n == 0 {
		n = 50
		if raceEnabled {
			n = 5
		}
	}
	for seed := int64(1); seed <= int64(n); seed++ {
		sc, err := spec.Parse([]byte(swarm.Generate(seed)))
		if err != nil {
			t.Fatalf("seed %d does not parse: %v\n%s", seed, err, swarm.Generate(seed))
		}
		bubble.Host(t)
		res, err := runner.Run(sc, runner.Options{TolerateActionErrors: true})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !res.Summary.Pass {
			t.Errorf("seed %d failed (rds-scenario swarm --seeds %d..%d): %v", seed, seed, seed, res.Summary.Failures)
		}
	}
}

// TestIdleSkipKeepsTraces: skipping the engine's per-instant pass at idle
// instants (engine/idle.go) changes no trace, for every shipped scenario and
// a swarm of generated ones, hang and latency faults included.
func TestIdleSkipKeepsTraces(t *testing.T) {
	same := func(t *testing.T, name string, play func(runner.Options) *runner.Result) {
		full, skipping := play(runner.Options{NoIdleSkip: true}), play(runner.Options{})
		if !bytes.Equal(full.Trace, skipping.Trace) {
			t.Errorf("%s: the idle skip changed the trace: %s", name, trace.FirstDivergence(full.Trace, skipping.Trace))
		}
		if full.Summary.IdleSteps != 0 {
			t.Errorf("%s: %d idle steps skipped with the skip off", name, full.Summary.IdleSteps)
		}
		if skipping.Summary.Steps != full.Summary.Steps {
			t.Errorf("%s: %d clock steps with the skip, %d without", name, skipping.Summary.Steps, full.Summary.Steps)
		}
	}
	for _, file := range shipped(t) {
		same(t, file, func(o runner.Options) *runner.Result { return run(t, file, o) })
	}
	// The skip is there to be taken: most instants of the incident's outage
	// are the RDS manager's idle probes.
	if res := run(t, "incidents/rds-crash-2026-02-05.yaml", runner.Options{}); res.Summary.IdleSteps < res.Summary.Steps/2 {
		t.Errorf("incident: %d of %d clock steps skipped the pass as idle, want most", res.Summary.IdleSteps, res.Summary.Steps)
	}
	seeds := int64(20)
	if raceEnabled {
		seeds = 3
	}
	for seed := int64(1); seed <= seeds; seed++ {
		sc, err := spec.Parse([]byte(swarm.Generate(seed)))
		if err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("swarm seed %d", seed), func(o runner.Options) *runner.Result {
			bubble.Host(t)
			o.TolerateActionErrors = true
			res, err := runner.Run(sc, o)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			return res
		})
	}
}

// TestSwarmGeneratesTheSameScenario: a seed is a scenario.
func TestSwarmGeneratesTheSameScenario(t *testing.T) {
	if swarm.Generate(9) != swarm.Generate(9) || swarm.Generate(9) == swarm.Generate(10) {
		t.Fatal("swarm.Generate is not a function of its seed")
	}
}

// TestReportRenders: the HTML report of a real run is produced and names
// the scenario.
func TestReportRenders(t *testing.T) {
	res := run(t, "kubelet-restart.yaml", runner.Options{})
	events, err := res.Events()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := report.HTML(&b, res.Summary, events); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "kubelet-restart") || !strings.Contains(b.String(), "<svg") {
		t.Fatal("report lacks the scenario name or the timeline picture")
	}
}

// TestHungRDSKeepsProbeNotReady guards a defect the swarm found: a hung RDS
// completes SSH handshakes, so the manager reconnected at once after each
// failed health check and reported Connected (Probe ready) until the next
// check. A connect now counts only once RDS answers a command. It also
// guards the barrier's handling of a parked call whose deadline fires (the
// caller is runnable while the emulator still holds the command): missing
// that let time run past the failing check under load, so the three runs
// must pass and give one trace.
func TestHungRDSKeepsProbeNotReady(t *testing.T) {
	var first []byte
	for i := 0; i < 3; i++ {
		res := run(t, "rds-hang.yaml", runner.Options{})
		if !res.Summary.Pass {
			t.Fatalf("run %d: %v", i+1, res.Summary.Failures)
		}
		if first == nil {
			first = res.Trace
		} else if res.Summary.TraceHash != hashOf(first) {
			t.Errorf("run %d differs from run 1: %s", i+1, trace.FirstDivergence(first, res.Trace))
		}
	}
}

// TestSwarmFindsPlantedBugs: the swarm's default mix finds a defect that
// only a hung RDS exposes and one that only an ordering of one instant
// exposes, each within 500 seeds. The seed that finds the first passes
// without the hang; the one that finds the second passes with the order
// fixed. Both pass without the defect.
func TestSwarmFindsPlantedBugs(t *testing.T) {
	bubble.Host(t)
	for _, c := range []struct {
		name string
		bugs engine.Bugs
		// without is the same scenario without what exposes the defect.
		without func(sc *spec.Scenario) (*spec.Scenario, runner.Options)
	}{
		{"health check without deadline", engine.Bugs{HealthCheckWithoutDeadline: true},
			func(sc *spec.Scenario) (*spec.Scenario, runner.Options) {
				return withoutFault(sc, "rds.hang"), runner.Options{}
			}},
		{"replies by position", engine.Bugs{RepliesByPosition: true},
			func(sc *spec.Scenario) (*spec.Scenario, runner.Options) { return sc, runner.Options{FixedOrder: true} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			for seed := int64(1); seed <= 500; seed++ {
				sc, err := spec.Parse([]byte(swarm.Generate(seed)))
				if err != nil {
					t.Fatal(err)
				}
				res, err := runner.Run(sc, runner.Options{TolerateActionErrors: true, Bugs: c.bugs})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if res.Summary.Pass {
					continue
				}
				t.Logf("found by seed %d: %v", seed, res.Summary.Failures)
				clean, err := runner.Run(sc, runner.Options{TolerateActionErrors: true})
				if err != nil || !clean.Summary.Pass {
					t.Fatalf("seed %d fails without the defect too: %v %v", seed, err, clean.Summary.Failures)
				}
				alt, o := c.without(sc)
				o.TolerateActionErrors, o.Bugs = true, c.bugs
				other, err := runner.Run(alt, o)
				if err != nil || !other.Summary.Pass {
					t.Fatalf("seed %d still fails without what should expose the defect: %v %v", seed, err, other.Summary.Failures)
				}
				return
			}
			t.Fatal("500 seeds did not find the planted defect")
		})
	}
}

// withoutFault is sc without the steps that apply the named fault (and
// the expectations those steps carry).
func withoutFault(sc *spec.Scenario, fault string) *spec.Scenario {
	out := *sc
	out.Timeline = nil
	for _, st := range sc.Timeline {
		if st.Do == nil || st.Do.Name != fault {
			out.Timeline = append(out.Timeline, st)
		}
	}
	return &out
}
