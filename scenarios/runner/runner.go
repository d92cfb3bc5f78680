package runner

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/internal/bubble"
	"github.com/rds-csi/rds-csi/scenarios/trace"

	"github.com/rds-csi/rds-csi/scenarios/engine"
	"github.com/rds-csi/rds-csi/scenarios/report"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// Options tune one run.
type Options struct {
	// Seed overrides the scenario's seed when set.
	Seed *int64
	// File is the scenario's path, for the reproduce command.
	File string
	// Bugs plants defects (tests only).
	Bugs engine.Bugs
	// FixedOrder releases what one instant holds in canonical order instead
	// of one drawn from the seed (engine.Options.FixedOrder).
	FixedOrder bool
	// NoIdleSkip runs the engine's per-instant pass at idle instants too
	// (engine.Options.NoIdleSkip): the trace is the same, only slower.
	NoIdleSkip bool
	// TolerateActionErrors traces an action the world refuses (a migration
	// of a VM that is not on one node) instead of failing the run: generated
	// schedules may ask for such things.
	TolerateActionErrors bool
}

// Result is one run's outcome.
type Result struct {
	Summary report.Summary
	// Trace is the JSONL trace.
	Trace []byte
}

// Run plays a parsed scenario on a fresh World, in a bubble of its own
// (internal/bubble: the process must host bubbles), and checks its
// expectations and invariants. An error means the run could not be carried
// out (the engine failed); a failed expectation is a Result with Pass false.
// Summary.Wall is real time, measured outside the bubble.
func Run(sc *spec.Scenario, o Options) (*Result, error) {
	begin := time.Now()
	var res *Result
	var err error
	if berr := bubble.Run(func() { res, err = playOnce(sc, o) }); berr != nil {
		return nil, berr
	}
	if err != nil {
		return nil, err
	}
	res.Summary.Wall = time.Since(begin)
	return res, nil
}

