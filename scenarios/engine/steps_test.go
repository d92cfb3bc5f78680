package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// A programmatic timeline for the engine's own tests: the scenario runner
// drives a World through Apply, OnInstant and Wake instead, so none of this
// is part of the package's API.

// Step is one timed action of a programmatic timeline.
type Step struct {
	At   time.Duration
	Name string
	Do   func(w *World) error
}

// Run plays steps in time order (stable for equal times).
func (w *World) Run(steps []Step) error {
	steps = append([]Step(nil), steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	for _, s := range steps {
		if err := w.Advance(s.At); err != nil {
			return err
		}
		w.record(trace.KindStep, map[string]any{trace.FieldName: s.Name})
		if err := s.Do(w); err != nil {
			return fmt.Errorf("step %q at %v: %w", s.Name, s.At, err)
		}
		if err := w.Advance(w.Now()); err != nil {
			return err
		}
	}
	return nil
}

// Fault is a Step applying a catalogued fault; End one ending it.
func Fault(at time.Duration, name string, params map[string]string) Step {
	return Step{At: at, Name: "fault " + name, Do: func(w *World) error { return w.ApplyFault(name, params) }}
}

// End is a Step ending the fault started under key.
func End(at time.Duration, key string) Step {
	return Step{At: at, Name: "end " + key, Do: func(w *World) error { return w.EndFault(key) }}
}

// Until advances virtual time until pred holds, for at most within, and
// returns how long it took.
func (w *World) Until(within time.Duration, pred func() bool) (time.Duration, bool, error) {
	begin := w.Now()
	deadline := w.Clock.Now().Add(within)
	for {
		if err := w.quiesce(); err != nil {
			return 0, false, err
		}
		if pred() {
			return w.Now() - begin, true, nil
		}
		now := w.Clock.Now()
		if !now.Before(deadline) {
			return 0, false, nil
		}
		next, ok := w.nextInstant()
		if !ok || next.After(deadline) {
			next = deadline
		}
		w.stepTo(next)
	}
}

// Eventually advances virtual time until pred holds, for at most within. The
// check is traced with the virtual time it succeeded at (or failed).
func (w *World) Eventually(name string, within time.Duration, pred func() bool) (time.Duration, error) {
	took, ok, err := w.Until(within, pred)
	if err != nil {
		return 0, err
	}
	if !ok {
		w.record(trace.KindExpect, map[string]any{trace.FieldName: name, trace.FieldOk: false, trace.FieldWithin: within.String()})
		w.trace.Flush()
		return 0, fmt.Errorf("expectation %q not met within %v", name, within)
	}
	w.record(trace.KindExpect, map[string]any{trace.FieldName: name, trace.FieldOk: true, trace.FieldAfter: took.String()})
	w.trace.Flush()
	return took, nil
}

// Check records an expectation evaluated now.
func (w *World) Check(name string, ok bool) error {
	w.record(trace.KindExpect, map[string]any{trace.FieldName: name, trace.FieldOk: ok})
	w.trace.Flush()
	if !ok {
		return fmt.Errorf("expectation %q failed at %v", name, w.Now())
	}
	return nil
}
