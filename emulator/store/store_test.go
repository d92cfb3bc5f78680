package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

func newMock() *libclock.Mock {
	m := libclock.NewMock()
	m.Set(time.Date(2025, 11, 12, 0, 30, 2, 0, time.UTC))
	return m
}

func openT(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Clock == nil {
		o.Clock = clock.FromLibrary(newMock())
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%+v): %v", o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pvc(slot string, size int64) Disk {
	return Disk{
		Slot:              slot,
		FilePath:          "/storage-pool/k8s/" + slot + ".img",
		FileSize:          size,
		NVMeTCPExport:     true,
		NVMeTCPServerPort: 4420,
		NVMeTCPServerNQN:  "nqn.2000-02.com.mikrotik:" + slot,
	}
}

func mustAdd(t testing.TB, s *Store, d Disk) Disk {
	t.Helper()
	got, err := s.AddDisk(d)
	if err != nil {
		t.Fatalf("AddDisk(%s): %v", d.Slot, err)
	}
	return got
}

// view is everything observable, for comparing a store before and after.
type view struct {
	Pool  Pool
	Disks []Disk
	Files []File
}

func viewOf(s *Store) view { return view{s.Pool(), s.Disks(), s.Files()} }

func sameView(t *testing.T, what string, got, want view) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: state differs\n got: %+v\nwant: %+v", what, got, want)
	}
}

// Both modes must behave identically; the persistent one is the harder case.
func eachMode(t *testing.T, f func(t *testing.T, dir string)) {
	t.Run("memory", func(t *testing.T) { f(t, "") })
	t.Run("disk", func(t *testing.T) { f(t, t.TempDir()) })
}

func TestAddGetList(t *testing.T) {
	eachMode(t, func(t *testing.T, dir string) {
		clk := newMock()
		s := openT(t, Options{Dir: dir, PoolSize: 100 * GiB, Clock: clock.FromLibrary(clk)})
		var added []Disk
		for i, slot := range []string{"pvc-c", "pvc-a", "pvc-b"} {
			clk.Add(time.Second)
			d := pvc(slot, int64(i+1)*GiB)
			d.Comment = "c" + slot
			got := mustAdd(t, s, d)
			if got.ID == 0 || !got.Created.Equal(clk.Now()) {
				t.Fatalf("ID/Created not assigned: %+v", got)
			}
			d.ID, d.Created = got.ID, got.Created
			if got != d {
				t.Fatalf("AddDisk returned %+v, want %+v", got, d)
			}
			added = append(added, got)
		}
		if s.DiskCount() != 3 {
			t.Fatalf("DiskCount = %d", s.DiskCount())
		}
		for _, d := range added {
			if got, ok := s.DiskBySlot(d.Slot); !ok || got != d {
				t.Fatalf("DiskBySlot(%s) = %+v %v", d.Slot, got, ok)
			}
			if got, ok := s.DiskByID(d.ID); !ok || got != d {
				t.Fatalf("DiskByID(%d) = %+v %v", d.ID, got, ok)
			}
		}
		if _, ok := s.DiskBySlot("pvc-x"); ok {
			t.Fatal("DiskBySlot found a disk that does not exist")
		}
		if got := s.Disks(); !reflect.DeepEqual(got, added) {
			t.Fatalf("Disks not in creation order:\n%+v", got)
		}
		files := s.Files()
		var names []string
		for _, f := range files {
			names = append(names, f.Name+"|"+f.Type)
		}
		want := []string{"storage-pool/k8s|directory", "storage-pool/k8s/pvc-a.img|.img file",
			"storage-pool/k8s/pvc-b.img|.img file", "storage-pool/k8s/pvc-c.img|.img file"}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("Files = %v, want %v", names, want)
		}
		if f, _ := s.FileByName("storage-pool/k8s/pvc-b.img"); f.Size != 3*GiB || f.Dir {
			t.Fatalf("file entry %+v", f)
		}
		first, _ := s.FileByName("storage-pool/k8s/pvc-c.img") // made first, with the directory
		if dirEntry, _ := s.FileByName("storage-pool/k8s"); !dirEntry.Dir || dirEntry.Size != 0 || !dirEntry.LastModified.Equal(first.LastModified) || first.LastModified.Equal(clk.Now()) {
			t.Fatalf("directory entry %+v (its time should stay that of its making, %v)", dirEntry, first.LastModified)
		}
		if p := s.Pool(); p.Name != "storage-pool" || p.Size != 100*GiB || p.Used != 6*GiB || p.Free() != 94*GiB {
			t.Fatalf("Pool = %+v", p)
		}
		if dir == "" {
			if s.BackingPath("/storage-pool/k8s/pvc-a.img") != "" {
				t.Fatal("in-memory BackingPath should be empty")
			}
			return
		}
		bp := s.BackingPath("/storage-pool/k8s/pvc-a.img")
		if bp != filepath.Join(dir, "files", "storage-pool", "k8s", "pvc-a.img") {
			t.Fatalf("BackingPath = %q", bp)
		}
		if fi, err := os.Stat(bp); err != nil || fi.Size() != 2*GiB {
			t.Fatalf("backing file: %v %v", fi, err)
		}
		if got := s.BackingPath("/storage-pool/../../etc/passwd"); got != filepath.Join(dir, "files", "etc", "passwd") {
			t.Fatalf("BackingPath escaped the files directory: %q", got)
		}
	})
}

