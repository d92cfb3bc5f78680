package store

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// niceness is the calling thread's nice value (the raw getpriority(2)
// answer is 20 - nice).
func niceness(t *testing.T) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// TestCopyRunsInBackground: the data of a copy is moved by a thread at the
// lowest CPU priority, so commands arriving during a large copy are not
// queued behind it for a time slice; and the caller's own thread, which
// goes on to serve other commands, keeps its priority.
func TestCopyRunsInBackground(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := niceness(t)
	if before >= backgroundNice {
		t.Skipf("the test already runs at nice %d", before)
	}
	s := openT(t, Options{Dir: t.TempDir(), PoolSize: GiB})
	src, err := s.AddDisk(pvc("src", 4*MiB))
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, s.BackingPath(src.FilePath), []byte("data"), MiB)
	saved := noReflink
	noReflink = true // the extent copy reports progress from the copying thread
	defer func() { noReflink = saved }()
	var seen []int
	s.copyProgress = func(copied int64) {
		if copied >= 0 {
			seen = append(seen, niceness(t))
		}
	}
	if _, err := s.CopyDisk("src", pvc("snap", 0)); err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		t.Fatal("the copy reported no progress")
	}
	for _, n := range seen {
		if n != backgroundNice {
			t.Errorf("copy ran at nice %d; want %d", n, backgroundNice)
		}
	}
	if after := niceness(t); after != before {
		t.Errorf("the caller's thread went from nice %d to %d", before, after)
	}
}
