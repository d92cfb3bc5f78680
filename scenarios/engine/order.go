package engine

import "math/rand/v2"

// releaseOrder draws the order in which the World releases what one virtual
// instant holds: timers due together, the attacher's calls and replies,
// watch events. Drawn from the seed, the swarm explores those orders and a
// seed still reproduces its run; fixed, each goes in a canonical order
// (Options.FixedOrder).
type releaseOrder struct {
	r     *rand.Rand
	fixed bool
}

// pick chooses one of n candidates (0 is the canonical first).
func (o *releaseOrder) pick(n int) int {
	if o.fixed || n < 2 {
		return 0
	}
	return o.r.IntN(n)
}

// shuffle reorders n items in place, or leaves them in canonical order.
func (o *releaseOrder) shuffle(n int, swap func(i, j int)) {
	if !o.fixed {
		o.r.Shuffle(n, swap)
	}
}
