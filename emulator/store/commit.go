package store

import (
	"fmt"
	"os"
)

// Group commit. With Fsync on, a change is appended to the journal under mu
// (one write(), so a kill -9 after it loses nothing) and applied to memory,
// but the fsync that makes it survive a machine crash runs after mu is
// released, by whichever waiting caller gets flushMu first. That leader
// flushes everything appended so far in one fsync, so callers that arrive
// while a flush is running share the next one instead of queueing one fsync
// each behind the store's lock, as databases do.
//
// Host changes (creating, growing, renaming, unlinking backing files) wait
// for the flush and run in journal order inside it: a file on the host whose
// record did not reach the disk would come back after a machine crash as an
// orphan the driver never created. durable advances only after both, so
// "durable" means "on disk and on the host".
//
// Nothing a caller sees may outrun durability: a reply built from state that
// a machine crash could still take back (another session's disk that is not
// flushed yet) would let the driver act on a disk that never existed. So
// mutators wait for everything they observed, not only their own record, and
// readers wait for the records behind what they read (await below).

// hostOp is the host side of one journaled change.
type hostOp struct {
	seq uint64
	// run changes the host; it returns the directories whose entries it
	// created, which must be fsynced before the change counts as durable.
	run func() (dirs []string, err error)
	// done updates memory after run succeeded; it runs under mu.
	done func()
	// err is run's outcome. It is written before durable passes seq and read
	// by the caller only after it saw durable >= seq under mu.
	err error
}

// apply commits r and arranges for op's host change. The caller holds mu.
// Without Fsync (or in memory) the host change runs at once, under mu, as
// nothing has to be waited for; with it, the change is queued for the flush.
func (s *Store) apply(r *record, op *hostOp) error {
	if err := s.commit(r); err != nil {
		return err
	}
	if !s.persist {
		return nil
	}
	op.seq = r.Seq
	if s.fsync {
		s.pending = append(s.pending, op)
		if s.noGroup {
			// Flushed here, under mu, so nothing is ever pending when
			// mu is free: flushLeader never finds a batch, and a flush
			// serialises every other command behind it, as before group
			// commit. flushMu is not needed (no flush can run
			// concurrently) and may not be taken here (it comes before mu).
			s.drainLocked()
			if s.broken == nil {
				s.maybeCompact()
			}
		}
		return nil
	}
	s.runHost(op)
	if op.err == nil && op.done != nil {
		op.done()
	}
	s.maybeCompact()
	return nil
}

// runHost runs op's host change; without Fsync its directories need no sync.
func (s *Store) runHost(op *hostOp) []string {
	if op.run == nil {
		return nil
	}
	dirs, err := op.run()
	op.err = err
	if err != nil || !s.fsync {
		return nil
	}
	return dirs
}

// await returns once every record up to seq is durable (flushed and its host
// change applied), flushing as the leader if no one else is. It must be
// called without mu held. The error is a failed flush: the store is broken
// from then on, and changes up to seq may or may not survive a machine crash.
func (s *Store) await(seq uint64) error {
	if !s.persist || !s.fsync {
		return nil
	}
	for {
		s.mu.RLock()
		durable, broken, closed := s.durable, s.broken, s.closed
		s.mu.RUnlock()
		if durable >= seq {
			return nil
		}
		if broken != nil {
			return broken
		}
		if closed {
			// Close drains every appended record, so this is a store
			// closed after a failed flush: never spin on it.
			return ErrClosed
		}
		s.flushMu.Lock()
		s.flushLeader(seq)
		s.flushMu.Unlock()
	}
}

// flushLeader flushes everything appended so far, unless seq became durable
// while the caller waited for flushMu: then it returns at once, since taking
// on a flush it does not need would make every caller that queued behind a
// flush pay for another one. The caller holds flushMu (so batches are
// flushed, and their host changes run, one at a time and in order) but not
// mu, which appenders keep taking while the fsync runs.
func (s *Store) flushLeader(seq uint64) {
	s.mu.Lock()
	if s.durable >= seq || s.broken != nil || s.journal == nil {
		s.mu.Unlock()
		return
	}
	batch, hi, j := s.pending, s.seq, s.journal
	s.pending = nil
	s.mu.Unlock()

	err := s.flushBatch(j, batch)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishBatch(batch, hi, err)
	if err == nil && s.compactDue() {
		// Compaction snapshots memory, so it may only run when every
		// journaled host change has happened (a copy still waiting for its
		// rename would lose its stage). Drain what was appended meanwhile
		// under mu: rare, and compaction is O(state) under mu anyway.
		s.drainLocked()
		if s.broken == nil {
			s.maybeCompact()
		}
	}
}

// drainLocked makes everything appended so far durable while holding mu.
// The caller holds flushMu and mu.
func (s *Store) drainLocked() {
	if s.durable >= s.seq || s.broken != nil || s.journal == nil {
		return
	}
	batch, hi := s.pending, s.seq
	s.pending = nil
	s.finishBatch(batch, hi, s.flushBatch(s.journal, batch))
}

// flushBatch fsyncs the journal, then runs the batch's host changes in order
// and fsyncs each directory they created entries in once. It does not touch
// memory, so it runs without mu.
func (s *Store) flushBatch(j *os.File, batch []*hostOp) error {
	s.flushes.Add(1)
	if err := s.syncJournal(j); err != nil {
		return err
	}
	type dirOps struct{ ops []*hostOp }
	var order []string
	byDir := map[string]*dirOps{}
	for _, op := range batch {
		for _, d := range s.runHost(op) {
			e, ok := byDir[d]
			if !ok {
				e = &dirOps{}
				byDir[d] = e
				order = append(order, d)
			}
			e.ops = append(e.ops, op)
		}
	}
	for _, d := range order {
		if err := syncDir(d); err != nil {
			for _, op := range byDir[d].ops {
				if op.err == nil {
					op.err = err
				}
			}
		}
	}
	return nil
}

// finishBatch publishes a flushed batch. The caller holds mu.
func (s *Store) finishBatch(batch []*hostOp, hi uint64, err error) {
	if err != nil {
		// After a failed fsync the kernel may have dropped the pages, and
		// a retry can report success without them: nothing appended since
		// the last good flush can be trusted, so stop taking changes. A
		// restart replays whatever did reach the disk.
		s.broken = fmt.Errorf("failure: journal flush: %w", err)
		return
	}
	for _, op := range batch {
		if op.err == nil && op.done != nil {
			op.done()
		}
	}
	s.durable = hi
}

func defaultSyncJournal(f *os.File) error { return f.Sync() }
