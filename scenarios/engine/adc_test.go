package engine

import (
	"testing"
	"time"
)

// drive steps the operation from one due instant to the next until it
// reports, for at most limit; it returns the outcome and when.
func drive(a *adcAttach, va *vaState, from time.Time, limit time.Duration) (string, time.Time) {
	now := from
	for now.Sub(from) <= limit {
		if r := a.step(now, va); r != "" {
			return r, now
		}
		next, ok := a.due()
		if !ok {
			break
		}
		now = next
	}
	return "", now
}

func TestADCAttachOperation(t *testing.T) {
	t0 := time.Unix(0, 0)
	t.Run("attached before the first look", func(t *testing.T) {
		var a adcAttach
		r, at := drive(&a, &vaState{attached: true}, t0, time.Minute)
		if r != "attached" || at.Sub(t0) != adcFirstPoll || !a.confirmed {
			t.Fatalf("%s at %v, want attached at %v", r, at.Sub(t0), adcFirstPoll)
		}
	})
	t.Run("an attach error fails at once and backs off", func(t *testing.T) {
		var a adcAttach
		va := &vaState{attachErr: true}
		now := t0
		var waits []time.Duration
		for i := 0; i < 12; i++ {
			r, at := drive(&a, va, now, time.Hour)
			if r != "failed" {
				t.Fatalf("try %d: %q", i, r)
			}
			waits = append(waits, a.nextOp.Sub(at))
			now = a.nextOp
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 32 * time.Second, 64 * time.Second, adcRetryMax, adcRetryMax, adcRetryMax, adcRetryMax}
		for i := range want {
			if waits[i] != want[i] {
				t.Fatalf("backoff %v, want %v", waits, want)
			}
		}
		// The attacher succeeds meanwhile: nothing happens before the
		// backoff ends, then the first look confirms it.
		va.attached, va.attachErr = true, false
		if r := a.step(now.Add(-time.Second), va); r != "" {
			t.Fatalf("acted inside its backoff: %q", r)
		}
		r, at := drive(&a, va, now, time.Minute)
		if r != "attached" || at.Sub(now) != adcFirstPoll {
			t.Fatalf("%s %v after the backoff, want attached after %v", r, at.Sub(now), adcFirstPoll)
		}
	})
	t.Run("no status times out after two minutes", func(t *testing.T) {
		var a adcAttach
		r, at := drive(&a, &vaState{}, t0, time.Hour)
		if r != "failed" || at.Sub(t0) < adcAttachTimeout || at.Sub(t0) > adcAttachTimeout+adcPollMax {
			t.Fatalf("%s at %v, want failed about %v in", r, at.Sub(t0), adcAttachTimeout)
		}
	})
}
