package keylock

import (
	"context"
	"sync"
)

// Set is a set of per-key locks. The zero value is ready to use.
type Set struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	sem  chan struct{} // capacity 1: full while held
	refs int           // the holder and the waiters
}

// acquire finds or makes key's entry and counts the caller on it.
func (s *Set) acquire(key string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*entry)
	}
	e := s.m[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		s.m[key] = e
	}
	e.refs++
	return e
}

func (s *Set) release(key string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(s.m, key)
	}
}

// unlocker frees the key once, however often it is called: a deferred
// unlock after an early one must not release a later holder.
func (s *Set) unlocker(key string, e *entry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.sem
			s.release(key, e)
		})
	}
}

// TryLock takes key if nobody holds it. On failure unlock is a no-op.
func (s *Set) TryLock(key string) (unlock func(), ok bool) {
	e := s.acquire(key)
	select {
	case e.sem <- struct{}{}:
		return s.unlocker(key, e), true
	default:
		s.release(key, e)
		return func() {}, false
	}
}

// Lock waits for key until ctx ends; then it returns ctx's error.
func (s *Set) Lock(ctx context.Context, key string) (unlock func(), err error) {
	e := s.acquire(key)
	select {
	case e.sem <- struct{}{}:
		return s.unlocker(key, e), nil
	case <-ctx.Done():
		s.release(key, e)
		return nil, ctx.Err()
	}
}

// Len is the number of keys held or waited for.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
