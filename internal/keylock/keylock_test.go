package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestTryLock(t *testing.T) {
	for _, c := range []struct {
		name string
		run  func(s *Set) string // "" on success, else what went wrong
	}{
		{"second caller is refused", func(s *Set) string {
			if _, ok := s.TryLock("v"); !ok {
				return "first TryLock failed"
			}
			if _, ok := s.TryLock("v"); ok {
				return "second TryLock succeeded"
			}
			return ""
		}},
		{"another key is free", func(s *Set) string {
			s.TryLock("v")
			if _, ok := s.TryLock("w"); !ok {
				return "TryLock(w) failed while v was held"
			}
			return ""
		}},
		{"free again after unlock", func(s *Set) string {
			u, _ := s.TryLock("v")
			u()
			if _, ok := s.TryLock("v"); !ok {
				return "TryLock failed after unlock"
			}
			return ""
		}},
		{"a second unlock does not release a later holder", func(s *Set) string {
			u1, _ := s.TryLock("v")
			u1()
			if _, ok := s.TryLock("v"); !ok {
				return "TryLock failed after unlock"
			}
			u1()
			if _, ok := s.TryLock("v"); ok {
				return "stale unlock released the later holder"
			}
			return ""
		}},
		{"a refused caller's unlock is a no-op", func(s *Set) string {
			s.TryLock("v")
			u2, _ := s.TryLock("v")
			u2()
			if _, ok := s.TryLock("v"); ok {
				return "refused caller's unlock released the holder"
			}
			return ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if msg := c.run(&Set{}); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func TestLockWaitsAndGivesUp(t *testing.T) {
	var s Set
	unlockA, err := s.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := s.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock of a held key with an ended context: %v", err)
	}
	got := make(chan func())
	go func() {
		u, err := s.Lock(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("second holder got the lock while the first held it")
	case <-time.After(10 * time.Millisecond): // a bound on a negative, not a timing assertion
	}
	unlockA()
	(<-got)()
	if n := s.Len(); n != 0 {
		t.Fatalf("%d entries left after every holder unlocked", n)
	}
}

// Entries are pruned: many keys and contention leave nothing behind.
func TestPruned(t *testing.T) {
	var s Set
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := string(rune('a' + i%8))
			if i%2 == 0 {
				if u, ok := s.TryLock(key); ok {
					u()
				}
				return
			}
			u, err := s.Lock(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			u()
		}(i)
	}
	wg.Wait()
	if n := s.Len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
