package engine

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// watchGate holds every watch event of the fake API server until the
// engine releases it. One write reaches every informer watching its
// resource; delivered at once, the informers' goroutines would run side by
// side and race (a handler's Trigger landing before or after the
// reconciler's run drains its channel decides whether one more run
// happens). Held here, the barrier hands out one event at a time, picking
// which watch goes next from the seed, and lets the World come to a
// standstill before the next (settle): each watch still sees its events in
// the order they were written.
type watchGate struct {
	mu      sync.Mutex
	watches []*gatedWatch
}

// install makes every Watch of the fake clientset a gated one.
func (g *watchGate) install(cs *k8stesting.Fake, tracker k8stesting.ObjectTracker) {
	cs.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if wa, ok := a.(k8stesting.WatchActionImpl); ok {
			opts = wa.ListOptions
		}
		inner, err := tracker.Watch(a.GetResource(), a.GetNamespace(), opts)
		if err != nil {
			return false, nil, err
		}
		gw := &gatedWatch{inner: inner, out: make(chan watch.Event), permit: make(chan struct{}, 1), stop: make(chan struct{})}
		g.mu.Lock()
		g.watches = append(g.watches, gw)
		g.mu.Unlock()
		go gw.run()
		return true, gw, nil
	})
}

// releaseOne lets one held event through, from a watch drawn by o among
// those holding one; false when none holds any.
func (g *watchGate) releaseOne(o *releaseOrder) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	live := g.watches[:0]
	var ready []*gatedWatch
	for _, gw := range g.watches {
		gw.mu.Lock()
		stopped, waiting := gw.stopped, len(gw.queue) > 0 && !gw.granted
		if waiting {
			ready = append(ready, gw)
		}
		gw.mu.Unlock()
		if !stopped {
			live = append(live, gw)
		}
	}
	clear(g.watches[len(live):])
	g.watches = live
	if len(ready) == 0 {
		return false
	}
	gw := ready[o.pick(len(ready))]
	gw.mu.Lock()
	gw.granted = true
	gw.mu.Unlock()
	gw.permit <- struct{}{}
	return true
}

// gatedWatch is one watcher's stream: events from the tracker queue up and
// leave one per permit.
type gatedWatch struct {
	inner  watch.Interface
	out    chan watch.Event
	permit chan struct{}
	stop   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	queue   []watch.Event
	granted bool // a permit is out: the head is being delivered
	stopped bool
}

func (gw *gatedWatch) ResultChan() <-chan watch.Event { return gw.out }

func (gw *gatedWatch) Stop() {
	gw.once.Do(func() {
		gw.mu.Lock()
		gw.stopped = true
		gw.mu.Unlock()
		close(gw.stop)
		gw.inner.Stop()
	})
}

func (gw *gatedWatch) run() {
	defer close(gw.out)
	in := gw.inner.ResultChan()
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				in = nil // the tracker ended the watch: deliver what is held, then stop
				gw.mu.Lock()
				empty := len(gw.queue) == 0
				gw.mu.Unlock()
				if empty {
					return
				}
				continue
			}
			gw.mu.Lock()
			gw.queue = append(gw.queue, ev)
			gw.mu.Unlock()
		case <-gw.permit:
			gw.mu.Lock()
			ev := gw.queue[0]
			gw.queue = gw.queue[1:]
			gw.mu.Unlock()
			select {
			case gw.out <- ev:
			case <-gw.stop:
				return
			}
			gw.mu.Lock()
			gw.granted = false
			drained := in == nil && len(gw.queue) == 0
			gw.mu.Unlock()
			if drained {
				return
			}
		case <-gw.stop:
			return
		}
	}
}
