package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Trace collects events (trace.Event: the schema lives in scenarios/trace);
// encoding/json writes map keys sorted, so a line's bytes depend only on its
// content. The events of one release (what one timer, one call or one fault
// set going, up to the next standstill) are buffered and, at the standstill
// (Flush), sorted by their encoded bytes and only then written: goroutines a
// release wakes together cannot reorder its lines, while the order of the
// releases of one instant, which the seed draws, stays in the trace.
type Trace struct {
	mu      sync.Mutex
	pending [][]byte
	out     bytes.Buffer
	events  []trace.Event // flushed, in trace order
	pendEv  []trace.Event
	count   int64
}

func (t *Trace) add(e trace.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		b, _ = json.Marshal(trace.Event{T: e.T, Kind: trace.KindTraceError, Fields: map[string]any{trace.FieldErr: err.Error()}})
	}
	t.mu.Lock()
	t.pending = append(t.pending, b)
	t.pendEv = append(t.pendEv, e)
	t.count++
	t.mu.Unlock()
}

// Flush writes the buffered events in canonical order.
func (t *Trace) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := make([]int, len(t.pending))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ea, eb := t.pendEv[idx[a]], t.pendEv[idx[b]]
		if ea.T != eb.T {
			return ea.T < eb.T
		}
		return bytes.Compare(t.pending[idx[a]], t.pending[idx[b]]) < 0
	})
	for _, i := range idx {
		t.out.Write(t.pending[i])
		t.out.WriteByte('\n')
		t.events = append(t.events, t.pendEv[i])
	}
	t.pending, t.pendEv = t.pending[:0], t.pendEv[:0]
}

// Bytes is the flushed trace (JSON lines).
func (t *Trace) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.out.Bytes())
}

// Events returns the flushed events, in trace order.
func (t *Trace) Events() []trace.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]trace.Event(nil), t.events...)
}

// Hash is the hex sha256 of the flushed trace.
func (t *Trace) Hash() string {
	s := sha256.Sum256(t.Bytes())
	return hex.EncodeToString(s[:])
}

func (t *Trace) generation() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// Record adds an event at virtual time at (since the start); the scenario
// runner traces its expectations with it.
func (t *Trace) Record(at time.Duration, kind trace.Kind, fields map[string]any) {
	t.add(trace.Event{T: at, Kind: kind, Fields: fields})
}
