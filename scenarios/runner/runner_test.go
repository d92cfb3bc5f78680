package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/bubble"

	"github.com/rds-csi/rds-csi/internal/quietlog"
	"github.com/rds-csi/rds-csi/scenarios/report"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// TestMain keeps klog quiet unless -v is given.
func TestMain(m *testing.M) { quietlog.Main(m) }

// cluster is the head of every scenario here: two nodes, one volume on
// node-a, one VM disk that no node runs.
const cluster = `name: runner-test
seed: 12
topology:
  nodes: [node-a, node-b]
volumes:
  - {name: "db-{1..3}", size: 1GiB, attachedTo: node-a}
  - {name: vm-1, size: 1GiB, access: RWX, mode: block}
timeline:
`

func parse(t *testing.T, timeline string) *spec.Scenario {
	t.Helper()
	sc, err := spec.Parse([]byte(cluster + timeline))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func play(t *testing.T, sc *spec.Scenario, o Options) *Result {
	t.Helper()
	bubble.Host(t)
	res, err := Run(sc, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func events(t *testing.T, res *Result) []report.Event {
	t.Helper()
	evs, err := res.Events()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// at returns the instants at which events of kind with field k = v were
// traced.
func at(evs []report.Event, kind, k, v string) []time.Duration {
	var out []time.Duration
	for _, e := range evs {
		if string(e.Kind) == kind && e.Text(k) == v {
			out = append(out, e.T)
		}
	}
	return out
}

// crash is an RDS outage of 30s at 1m that the driver must notice and
// recover from.
const crash = `  - at: 1m
    do: rds.crash
    for: 30s
    expect: {probe: not-ready, within: 10s}
  - at: 2m
    expect: {rds: connected, within: 20s}
`

// TestRunPlaysTheTimeline: faults start at their instant and end after their
// for:, expectations are traced as they hold, and the summary says how to
// reproduce the run.
func TestRunPlaysTheTimeline(t *testing.T) {
	res := play(t, parse(t, crash), Options{})
	s := res.Summary
	if !s.Pass || len(s.Failures) != 0 {
		t.Fatalf("failed: %v", s.Failures)
	}
	if s.Scenario != "runner-test" || s.Seed != 12 || s.Reproduce != "rds-scenario run <file> --seed 12" {
		t.Fatalf("summary %+v", s)
	}
	if s.Virtual < 2*time.Minute || s.Events != len(events(t, res)) {
		t.Fatalf("virtual %v, %d events counted, %d traced", s.Virtual, s.Events, len(events(t, res)))
	}
	evs := events(t, res)
	if got := at(evs, "fault.applied", "fault", "rds.crash"); len(got) != 1 || got[0] != time.Minute {
		t.Errorf("rds.crash applied at %v, want [1m0s]", got)
	}
	if got := at(evs, "fault.ended", "fault", "rds.crash"); len(got) != 1 || got[0] != 90*time.Second {
		t.Errorf("rds.crash ended at %v, want [1m30s] (for: 30s)", got)
	}
	for _, name := range []string{"line 12: {probe: not-ready, within: 10s}", "line 14: {rds: connected, within: 20s}"} {
		if got := at(evs, "expect", "name", name); len(got) != 1 {
			t.Errorf("expectation %q traced at %v, want once", name, got)
		}
	}
	if sum := sha256.Sum256(res.Trace); s.TraceHash != hex.EncodeToString(sum[:]) {
		t.Error("TraceHash is not the hash of Trace")
	}
}

// TestRunIsDeterministic: the same scenario and seed give the same trace;
// Options.Seed replaces the file's seed, and the reproduce command says so.
func TestRunIsDeterministic(t *testing.T) {
	sc := parse(t, crash)
	first, second := play(t, sc, Options{}), play(t, sc, Options{})
	if first.Summary.TraceHash != second.Summary.TraceHash {
		t.Fatal("two runs of one scenario and seed gave two traces")
	}
	seed := int64(7)
	other := play(t, sc, Options{Seed: &seed, File: "x.yaml"})
	if other.Summary.Seed != 7 || other.Summary.Reproduce != "rds-scenario run x.yaml --seed 7" {
		t.Fatalf("with seed 7: %+v", other.Summary)
	}
	if other.Summary.TraceHash == first.Summary.TraceHash {
		t.Fatal("seed 7 replayed seed 12's reconnect jitter")
	}
}

// TestFailedExpectations: an expectation that does not hold fails the run,
// named by its line, whether it waits (within), watches (always) or forbids
// (never).
func TestFailedExpectations(t *testing.T) {
	for _, tc := range []struct {
		name, timeline, want string
	}{
		{"within", "  - at: 30s\n    expect: {rds: disconnected, within: 20s}\n",
			"line 10: {rds: disconnected, within: 20s}: not within 20s: rds connected"},
		{"always", "  - at: 30s\n    expect: {probe: ready, always: 2m}\n  - at: 1m\n    do: rds.crash\n    for: 30s\n",
			"line 10: {probe: ready, always: 2m0s}: broken at 1m0s (after 30s): probe ready=false"},
		{"never", "  - at: 30s\n    expect: {volumes: db-1, attachedTo: [], never: 1m}\n  - at: 1m\n    do: \"volume.detach {volume: db-1}\"\n",
			"line 10: {volumes: db-1, attachedTo: [], never: 1m0s}: broken at 1m0s (after 30s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := play(t, parse(t, tc.timeline), Options{})
			if res.Summary.Pass || len(res.Summary.Failures) != 1 || !strings.Contains(res.Summary.Failures[0], tc.want) {
				t.Fatalf("failures %q, want one containing %q", res.Summary.Failures, tc.want)
			}
		})
	}
}

// TestVolumePatternsFanOut: an action naming a volume pattern is applied to
// every volume it matches.
func TestVolumePatternsFanOut(t *testing.T) {
	res := play(t, parse(t, `  - at: 1m
    do: "volume.detach {volume: db-*}"
    expect: {volumes: "db-{1..3}", attachedTo: [], within: 1m}
`), Options{})
	if !res.Summary.Pass {
		t.Fatalf("failed: %v", res.Summary.Failures)
	}
	if got := at(events(t, res), "action", "action", "volume.detach"); len(got) != 3 {
		t.Fatalf("volume.detach applied %d times, want once per db volume", len(got))
	}
}

// TestRefusedActions: an action the world refuses (a migration of a VM that
// runs nowhere) fails the run, unless the run tolerates it, as the swarm's
// does; then it is traced.
func TestRefusedActions(t *testing.T) {
	sc := parse(t, "  - at: 1m\n    do: \"kubevirt.migrate {vm: vm-1, to: node-b}\"\n")
	strict := play(t, sc, Options{})
	if strict.Summary.Pass || len(strict.Summary.Failures) != 1 ||
		!strings.Contains(strict.Summary.Failures[0], `1m0s: line 9: "kubevirt.migrate {to: node-b, vm: vm-1}": `) {
		t.Fatalf("failures %q", strict.Summary.Failures)
	}
	tolerant := play(t, sc, Options{TolerateActionErrors: true})
	if !tolerant.Summary.Pass {
		t.Fatalf("failed: %v", tolerant.Summary.Failures)
	}
	if got := at(events(t, tolerant), "action.refused", "action", sc.Timeline[0].Do.String()); len(got) != 1 || got[0] != time.Minute {
		t.Fatalf("refusal traced at %v, want [1m0s]", got)
	}
}

// TestCheck reads the file, names it in the summary and fails on a file
// that does not parse.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(path, []byte(cluster+"  - at: 1m\n    expect: {probe: ready}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bubble.Host(t)
	res, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.Pass || res.Summary.File != path || res.Summary.Reproduce != "rds-scenario run "+path+" --seed 12" {
		t.Fatalf("summary %+v", res.Summary)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(cluster+"  - at: 1m\n    do: rds.crsh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(bad, Options{}); err == nil || !strings.Contains(err.Error(), "rds.crsh") {
		t.Fatalf("Check(bad.yaml) = %v", err)
	}
}