func playOnce(sc *spec.Scenario, o Options) (*Result, error) {
	seed := sc.Seed
	if o.Seed != nil {
		seed = *o.Seed
	}
	r := &run{sc: sc, tolerate: o.TolerateActionErrors}
	w, err := engine.NewWorld(engine.Options{
		Seed: uint64(seed), Nodes: sc.Topology.Nodes, Replicas: sc.Topology.Controller.Replicas,
		GracePeriod: sc.Topology.Controller.GracePeriod, ReconcileInterval: sc.Topology.Controller.ReconcileInterval,
		MigrationWindow: sc.Topology.Controller.MigrationWindow, PoolSize: sc.Topology.RDS.Size, Bugs: o.Bugs,
		RestrictHosts: sc.Topology.Controller.RestrictHosts, FixedOrder: o.FixedOrder, NoIdleSkip: o.NoIdleSkip,
	})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	r.w = w
	w.OnInstant(r.evaluate)
	if err := r.play(); err != nil {
		r.fail(fmt.Sprintf("%v: run stopped: %v", w.Now(), err))
	}
	listed := map[string]bool{}
	for _, name := range sc.Invariants {
		listed[name] = true
	}
	for _, v := range w.Violations() {
		if listed[v.Invariant] {
			r.fail("invariant " + v.String())
		}
	}
	w.Trace().Flush()
	reproduce := fmt.Sprintf("rds-scenario run %s --seed %d", orDefault(o.File, "<file>"), seed)
	return &Result{
		Summary: report.Summary{Scenario: sc.Name, File: o.File, Seed: seed, Pass: len(r.failures) == 0, Failures: r.failures,
			Virtual: w.Now(), Steps: w.VirtualSteps(), IdleSteps: w.IdleSteps(), TraceHash: w.TraceHash(),
			Events: len(w.Trace().Events()), Reproduce: reproduce},
		Trace: w.Trace().Bytes(),
	}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

type run struct {
	sc       *spec.Scenario
	w        *engine.World
	monitors []*monitor
	failures []string
	tolerate bool
}

// monitor is one expectation being watched over its window.
type monitor struct {
	exp      spec.Expectation
	name     string
	from, to time.Duration
	done     bool
}

func (r *run) fail(msg string) { r.failures = append(r.failures, msg) }

func (r *run) play() error {
	w, sc := r.w, r.sc
	for _, v := range sc.AllVolumes() {
		err := w.CreateVolume(engine.Volume{Name: v.Name, Size: v.Size, RWX: v.Access == spec.RWX, Block: v.Mode == spec.Block},
			v.AttachedTo)
		if err != nil {
			return err
		}
	}
	if err := w.Advance(0); err != nil {
		return err
	}
	type end struct {
		at  time.Duration
		key string
	}
	var ends []end
	endDue := func(upTo time.Duration) error {
		sort.SliceStable(ends, func(i, j int) bool { return ends[i].at < ends[j].at })
		for len(ends) > 0 && ends[0].at <= upTo {
			e := ends[0]
			ends = ends[1:]
			if err := w.Advance(e.at); err != nil {
				return err
			}
			if err := w.EndFault(e.key); err != nil {
				return err
			}
		}
		return nil
	}
	for _, st := range sc.Timeline {
		if err := endDue(st.At); err != nil {
			return err
		}
		if err := w.Advance(st.At); err != nil {
			return err
		}
		if st.Do != nil {
			params := maps(st.Do.Params)
			if err := r.apply(st.Do.Name, params); err != nil && r.tolerate {
				w.Trace().Record(w.Now(), trace.KindActionRefused, map[string]any{trace.FieldAction: st.Do.String(), trace.FieldErr: err.Error()})
			} else if err != nil {
				r.fail(fmt.Sprintf("%v: line %d: %s: %v", w.Now(), st.Line, st.Do.String(), err))
			} else if st.For > 0 {
				ends = append(ends, end{st.At + st.For, engine.FaultKey(st.Do.Name, params)})
				w.Wake(st.At + st.For)
			}
		}
		for _, e := range st.Expect {
			m := &monitor{exp: e, name: fmt.Sprintf("line %d: %s", e.Line, e.String()), from: st.At, to: st.At + e.Window()}
			r.monitors = append(r.monitors, m)
			w.Wake(m.to)
		}
		// Evaluate the new expectations at this very instant.
		if err := w.Advance(w.Now()); err != nil {
			return err
		}
		r.evaluate()
	}
	if err := endDue(time.Duration(1 << 62)); err != nil {
		return err
	}
	last := w.Now()
	for _, m := range r.monitors {
		last = max(last, m.to)
	}
	return w.Advance(last)
}

// apply performs an action; volume patterns fan out to every volume.
func (r *run) apply(name string, params map[string]string) error {
	pattern, ok := params["volume"]
	if !ok {
		return r.w.Apply(name, params)
	}
	vols, err := r.sc.MatchVolumes(pattern)
	if err != nil {
		return err
	}
	for _, v := range vols {
		p := maps(params)
		p["volume"] = v.Name
		if err := r.w.Apply(name, p); err != nil {
			return err
		}
	}
	return nil
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// evaluate checks every open expectation at the current instant.
func (r *run) evaluate() {
	now := r.w.Now()
	for _, m := range r.monitors {
		if m.done || now < m.from {
			continue
		}
		holds, detail := r.holds(m.exp.Subject)
		switch m.exp.Kind {
		case spec.Eventually:
			if holds {
				m.done = true
				r.w.Trace().Record(now, trace.KindExpect, map[string]any{trace.FieldName: m.name, trace.FieldOk: true, trace.FieldAfter: (now - m.from).String()})
			} else if now >= m.to {
				m.done = true
				r.failExpect(m, fmt.Sprintf("not within %v: %s", m.exp.Within, detail))
			}
		case spec.Always, spec.Never:
			if holds == (m.exp.Kind == spec.Never) {
				m.done = true
				r.failExpect(m, fmt.Sprintf("broken at %v (after %v): %s", now, now-m.from, detail))
			} else if now >= m.to {
				m.done = true
				r.w.Trace().Record(now, trace.KindExpect, map[string]any{trace.FieldName: m.name, trace.FieldOk: true, trace.FieldAfter: m.exp.For.String()})
			}
		}
	}
}

func (r *run) failExpect(m *monitor, why string) {
	r.w.Trace().Record(r.w.Now(), trace.KindExpect, map[string]any{trace.FieldName: m.name, trace.FieldOk: false, trace.FieldMsg: why})
	r.fail(fmt.Sprintf("%v: %s: %s", r.w.Now(), m.name, why))
}

// holds evaluates a subject now, with a description of what was seen.
func (r *run) holds(s spec.Subject) (bool, string) {
	w := r.w
	switch s := s.(type) {
	case spec.ProbeState:
		got := w.Probe()
		return got == s.Ready, fmt.Sprintf("probe ready=%v", got)
	case spec.RDSState:
		st := w.RDSState()
		return (st.String() == "connected") == s.Connected, "rds " + st.String()
	case spec.VolumeAttachments:
		vols, err := r.sc.MatchVolumes(s.Pattern)
		if err != nil {
			return false, err.Error()
		}
		want := slices.Clone(s.AttachedTo)
		sort.Strings(want)
		var bad []string
		for _, v := range vols {
			if got := w.AttachedTo(v.Name); !slices.Equal(got, want) {
				bad = append(bad, fmt.Sprintf("%s on %v", v.Name, got))
			}
		}
		return len(bad) == 0, "attached: " + strings.Join(firstN(bad, 5), ", ")
	case spec.EventCount:
		n := w.EventCount(s.Reason)
		if s.AtLeast {
			return n >= s.Count, fmt.Sprintf("%d %s events", n, s.Reason)
		}
		return n == s.Count, fmt.Sprintf("%d %s events", n, s.Reason)
	case spec.ClaimState:
		vols, err := r.sc.MatchVolumes(s.Volume)
		if err != nil {
			return false, err.Error()
		}
		want := slices.Clone(s.Nodes)
		sort.Strings(want)
		var bad []string
		for _, v := range vols {
			if got := w.Claims(v.Name); !slices.Equal(got, want) {
				bad = append(bad, fmt.Sprintf("%s claimed by %v", v.Name, got))
			}
		}
		return len(bad) == 0, "claims: " + strings.Join(firstN(bad, 5), ", ")
	}
	return false, fmt.Sprintf("unknown subject %T", s)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// Check parses and runs a scenario file.
func Check(path string, o Options) (*Result, error) {
	sc, err := spec.Load(path)
	if err != nil {
		return nil, err
	}
	o.File = path
	return Run(sc, o)
}

// Events parses a result's trace for the report.
func (r *Result) Events() ([]report.Event, error) { return report.Parse(bytes.NewReader(r.Trace)) }
