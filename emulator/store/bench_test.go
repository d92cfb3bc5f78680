package store

import (
	"fmt"
	"testing"

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
