package store

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// copySource adds disk "src" of size bytes with a marked 1 MiB extent at each
// offset and returns the data written there.
func copySource(t testing.TB, s *Store, size int64, offsets ...int64) []byte {
	t.Helper()
	src, err := s.AddDisk(pvc("src", size))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("copy-me!"), int(MiB/8))
	for _, off := range offsets {
		writeAt(t, s.BackingPath(src.FilePath), data, off)
	}
	return data
}

// checkExtent is checkData for big sparse files: it reads only the range.
func checkExtent(t testing.TB, p string, want []byte, off, size int64) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		t.Fatalf("%s: %v, want %d bytes", p, fi, size)
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s lost its data at %d: %v", p, off, err)
	}
}

func noStagedCopies(t *testing.T, dir string) {
	t.Helper()
	if e, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(e) != 0 {
		t.Errorf("staged copies left in tmp/: %v", e)
	}
}

// holdCopy makes s's next copy stop once its staged file is complete (before
// it is journaled) until release is closed; held is closed when it stops.
func holdCopy(s *Store) (held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	s.copyProgress = func(copied int64) {
		if copied == -1 {
			close(held)
			<-release
		}
	}
	return held, release
}

// TestCopyRunsOutsideTheLock: while a copy is held between its data copy and
// its journal write, every other command proceeds, and the new disk is
// nowhere to be seen; once released it appears whole.
func TestCopyRunsOutsideTheLock(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(map[bool]string{false: "fsync=false", true: "fsync=true"}[fsync], func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, Options{Dir: dir, PoolSize: 10 * GiB, Fsync: fsync})
			data := copySource(t, s, 64*MiB, 0, 40*MiB)
			usedBefore := s.Pool().Used
			held, release := holdCopy(s)
			copied := make(chan error, 1)
			go func() { _, err := s.CopyDisk("src", pvc("snap", 0)); copied <- err }()
			<-held

			others := make(chan struct{})
			go func() {
				defer close(others)
				if _, ok := s.DiskBySlot("src"); !ok {
					t.Error("source not found during the copy")
				}
				if _, ok := s.DiskBySlot("snap"); ok {
					t.Error("the copy is visible before it is complete and journaled")
				}
				if _, ok := s.FileByName("storage-pool/k8s/snap.img"); ok {
					t.Error("the copy's file is visible before it is journaled")
				}
				if _, err := os.Stat(s.BackingPath("/storage-pool/k8s/snap.img")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the copy's file exists at its name before it is journaled: %v", err)
				}
				if n := len(s.Disks()); n != 1 {
					t.Errorf("%d disks listed during the copy", n)
				}
				if u := s.Pool().Used; u != usedBefore {
					t.Errorf("pool use %d during the copy, %d before", u, usedBefore)
				}
				d, err := s.AddDisk(pvc("other", MiB))
				if err == nil {
					err = s.RemoveDisk(d.ID)
				}
				if err != nil {
					t.Errorf("a change during the copy: %v", err)
				}
			}()
			select {
			case <-others:
			case <-time.After(60 * time.Second):
				t.Error("other commands did not complete while a copy was held")
			}
			close(release)
			if err := <-copied; err != nil {
				t.Fatal(err)
			}
			<-others
			snap, ok := s.DiskBySlot("snap")
			if !ok || snap.FileSize != 64*MiB {
				t.Fatalf("copy after release: %+v %v", snap, ok)
			}
			checkExtent(t, s.BackingPath(snap.FilePath), data, 40*MiB, 64*MiB)
			noStagedCopies(t, dir)
		})
	}
}

// TestCopyRechecksAfterCopying: what changed while the data was copied
// decides. A slot taken meanwhile fails the copy, and its staged file goes.
func TestCopyRechecksAfterCopying(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: 10 * GiB, Fsync: true})
	copySource(t, s, 8*MiB, 0)
	held, release := holdCopy(s)
	copied := make(chan error, 1)
	go func() { _, err := s.CopyDisk("src", pvc("snap", 0)); copied <- err }()
	<-held
	taken := mustAdd(t, s, pvc("snap", MiB))
	close(release)
	if err := <-copied; !errors.Is(err, errSlotExists) {
		t.Fatalf("copy onto a slot taken during the copy: %v", err)
	}
	if d, _ := s.DiskBySlot("snap"); d != taken {
		t.Fatalf("the failed copy changed %+v into %+v", taken, d)
	}
	noStagedCopies(t, dir)
}

