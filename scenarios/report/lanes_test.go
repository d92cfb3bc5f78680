package report

import (
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// TestFaultLanePerKey: a node fault is applied with its node as a parameter
// and ended under its key ("node.not-ready/node-1"); the bar it opened
// closes there, and two nodes down at once get a lane each.
func TestFaultLanePerKey(t *testing.T) {
	applied := func(at time.Duration, node string) Event {
		return Event{T: at, Kind: trace.KindFaultApplied, Fields: map[string]any{trace.FieldFault: "node.not-ready",
			trace.ParamPrefix + "node": node}}
	}
	ended := func(at time.Duration, node string) Event {
		return Event{T: at, Kind: trace.KindFaultEnded, Fields: map[string]any{trace.FieldFault: trace.FaultKey("node.not-ready", node)}}
	}
	m := buildModel([]Event{applied(time.Minute, "node-1"), applied(2*time.Minute, "node-2"),
		ended(3*time.Minute, "node-1"), ended(4*time.Minute, "node-2")}, 10*time.Minute, 100)
	if len(m.faults) != 2 {
		t.Fatalf("%d fault lanes, want one per node", len(m.faults))
	}
	for i, want := range []struct {
		name     string
		from, to time.Duration
	}{{"node.not-ready/node-1", time.Minute, 3 * time.Minute}, {"node.not-ready/node-2", 2 * time.Minute, 4 * time.Minute}} {
		f := m.faults[i]
		if f.name != want.name || len(f.bars) != 1 || f.bars[0].Open || f.bars[0].From != want.from || f.bars[0].To != want.to {
			t.Errorf("lane %d: %s %+v, want %s closed from %v to %v", i, f.name, f.bars, want.name, want.from, want.to)
		}
	}
}