func TestErrorTexts(t *testing.T) {
	eachMode(t, func(t *testing.T, dir string) {
		s := openT(t, Options{Dir: dir, PoolSize: 10 * GiB})
		a := mustAdd(t, s, pvc("pvc-a", GiB))
		mustAdd(t, s, pvc("pvc-b", GiB))
		orphan := mustAdd(t, s, pvc("pvc-o", GiB))
		if err := s.RemoveDisk(orphan.ID); err != nil {
			t.Fatal(err)
		}
		before := viewOf(s)

		withPath := func(slot, p string, size int64) Disk { d := pvc(slot, size); d.FilePath = p; return d }
		add := func(d Disk) func() error { return func() error { _, err := s.AddDisk(d); return err } }
		update := func(id uint64, f func(*Disk)) func() error {
			return func() error {
				_, err := s.UpdateDisk(id, func(d *Disk) error { f(d); return nil })
				return err
			}
		}
		cases := []struct {
			name string
			op   func() error
			text string
			kind error
		}{
			{"duplicate slot", add(pvc("pvc-a", GiB)), "failure: item with such slot already exists", ErrExists},
			{"slot of the pool", add(withPath("storage-pool", "/storage-pool/x.img", GiB)), "failure: item with such slot already exists", ErrExists},
			{"file used by a disk", add(withPath("pvc-z", "/storage-pool/k8s/pvc-a.img", GiB)), "failure: file already in use", ErrInUse},
			{"too big", add(pvc("pvc-big", 8*GiB)), "failure: not enough space", ErrNotEnoughSpace},
			{"adoption growth too big", add(withPath("pvc-z", "/storage-pool/k8s/pvc-o.img", 9*GiB)), "failure: not enough space", ErrNotEnoughSpace},
			{"zero size", add(pvc("pvc-z", 0)), "invalid value for argument file-size", ErrInvalid},
			{"negative size", add(pvc("pvc-z", -1)), "invalid value for argument file-size", ErrInvalid},
			{"empty slot", add(withPath("", "/storage-pool/k8s/z.img", GiB)), "invalid value for argument slot", ErrInvalid},
			{"bad port", add(func() Disk { d := pvc("pvc-z", GiB); d.NVMeTCPServerPort = 70000; return d }()), "invalid value for argument nvme-tcp-server-port", ErrInvalid},
			{"outside the pool", add(withPath("pvc-z", "/other-pool/z.img", GiB)), "invalid value for argument file-path", ErrInvalid},
			{"no leading slash", add(withPath("pvc-z", "storage-pool/k8s/z.img", GiB)), "invalid value for argument file-path", ErrInvalid},
			{"dot dot", add(withPath("pvc-z", "/storage-pool/../z.img", GiB)), "invalid value for argument file-path", ErrInvalid},
			{"double slash", add(withPath("pvc-z", "/storage-pool//z.img", GiB)), "invalid value for argument file-path", ErrInvalid},
			{"pool root", add(withPath("pvc-z", "/storage-pool/", GiB)), "invalid value for argument file-path", ErrInvalid},
			{"is a directory", add(withPath("pvc-z", "/storage-pool/k8s", GiB)), "failure: file-path is a directory", ErrInvalid},
			{"through a file", add(withPath("pvc-z", "/storage-pool/k8s/pvc-a.img/z.img", GiB)), "failure: file-path goes through a file, not a directory", ErrInvalid},
			{"copy from nothing", func() error { _, err := s.CopyDisk("pvc-none", pvc("pvc-z", GiB)); return err }, "failure: no such item", ErrNoSuchItem},
			{"copy onto a file", func() error {
				_, err := s.CopyDisk("pvc-a", withPath("pvc-z", "/storage-pool/k8s/pvc-o.img", GiB))
				return err
			}, "failure: file already exists", ErrExists},
			{"copy too big", func() error { _, err := s.CopyDisk("pvc-a", pvc("pvc-z", 8*GiB)); return err }, "failure: not enough space", ErrNotEnoughSpace},
			{"copy duplicate slot", func() error { _, err := s.CopyDisk("pvc-a", pvc("pvc-b", GiB)); return err }, "failure: item with such slot already exists", ErrExists},
			{"update missing", update(999, func(*Disk) {}), "failure: no such item", ErrNoSuchItem},
			{"shrink", update(a.ID, func(d *Disk) { d.FileSize-- }), "failure: can not shrink", ErrCannotShrink},
			{"grow too big", update(a.ID, func(d *Disk) { d.FileSize = 8*GiB + 1 }), "failure: not enough space", ErrNotEnoughSpace},
			{"slot taken", update(a.ID, func(d *Disk) { d.Slot = "pvc-b" }), "failure: item with such slot already exists", ErrExists},
			{"move file", update(a.ID, func(d *Disk) { d.FilePath = "/storage-pool/k8s/moved.img" }), "failure: file-path can not be changed", ErrInvalid},
			{"change id", update(a.ID, func(d *Disk) { d.ID++ }), "failure: id can not be changed", ErrInvalid},
			{"remove missing disk", func() error { return s.RemoveDisk(999) }, "failure: no such item", ErrNoSuchItem},
			{"remove missing file", func() error { return s.RemoveFile("storage-pool/k8s/nope.img") }, "failure: no such item", ErrNoSuchItem},
			{"remove with leading slash", func() error { return s.RemoveFile("/storage-pool/k8s/pvc-o.img") }, "failure: no such item", ErrNoSuchItem},
			{"remove used file", func() error { return s.RemoveFile("storage-pool/k8s/pvc-a.img") }, "failure: file is in use", ErrInUse},
			{"remove full directory", func() error { return s.RemoveFile("storage-pool/k8s") }, "failure: directory is not empty", ErrInUse},
		}
		for _, c := range cases {
			err := c.op()
			if err == nil {
				t.Errorf("%s: no error", c.name)
				continue
			}
			if err.Error() != c.text {
				t.Errorf("%s: error text %q, want %q", c.name, err.Error(), c.text)
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("%s: %v is not %v", c.name, err, c.kind)
			}
		}
		sameView(t, "after failed operations", viewOf(s), before)

		wantErr := errors.New("caller says no")
		if _, err := s.UpdateDisk(a.ID, func(d *Disk) error { d.Comment = "x"; return wantErr }); err != wantErr {
			t.Fatalf("UpdateDisk did not pass the change func's error through: %v", err)
		}
		sameView(t, "after refused change", viewOf(s), before)
	})
}