// TestCopyCostsTheData: a copy of a large, mostly empty disk reads and writes
// only its data extents (or shares them with a reflink) and stays sparse.
func TestCopyCostsTheData(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: 100 * GiB, Fsync: true})
	data := copySource(t, s, 8*GiB, 0, 3*GiB+5*MiB, 8*GiB-MiB)
	snap, err := s.CopyDisk("src", pvc("snap", 0))
	if err != nil {
		t.Fatal(err)
	}
	if s.clonedCopies.Load() == 0 {
		if got := s.copiedBytes.Load(); got > 3*MiB+256<<10 {
			t.Errorf("copy of 3 MiB of data in 8 GiB moved %d bytes", got)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(s.BackingPath(snap.FilePath), &st); err != nil {
		t.Fatal(err)
	}
	if a := st.Blocks * 512; a > 8*MiB {
		t.Errorf("copy allocates %d bytes for 3 MiB of data", a)
	}
	for _, off := range []int64{0, 3*GiB + 5*MiB, 8*GiB - MiB} {
		checkExtent(t, s.BackingPath(snap.FilePath), data, off, 8*GiB)
	}
}

// The copy crash test re-executes the test binary (see TestMain) as a child
// that starts a copy and stops in it; the parent kills it there.
const (
	copyCrashDirEnv  = "STORE_COPY_CRASH_DIR"
	copyCrashModeEnv = "STORE_COPY_CRASH_MODE" // "mid": after the first extent; "staged": copy complete, not journaled
)

func copyCrashChild() {
	dir, mode := os.Getenv(copyCrashDirEnv), os.Getenv(copyCrashModeEnv)
	s, err := Open(Options{Dir: dir, PoolSize: 100 * GiB, Clock: clock.FromLibrary(newMock()), Fsync: true})
	if err != nil {
		os.Stdout.WriteString("ERR " + err.Error() + "\n")
		os.Exit(2)
	}
	noReflink = true // stop between extents even on a reflink filesystem
	s.copyProgress = func(copied int64) {
		if (mode == "mid" && copied > 0) || (mode == "staged" && copied == -1) {
			os.Stdout.WriteString("HELD\n")
			select {} // until killed
		}
	}
	if _, err := s.CopyDisk("src", pvc("snap", 0)); err != nil {
		os.Stdout.WriteString("ERR " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Stdout.WriteString("ERR copy finished\n")
	os.Exit(2)
}

// TestCrashMidCopyLeavesNoHalfDisk kills the process (SIGKILL) in the middle
// of a copy's data and after the copy is staged but before it is journaled:
// either way the store reopens with no trace of the copy, source intact.
func TestCrashMidCopyLeavesNoHalfDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, mode := range []string{"mid", "staged"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, Options{Dir: dir, PoolSize: 100 * GiB, Fsync: true})
			data := copySource(t, s, GiB, 0, 300*MiB, GiB-MiB)
			want := viewOf(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			cmd, out, stderr := startChild(t, copyCrashDirEnv+"="+dir, copyCrashModeEnv+"="+mode)
			line, _ := bufio.NewReader(out).ReadString('\n')
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if line != "HELD\n" {
				t.Fatalf("child: %q\n%s", line, stderr.String())
			}
			if e, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(e) == 0 && mode == "staged" {
				t.Fatal("the killed child left no staged copy: the test does not test anything")
			}

			s = openT(t, Options{Dir: dir, Clock: clock.FromLibrary(newMock())})
			sameView(t, "after a crash mid-copy", viewOf(s), want)
			if _, err := os.Stat(s.BackingPath("/storage-pool/k8s/snap.img")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("half copy on the host after the crash: %v", err)
			}
			noStagedCopies(t, dir)
			checkExtent(t, s.BackingPath("/storage-pool/k8s/src.img"), data, 300*MiB, GiB)
			// And the copy still works afterwards.
			snap, err := s.CopyDisk("src", pvc("snap", 0))
			if err != nil {
				t.Fatal(err)
			}
			checkExtent(t, s.BackingPath(snap.FilePath), data, GiB-MiB, GiB)
		})
	}
}
