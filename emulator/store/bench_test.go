package store

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

func benchFill(b *testing.B, s *Store, prefix string, n int) []Disk {
	b.Helper()
	out := make([]Disk, 0, n)
	for i := range n {
		d, err := s.AddDisk(pvc(fmt.Sprintf("%s%d", prefix, i), 1<<16))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// BenchmarkAddDisk shows that adding a disk costs the same with 10,000 disks
// as with none: one map update and one journal append, never a scan or a
// rewrite of the state. On disk the host's file creation dominates.
func BenchmarkAddDisk(b *testing.B) {
	for _, existing := range []int{0, 10000} {
		b.Run(fmt.Sprintf("memory/existing=%d", existing), func(b *testing.B) {
			s, err := Open(Options{PoolSize: 1 << 50, Clock: clock.FromLibrary(newMock())})
			if err != nil {
				b.Fatal(err)
			}
			benchFill(b, s, "pre-", existing)
			i := 0
			for b.Loop() {
				if _, err := s.AddDisk(pvc(fmt.Sprintf("bench-%d", i), 1<<16)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		// One state directory serves both fsync settings, so the 10,000
		// host files are created once; each run removes what it added.
		dir := b.TempDir()
		s, err := Open(Options{Dir: dir, PoolSize: 1 << 50, Clock: clock.FromLibrary(newMock())})
		if err != nil {
			b.Fatal(err)
		}
		benchFill(b, s, "pre-", existing)
		s.Close()
		for _, fsync := range []bool{false, true} {
			b.Run(fmt.Sprintf("disk/existing=%d/fsync=%v", existing, fsync), func(b *testing.B) {
				s, err := Open(Options{Dir: dir, Clock: clock.FromLibrary(newMock()), Fsync: fsync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if s.DiskCount() != existing {
					b.Fatalf("%d disks before the run", s.DiskCount())
				}
				var added []Disk
				i := 0
				for b.Loop() {
					d, err := s.AddDisk(pvc(fmt.Sprintf("bench-%v-%d", fsync, i), 1<<16))
					if err != nil {
						b.Fatal(err)
					}
					added = append(added, d)
					i++
				}
				for _, d := range added {
					if err := s.RemoveDisk(d.ID); err != nil {
						b.Fatal(err)
					}
					if err := s.RemoveFile(fileName(d.FilePath)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDiskBySlot looks up single disks among 10,000.
func BenchmarkDiskBySlot(b *testing.B) {
	s, err := Open(Options{PoolSize: 1 << 50, Clock: clock.FromLibrary(newMock())})
	if err != nil {
		b.Fatal(err)
	}
	disks := benchFill(b, s, "pvc-", 10000)
	i := 0
	for b.Loop() {
		want := disks[i%len(disks)]
		if d, ok := s.DiskBySlot(want.Slot); !ok || d.ID != want.ID {
			b.Fatalf("lookup of %s failed", want.Slot)
		}
		i++
	}
}

// BenchmarkAddConcurrentFsync is 16 goroutines adding disks with fsync on: the
// case group commit is for. Two stores take turns in batches, one with
// NoGroupCommit (one fsync per change under the lock, the store before group
// commit) and one with group commit, so both see the same load from the rest
// of the machine; each reports its median batch rate, adds per flush and
// fsync time, and x-no-group-commit is the ratio of the two rates.
func BenchmarkAddConcurrentFsync(b *testing.B) {
	const workers = 16
	type side struct {
		name     string
		s        *Store
		syncTime atomic.Int64
		rates    []float64
	}
	sides := []*side{{name: "no-group-commit"}, {name: "group-commit"}}
	for k, sd := range sides {
		s, err := Open(Options{Dir: b.TempDir(), PoolSize: 1 << 50, Clock: clock.FromLibrary(newMock()), Fsync: true, NoGroupCommit: k == 0})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		realSync := s.syncJournal
		s.syncJournal = func(f *os.File) error {
			start := time.Now()
			err := realSync(f)
			sd.syncTime.Add(int64(time.Since(start)))
			return err
		}
		sd.s = s
	}
	var seq atomic.Int64
	// 8 adds per worker and batch, so a run holds several batches.
	const batch = workers * 8
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for k := range sides {
			sd := sides[(k+done/batch)%len(sides)]
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(n) {
						if _, err := sd.s.AddDisk(pvc(fmt.Sprintf("c-%d", seq.Add(1)), 1<<16)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			sd.rates = append(sd.rates, float64(n)/time.Since(start).Seconds())
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	med := make([]float64, len(sides))
	for k, sd := range sides {
		slices.Sort(sd.rates)
		med[k] = sd.rates[len(sd.rates)/2]
		b.ReportMetric(med[k], sd.name+"-adds/s")
		if f := sd.s.flushes.Load(); f > 0 {
			b.ReportMetric(float64(b.N)/float64(f), sd.name+"-adds/flush")
			b.ReportMetric(float64(sd.syncTime.Load())/float64(f)/1e6, sd.name+"-fsync-ms/flush")
		}
	}
	b.ReportMetric(med[1]/med[0], "x-no-group-commit")
}

// BenchmarkCopyDisk50G copies a 50 GiB disk holding 100 MiB of data in 100
// extents and reports the time per copy and the bytes the copy allocates.
func BenchmarkCopyDisk50G(b *testing.B) {
	const volSize, chunk, n = 50 << 30, 1 << 20, 100
	s, err := Open(Options{Dir: b.TempDir(), PoolSize: 1 << 50, Clock: clock.FromLibrary(newMock()), Fsync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	src, err := s.AddDisk(pvc("src", volSize))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i*13 + 1)
	}
	for i := range n {
		writeAt(b, s.BackingPath(src.FilePath), buf, int64(i)*(volSize/n))
	}
	var allocated int64
	i := 0
	for b.Loop() {
		d, err := s.CopyDisk("src", pvc(fmt.Sprintf("snap-%d", i), 0))
		if err != nil {
			b.Fatal(err)
		}
		i++
		b.StopTimer()
		fi, err := os.Stat(s.BackingPath(d.FilePath))
		if err != nil {
			b.Fatal(err)
		}
		allocated += fi.Sys().(*syscall.Stat_t).Blocks * 512
		if err := s.RemoveDisk(d.ID); err != nil {
			b.Fatal(err)
		}
		if err := s.RemoveFile(fileName(d.FilePath)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(allocated)/float64(i)/(1<<20), "allocated-MiB")
	b.ReportMetric(float64(s.copiedBytes.Load())/float64(i)/(1<<20), "copied-MiB")
	b.ReportMetric(float64(s.clonedCopies.Load())/float64(i), "reflinked")
}