func TestSpaceAccounting(t *testing.T) {
	eachMode(t, func(t *testing.T, dir string) {
		s := openT(t, Options{Dir: dir, PoolSize: 100 * MiB})
		a := mustAdd(t, s, pvc("a", 40*MiB))
		if f := s.Pool().Free(); f != 60*MiB {
			t.Fatalf("free after add = %d", f)
		}
		if err := s.RemoveDisk(a.ID); err != nil {
			t.Fatal(err)
		}
		if f := s.Pool().Free(); f != 60*MiB {
			t.Fatalf("free after /disk remove = %d: the leftover file must still count", f)
		}
		if _, ok := s.FileByName("storage-pool/k8s/a.img"); !ok {
			t.Fatal("/disk remove deleted the backing file")
		}
		if dir != "" {
			if _, err := os.Stat(s.BackingPath("/storage-pool/k8s/a.img")); err != nil {
				t.Fatalf("/disk remove deleted the host file: %v", err)
			}
		}
		if _, err := s.AddDisk(pvc("b", 61*MiB)); !errors.Is(err, ErrNotEnoughSpace) {
			t.Fatalf("61 MiB into 60 MiB free: %v", err)
		}
		b := mustAdd(t, s, pvc("b", 60*MiB)) // exact fit
		if f := s.Pool().Free(); f != 0 {
			t.Fatalf("free after exact fit = %d", f)
		}
		if err := s.RemoveFile("storage-pool/k8s/a.img"); err != nil {
			t.Fatal(err)
		}
		if f := s.Pool().Free(); f != 40*MiB {
			t.Fatalf("free after /file remove = %d", f)
		}
		if dir != "" {
			if _, err := os.Stat(s.BackingPath("/storage-pool/k8s/a.img")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("/file remove left the host file: %v", err)
			}
		}
		if _, err := s.UpdateDisk(b.ID, func(d *Disk) error { d.FileSize += 40 * MiB; return nil }); err != nil {
			t.Fatal(err)
		}
		if f := s.Pool().Free(); f != 0 {
			t.Fatalf("free after grow = %d", f)
		}
		if err := s.RemoveDisk(b.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveFile("storage-pool/k8s/b.img"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveFile("storage-pool/k8s"); err != nil {
			t.Fatalf("removing the now empty directory: %v", err)
		}
		if p := s.Pool(); p.Used != 0 || len(s.Files()) != 0 {
			t.Fatalf("pool %+v files %+v", p, s.Files())
		}
	})
}

func TestUpdateDisk(t *testing.T) {
	eachMode(t, func(t *testing.T, dir string) {
		clk := newMock()
		s := openT(t, Options{Dir: dir, PoolSize: 10 * GiB, Clock: clock.FromLibrary(clk)})
		a := mustAdd(t, s, pvc("a", GiB))
		created := clk.Now()
		clk.Add(time.Hour)
		got, err := s.UpdateDisk(a.ID, func(d *Disk) error {
			d.FileSize = 2 * GiB
			d.Slot = "a2"
			d.Comment = "resized"
			d.NVMeTCPServerAllowHostName = "node-1"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.FileSize, want.Slot, want.Comment, want.NVMeTCPServerAllowHostName = 2*GiB, "a2", "resized", "node-1"
		if got != want {
			t.Fatalf("UpdateDisk = %+v, want %+v", got, want)
		}
		if _, ok := s.DiskBySlot("a"); ok {
			t.Fatal("old slot still resolves")
		}
		if d, ok := s.DiskBySlot("a2"); !ok || d != want {
			t.Fatalf("new slot: %+v %v", d, ok)
		}
		f, _ := s.FileByName("storage-pool/k8s/a.img")
		if f.Size != 2*GiB || !f.LastModified.Equal(clk.Now()) || !got.Created.Equal(created) {
			t.Fatalf("file after grow %+v", f)
		}
		if s.Pool().Used != 2*GiB {
			t.Fatalf("used = %d", s.Pool().Used)
		}
		if dir != "" {
			if fi, err := os.Stat(s.BackingPath(a.FilePath)); err != nil || fi.Size() != 2*GiB {
				t.Fatalf("host file not grown: %v %v", fi, err)
			}
		}
		// The slot a disk gave up is free for another.
		other := pvc("a", GiB)
		other.FilePath = "/storage-pool/k8s/other.img"
		mustAdd(t, s, other)

		// A change that changes nothing records nothing.
		seq := s.seq
		if _, err := s.UpdateDisk(a.ID, func(*Disk) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if s.seq != seq {
			t.Fatal("a no-op update was journaled")
		}
	})
}

func TestAdoptOrphan(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	a := mustAdd(t, s, pvc("a", 10*MiB))
	payload := []byte("data written through the loop device")
	writeAt(t, s.BackingPath(a.FilePath), payload, 3*MiB)
	if err := s.RemoveDisk(a.ID); err != nil {
		t.Fatal(err)
	}
	b := pvc("b", 20*MiB)
	b.FilePath = a.FilePath
	gotB := mustAdd(t, s, b)
	if gotB.ID <= a.ID || gotB.FileSize != 20*MiB {
		t.Fatalf("adopting disk %+v", gotB)
	}
	if p := s.Pool(); p.Used != 20*MiB {
		t.Fatalf("used %d, want only the adopted file grown to 20 MiB", p.Used)
	}
	checkData(t, s.BackingPath(a.FilePath), payload, 3*MiB, 20*MiB)

	// Adopting a larger file never shrinks it; the disk takes the file's size.
	if err := s.RemoveDisk(gotB.ID); err != nil {
		t.Fatal(err)
	}
	c := pvc("c", 5*MiB)
	c.FilePath = a.FilePath
	if gotC := mustAdd(t, s, c); gotC.FileSize != 20*MiB {
		t.Fatalf("disk adopting a 20 MiB file has file-size %d", gotC.FileSize)
	}
	checkData(t, s.BackingPath(a.FilePath), payload, 3*MiB, 20*MiB)
	if p := s.Pool(); p.Used != 20*MiB {
		t.Fatalf("used %d", p.Used)
	}
}

func writeAt(t testing.TB, p string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func checkData(t testing.TB, p string, want []byte, off, size int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("%s is %d bytes, want %d", p, len(b), size)
	}
	if !bytes.Equal(b[off:off+int64(len(want))], want) {
		t.Fatalf("%s lost its data at %d", p, off)
	}
}

func TestDataSurvivesReopenAndCopy(t *testing.T) {
	dir := t.TempDir()
	clk := newMock()
	s, err := Open(Options{Dir: dir, PoolSize: 10 * GiB, Clock: clock.FromLibrary(clk), Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	src := mustAdd(t, s, pvc("src", 16*MiB))
	head := bytes.Repeat([]byte("head"), 1024)
	tail := bytes.Repeat([]byte{0xA5}, 100000)
	writeAt(t, s.BackingPath(src.FilePath), head, 0)
	writeAt(t, s.BackingPath(src.FilePath), tail, 10*MiB+123)

	clone, err := s.CopyDisk("src", pvc("clone", MiB)) // smaller request: takes the source size
	if err != nil {
		t.Fatal(err)
	}
	if clone.FileSize != 16*MiB {
		t.Fatalf("clone file-size %d", clone.FileSize)
	}
	big, err := s.CopyDisk("src", pvc("big", 24*MiB))
	if err != nil {
		t.Fatal(err)
	}
	if big.FileSize != 24*MiB || s.Pool().Used != 56*MiB {
		t.Fatalf("big clone %+v, pool %+v", big, s.Pool())
	}
	before := viewOf(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, Options{Dir: dir, Clock: clock.FromLibrary(clk)})
	sameView(t, "after reopen", viewOf(s), before)
	srcBytes, err := os.ReadFile(s.BackingPath(src.FilePath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(srcBytes[:len(head)], head) || !bytes.Equal(srcBytes[10*MiB+123:10*MiB+123+int64(len(tail))], tail) {
		t.Fatal("source data did not survive Close/Open")
	}
	cloneBytes, err := os.ReadFile(s.BackingPath(clone.FilePath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cloneBytes, srcBytes) {
		t.Fatal("clone bytes differ from the source")
	}
	bigBytes, err := os.ReadFile(s.BackingPath(big.FilePath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bigBytes[:len(srcBytes)], srcBytes) || !allZero(bigBytes[len(srcBytes):]) || int64(len(bigBytes)) != 24*MiB {
		t.Fatal("larger clone is not the source followed by zeros")
	}
	// A copy of a mostly-empty volume must stay sparse on the host.
	var stat syscall.Stat_t
	if err := syscall.Stat(s.BackingPath(big.FilePath), &stat); err != nil {
		t.Fatal(err)
	}
	if allocated := stat.Blocks * 512; allocated > 4*MiB {
		t.Fatalf("clone allocates %d bytes for ~100 KiB in 24 MiB of data: the copy is not sparse", allocated)
	}

	// Writes to the clone do not reach the source.
	writeAt(t, s.BackingPath(clone.FilePath), []byte("clone only"), 0)
	checkData(t, s.BackingPath(src.FilePath), head[:10], 0, 16*MiB)
}

func TestCopyNonZeroFallback(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(5 * MiB)
	f.WriteAt([]byte("abc"), 2*MiB+7)
	f.WriteAt([]byte("end"), 5*MiB-3)
	in, _ := os.Open(src)
	defer in.Close()
	out, _ := os.Create(filepath.Join(dir, "dst"))
	out.Truncate(6 * MiB)
	// Only the two 1 MiB blocks holding data are written.
	if n, err := copyNonZero(out, in, 0, 5*MiB); err != nil || n != 2*MiB {
		t.Fatalf("copyNonZero = %d bytes, %v", n, err)
	}
	out.Close()
	f.Close()
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(filepath.Join(dir, "dst"))
	if !bytes.Equal(b[:len(a)], a) || !allZero(b[len(a):]) {
		t.Fatal("zero-skipping copy lost data")
	}
}

func TestInMemoryTouchesNoFiles(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	s := openT(t, Options{PoolSize: GiB})
	a := mustAdd(t, s, pvc("a", MiB))
	if _, err := s.CopyDisk("a", pvc("b", MiB)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDisk(a.ID, func(d *Disk) error { d.FileSize *= 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDisk(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveFile("storage-pool/k8s/a.img"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(cwd)
	if err != nil || len(entries) != 0 {
		t.Fatalf("in-memory store created files: %v %v", entries, err)
	}
	if len(s.st.tombs) != 0 {
		t.Fatalf("in-memory store keeps tombs: %v", s.st.tombs)
	}
}

func TestPoolConfiguration(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("a new state directory without PoolSize opened")
	}
	if _, err := Open(Options{}); err == nil {
		t.Fatal("an in-memory store without PoolSize opened")
	}
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	mustAdd(t, s, pvc("a", MiB))
	s.Close()

	s = openT(t, Options{Dir: dir})
	if p := s.Pool(); p.Name != DefaultPool || p.Size != GiB || p.Used != MiB {
		t.Fatalf("pool after reopen %+v", p)
	}
	s.Close()

	s = openT(t, Options{Dir: dir, Pool: DefaultPool, PoolSize: 2 * GiB})
	if p := s.Pool(); p.Size != 2*GiB {
		t.Fatalf("pool size not updated: %+v", p)
	}
	s.Close()
	s = openT(t, Options{Dir: dir})
	if p := s.Pool(); p.Size != 2*GiB {
		t.Fatalf("pool size update not persisted: %+v", p)
	}
	s.Close()

	if _, err := Open(Options{Dir: dir, Pool: "other-pool"}); err == nil {
		t.Fatal("opened a state directory under a different pool name")
	}

	m := openT(t, Options{Pool: "tank", PoolSize: GiB})
	d := pvc("x", MiB)
	d.FilePath = "/tank/x.img"
	mustAdd(t, m, d)
	if _, err := m.AddDisk(pvc("y", MiB)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("file outside the configured pool: %v", err)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	openT(t, Options{Dir: dir, PoolSize: GiB})
	if s, err := Open(Options{Dir: dir, PoolSize: GiB}); err == nil {
		s.Close()
		t.Fatal("two stores opened the same directory")
	}
}

func TestClosedStoreRefusesChanges(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), PoolSize: GiB})
	s.Close()
	if _, err := s.AddDisk(pvc("a", MiB)); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddDisk after Close: %v", err)
	}
}

func TestReplayHealsHost(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	a := mustAdd(t, s, pvc("a", 10*MiB))
	gone := mustAdd(t, s, pvc("gone", 10*MiB))
	if err := s.RemoveDisk(gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveFile("storage-pool/k8s/gone.img"); err != nil {
		t.Fatal(err)
	}
	src := mustAdd(t, s, pvc("src", 10*MiB))
	writeAt(t, s.BackingPath(src.FilePath), []byte("snapshot me"), MiB)
	clone, err := s.CopyDisk("src", pvc("clone", 10*MiB))
	if err != nil {
		t.Fatal(err)
	}
	big := mustAdd(t, s, pvc("big", 10*MiB))
	want := viewOf(s)
	s.Close() // Close does not compact: the records above are still in the journal

	// Undo each host change as if the crash came right after its journal write.
	if err := os.Remove(s.BackingPath(a.FilePath)); err != nil { // add: file never created
		t.Fatal(err)
	}
	os.WriteFile(s.BackingPath("/storage-pool/k8s/gone.img"), []byte("unlink never happened"), 0o644)
	recs, _, _, err := readJournal(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	var stage string
	for _, r := range recs {
		if r.Op == opCopy && r.Disk.Slot == "clone" {
			stage = filepath.Join(dir, "tmp", r.Stage) // copy: never renamed
		}
	}
	if stage == filepath.Join(dir, "tmp") || stage == "" {
		t.Fatalf("no staged copy in the journal: %+v", recs)
	}
	if err := os.Rename(s.BackingPath(clone.FilePath), stage); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.BackingPath(big.FilePath), 20*MiB); err != nil { // grown by someone else
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tmp", "copy-999"), []byte("never journaled"), 0o644)

	s = openT(t, Options{Dir: dir})
	sameView(t, "after healing replay", viewOf(s), want)
	if fi, err := os.Stat(s.BackingPath(a.FilePath)); err != nil || fi.Size() != 10*MiB {
		t.Fatalf("journaled add not recreated: %v %v", fi, err)
	}
	if _, err := os.Stat(s.BackingPath("/storage-pool/k8s/gone.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journaled removal not carried out: %v", err)
	}
	checkData(t, s.BackingPath(clone.FilePath), []byte("snapshot me"), MiB, 10*MiB)
	if fi, _ := os.Stat(s.BackingPath(big.FilePath)); fi.Size() != 20*MiB {
		t.Fatalf("replay shrank a host file to %d", fi.Size())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Fatalf("tmp not cleaned: %v", entries)
	}
}

func TestImportOrphanFiles(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	mustAdd(t, s, pvc("a", MiB))
	s.Close()
	p := filepath.Join(dir, "files", "storage-pool", "left", "over.img")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Dir: dir})
	f, ok := s.FileByName("storage-pool/left/over.img")
	if !ok || f.Size != 4096 || f.Type != ".img file" {
		t.Fatalf("orphan not imported: %+v %v", f, ok)
	}
	if d, ok := s.FileByName("storage-pool/left"); !ok || !d.Dir {
		t.Fatal("orphan's directory not imported")
	}
	if s.Pool().Used != MiB+4096 {
		t.Fatalf("orphan not accounted: %+v", s.Pool())
	}
	d := pvc("adopter", MiB)
	d.FilePath = "/storage-pool/left/over.img"
	mustAdd(t, s, d)
	checkData(t, p, bytes.Repeat([]byte{1}, 4096), 0, MiB)
	s.Close()
	s = openT(t, Options{Dir: dir})
	if got, ok := s.DiskBySlot("adopter"); !ok || got.FileSize != MiB {
		t.Fatalf("adoption of an imported file not persisted: %+v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	eachMode(t, func(t *testing.T, dir string) {
		s := openT(t, Options{Dir: dir, PoolSize: 100 * GiB, Clock: clock.New()})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					slot := fmt.Sprintf("g%d-%d", g, i)
					d, err := s.AddDisk(pvc(slot, MiB))
					if err != nil {
						t.Error(err)
						return
					}
					if _, ok := s.DiskBySlot(slot); !ok {
						t.Errorf("%s vanished", slot)
					}
					s.Disks()
					s.Files()
					s.Pool()
					if i%2 == 0 {
						if _, err := s.UpdateDisk(d.ID, func(d *Disk) error { d.FileSize *= 2; return nil }); err != nil {
							t.Error(err)
						}
					} else {
						if err := s.RemoveDisk(d.ID); err != nil {
							t.Error(err)
						}
						if err := s.RemoveFile(fileName(d.FilePath)); err != nil {
							t.Error(err)
						}
					}
				}
			}()
		}
		wg.Wait()
		if n := s.DiskCount(); n != 100 {
			t.Fatalf("DiskCount = %d", n)
		}
		if s.Pool().Used != 200*MiB {
			t.Fatalf("used %d", s.Pool().Used)
		}
	})
}

// TestGrowFile: a new file is created at size, an existing one only ever
// grows (never shrinks, never rewritten), and a directory in the way is an
// error, whichever of growFile's paths (exclusive create or the careful
// one) handles it.
func TestGrowFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.img")
	if created, err := growFile(p, MiB); err != nil || !created {
		t.Fatalf("new file: created=%v, %v", created, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data"), 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, c := range []struct {
		size, want int64
	}{{1 << 10, MiB}, {MiB, MiB}, {2 * MiB, 2 * MiB}} {
		if created, err := growFile(p, c.size); err != nil || created {
			t.Fatalf("grow to %d: created=%v, %v", c.size, created, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != c.want || string(b[10:14]) != "data" {
			t.Fatalf("grow to %d: %d bytes, data %q; want %d bytes and the data kept", c.size, len(b), b[10:14], c.want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := growFile(filepath.Join(dir, "d"), MiB); err == nil {
		t.Fatal("growFile over a directory succeeded")
	}
}
