package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.NetworkLatency, func(p params) (Fault, error) {
		lat, err := p.duration("latency")
		if err != nil {
			return nil, err
		}
		jit, err := p.duration("jitter")
		if err != nil {
			return nil, err
		}
		seed, _, err := p.seed("seed")
		if err != nil {
			return nil, err
		}
		return validated(NetworkLatency{Latency: lat, Jitter: jit, Seed: seed})
	})
}

// NetworkLatency is toxiproxy's latency toxic, applied to both directions
// (toxiproxy needs one toxic per stream for that): every chunk arrives
// Latency ± Jitter after it was sent, measured on the clock. Chunks keep their
// order and are delayed from their own arrival, so a stream pays the latency
// once, not once per chunk.
//
// Jitter is drawn, as toxiproxy draws it, uniformly from [Latency-Jitter,
// Latency+Jitter), from one stream per connection and direction seeded with
// (Seed, dial order, direction), one draw per instant at which the direction
// carries traffic (all that arrives at one clock instant shares its delay):
// how bytes written at one instant split into chunks depends on goroutine
// scheduling, the instants do not, so the same scenario with the same seed
// delays the same bytes by the same amounts, whatever the scheduling.
// Seed 0 means Targets.Seed. Undo releases held chunks at once, as removing
// a toxiproxy toxic does.
type NetworkLatency struct {
	Latency time.Duration
	Jitter  time.Duration
	Seed    uint64
}

// Name implements Fault.
func (NetworkLatency) Name() string { return catalog.NetworkLatency }

func (f NetworkLatency) validate() error {
	if f.Latency <= 0 {
		return invalid(f, "latency must be positive, got %s", f.Latency)
	}
	if f.Jitter < 0 || f.Jitter > f.Latency {
		return invalid(f, "jitter must be between 0 and latency (%s), got %s", f.Latency, f.Jitter)
	}
	return nil
}

// Apply implements Fault.
func (f NetworkLatency) Apply(_ context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	n, err := t.network(f.Name())
	if err != nil {
		return nil, err
	}
	seed := f.Seed
	if seed == 0 {
		seed = t.Seed
	}
	lt := &latencyToxic{latency: f.Latency, jitter: f.Jitter, seed: seed, ended: make(chan struct{})}
	n.mu.Lock()
	if n.latency != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", f.Name(), ErrActive)
	}
	n.latency = lt
	n.mu.Unlock()
	logApplied(f, "latency", f.Latency, "jitter", f.Jitter, "seed", seed)
	return undoOnce(f, func(context.Context) error {
		n.mu.Lock()
		if n.latency == lt {
			n.latency = nil
		}
		n.mu.Unlock()
		close(lt.ended)
		return nil
	}), nil
}

// latencyToxic is an active network.latency.
type latencyToxic struct {
	latency, jitter time.Duration
	seed            uint64
	ended           chan struct{} // closed by Undo
}

// stream returns the delays for one connection (numbered in dial order) and
// direction.
func (lt *latencyToxic) stream(conn uint64, dir direction) *jitterStream {
	return &jitterStream{lt: lt, r: rand.New(rand.NewPCG(lt.seed, conn<<1|uint64(dir)))}
}

type jitterStream struct {
	lt *latencyToxic
	r  *rand.Rand
}

func (s *jitterStream) next() time.Duration {
	if s.lt.jitter <= 0 {
		return s.lt.latency
	}
	return s.lt.latency - s.lt.jitter + time.Duration(s.r.Int64N(int64(2*s.lt.jitter)))
}
