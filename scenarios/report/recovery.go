package report

import (
	"strconv"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Recovery is the interval from the RDS connection coming back after a loss
// to every VolumeAttachment that was waiting at that moment attached again:
// what the controller measures as rds_csi_recovery_duration_seconds.
type Recovery struct {
	Start time.Duration // the RDS connection is back
	// End is when every displaced volume was attached (Done), when the
	// connection was lost again (Abandoned), or the end of the trace.
	End       time.Duration
	Done      bool
	Abandoned bool
	// Event: End is the controller's RecoveryCompleted event, not derived
	// from the VolumeAttachments in the trace.
	Event     bool
	Msg       string // the RecoveryCompleted message
	Displaced int    // VolumeAttachments waiting to attach at Start
	Attached  int    // of those, attached by End
	// Restored is when the fault that kept RDS away ended (RestoredBy:
	// "rds.restart", "rds.crash ended"), if that is in the trace: the
	// reconnect follows it by the probe's interval, which Start-End leaves out.
	Restored    time.Duration
	RestoredBy  string
	HasRestored bool
}

const reasonRecoveryCompleted = "RecoveryCompleted"

// What a VolumeAttachment op means for a recovery, in the order the ops
// happen; ops not listed (retry-requested) change nothing.
const (
	vaOther = iota
	vaWaiting
	vaAttached
	vaGone
)

var vaOrder = map[string]int{"create": vaWaiting, "attach-failed": vaWaiting, "attached": vaAttached, "detach": vaGone, "deleted": vaGone}

// Recoveries finds the recoveries of a trace. A transition of the RDS
// connection to connected after a loss starts one; the controller's
// RecoveryCompleted event ends it; without that event, the last attach of a
// displaced volume does, if none waits any more. A loss before the end
// abandons it; one still running at the end of the trace is open. A
// reconnect that displaced nothing and brought no RecoveryCompleted is not a
// recovery (the controller does not count it either) and is left out.
func Recoveries(events []Event) []Recovery {
	events = sortedEvents(events)
	var (
		out       []Recovery
		cur       *Recovery
		waiting   = map[[2]string]bool{} // node, volume of VAs waiting to attach
		displaced map[[2]string]bool     // those of them waiting at cur.Start
		emptied   time.Duration          // when displaced last became empty
		isUp      bool                   // connected
		lost      bool                   // connected once and lost since: the next connect is a recovery
		restored  time.Duration
		restBy    string
	)
	// settle ends cur without a RecoveryCompleted event, at t.
	settle := func(t time.Duration, abandoned bool) {
		if cur == nil {
			return
		}
		switch {
		case cur.Displaced == 0:
			cur = nil // nothing was displaced: not a recovery
			return
		case len(displaced) == 0:
			cur.End, cur.Done = emptied, true
		default:
			cur.End, cur.Abandoned = t, abandoned
		}
		out = append(out, *cur)
		cur = nil
	}
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].T == events[i].T {
			j++
		}
		group, t := events[i:j], events[i].T
		i = j
		// The events of one instant are ordered by their bytes, not
		// causally; a reconnect and its RecoveryCompleted share an instant,
		// so faults go first, then the connection, then what followed.
		for _, e := range group {
			if e.Kind == trace.KindFaultApplied && e.Text(trace.FieldFault) == "rds.restart" {
				restored, restBy = t, "rds.restart"
			} else if name := e.Text(trace.FieldFault); e.Kind == trace.KindFaultEnded && (strings.HasPrefix(name, "rds.") || strings.HasPrefix(name, "network.")) {
				restored, restBy = t, clean(name)+" ended"
			}
		}
		// A reconnect and a loss of one instant are told apart by each
		// event's previous state, not by their order.
		up, down := false, false
		for _, e := range group {
			if e.Kind != trace.KindRDSState {
				continue
			}
			st, prev := e.Text(trace.FieldState), e.Text(trace.FieldPrevious)
			up = up || st == "connected" && prev != "connected"
			down = down || st != "connected" && (prev == "connected" || prev == "")
		}
		lose := func() {
			if isUp {
				settle(t, true)
				isUp, lost, restBy = false, true, ""
			}
		}
		if isUp && down {
			lose()
			down = false // the loss came first; a reconnect may follow it
		}
		if up && !isUp {
			if lost {
				cur = &Recovery{Start: t, Displaced: len(waiting)}
				if restBy != "" {
					cur.Restored, cur.RestoredBy, cur.HasRestored = restored, restBy, true
				}
				displaced = make(map[[2]string]bool, len(waiting))
				for k := range waiting {
					displaced[k] = true
				}
			}
			isUp, lost = true, false
		}
		if down {
			lose()
		}
		// A VolumeAttachment's ops of one instant apply in the order they
		// happen ("attached" sorts before "create"), the latest alone.
		last := map[[2]string]int{}
		var keys [][2]string
		for _, e := range group {
			if e.Kind != trace.KindVA {
				continue
			}
			k := [2]string{e.Text(trace.FieldNode), e.Text(trace.FieldVolume)}
			op := vaOrder[e.Text(trace.FieldOp)]
			if prev, ok := last[k]; ok {
				op = max(prev, op)
			} else {
				keys = append(keys, k)
			}
			last[k] = op
		}
		for _, k := range keys {
			switch last[k] {
			case vaWaiting:
				waiting[k] = true
			case vaAttached:
				delete(waiting, k)
				if cur != nil && displaced[k] {
					delete(displaced, k)
					cur.Attached++
					emptied = t
				}
			case vaGone:
				// Like the controller, a VolumeAttachment that is deleted
				// no longer holds the recovery open.
				delete(waiting, k)
				if cur != nil && displaced[k] {
					delete(displaced, k)
					emptied = t
				}
			}
		}
		for _, e := range group {
			if cur != nil && e.Kind == trace.KindK8sEvent && e.Text(trace.FieldReason) == reasonRecoveryCompleted {
				cur.End, cur.Done, cur.Event, cur.Msg = t, true, true, clean(e.Text(trace.FieldMsg))
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	if n := len(events); n > 0 {
		settle(events[n-1].T, false)
	}
	return out
}

// String is the recovery as one line of prose, e.g. "Recovery: RDS back at
// 3h10m00.301s → every volume attached 0.000 s later · 10 of 10 displaced
// volumes attached · rds.restart 0.301 s before the reconnect".
func (r Recovery) String() string {
	var b strings.Builder
	b.WriteString("Recovery: RDS back at " + stamp(r.Start) + " → ")
	d := seconds(r.End - r.Start)
	switch {
	case r.Done && r.Event:
		b.WriteString("every volume attached " + d + " later")
	case r.Done:
		b.WriteString("every volume attached " + d + " later (last attach; no RecoveryCompleted event)")
	case r.Abandoned:
		b.WriteString("abandoned: connection lost again " + d + " later")
	default:
		b.WriteString("not finished at the end of the trace, " + d + " later")
	}
	if r.Displaced > 0 {
		b.WriteString(" · " + strconv.Itoa(r.Attached) + " of " + plural(r.Displaced, "displaced volume", "displaced volumes") + " attached")
	}
	if r.HasRestored {
		b.WriteString(" · " + r.RestoredBy + " " + seconds(r.Start-r.Restored) + " before the reconnect")
	}
	return b.String()
}

// seconds formats a short interval in seconds ("0.301 s"), where span would
// switch units between neighbouring values; long ones as span. It truncates
// to the millisecond as stamp does, so that the times of a line add up.
func seconds(d time.Duration) string {
	if d < time.Minute {
		return strconv.FormatFloat(d.Truncate(time.Millisecond).Seconds(), 'f', 3, 64) + " s"
	}
	return span(d)
}
