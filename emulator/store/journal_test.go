package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// frameStarts returns the offset of every intact frame in a journal.
func frameStarts(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := 0; off < len(b); {
		_, n, ok := decodeFrame(b[off:], maxRecordBytes)
		if !ok {
			t.Fatalf("journal damaged at %d before the test touched it", off)
		}
		offs = append(offs, off)
		off += n
	}
	return offs
}

// restoreDir makes a fresh state directory from a saved one, with the given
// journal contents.
func restoreDir(t *testing.T, saved string, journal []byte) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "state")
	if err := os.CopyFS(d, os.DirFS(saved)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, journalFile), journal, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	a := mustAdd(t, s, pvc("a", 64<<10))
	b := mustAdd(t, s, pvc("b", 64<<10))
	if _, err := s.UpdateDisk(a.ID, func(d *Disk) error { d.FileSize *= 2; d.Comment = "grown"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDisk(b.ID); err != nil {
		t.Fatal(err)
	}
	acked := viewOf(s)
	// The host as it was before the last operation: a torn record is one
	// whose write never finished, so its host change never started.
	before := filepath.Join(t.TempDir(), "before")
	if err := os.CopyFS(before, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(before, lockFile))
	c := pvc("c", 64<<10)
	c.Comment = "the last, torn record"
	mustAdd(t, s, c)
	full := viewOf(s)
	s.Close()

	journal, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	starts := frameStarts(t, journal)
	if len(starts) != 5 {
		t.Fatalf("expected 5 journal records, found %d", len(starts))
	}
	last := starts[len(starts)-1]
	snap, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	// One working directory, reset in place before each cut: Open only
	// grows the files that exist before the last record, and the full cut,
	// which creates the last disk's file, comes last.
	work := restoreDir(t, before, nil)
	for cut := last; cut <= len(journal); cut++ {
		if err := os.WriteFile(filepath.Join(work, journalFile), journal[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, snapshotFile), snap, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: work, Clock: clock.FromLibrary(newMock())})
		if err != nil {
			t.Fatalf("cut at %d of %d: Open: %v", cut, len(journal), err)
		}
		want := acked
		if cut == len(journal) {
			want = full
		}
		sameView(t, fmt.Sprintf("cut at %d of %d", cut, len(journal)), viewOf(s), want)
		if _, err := os.Stat(s.BackingPath(c.FilePath)); (err == nil) != (cut == len(journal)) {
			t.Fatalf("cut at %d: host file of the torn add: %v", cut, err)
		}
		s.Close()
		if cut == last+1 {
			// Open leaves no torn bytes for the next record to land behind.
			if j, _ := os.ReadFile(filepath.Join(work, journalFile)); len(j) != 0 {
				t.Fatalf("journal holds %d bytes after compaction", len(j))
			}
		}
	}

	// A tail the filesystem padded with zeros, or filled with junk, is torn
	// too: nothing intact follows it.
	for name, tail := range map[string][]byte{
		"zeros": make([]byte, 4096),
		"junk":  bytes.Repeat([]byte("\x17junk"), 100),
		"magic": append(append([]byte{}, frameMagic[:]...), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4),
	} {
		d := restoreDir(t, dir, append(append([]byte{}, journal...), tail...))
		s, err := Open(Options{Dir: d, Clock: clock.FromLibrary(newMock())})
		if err != nil {
			t.Fatalf("%s tail: %v", name, err)
		}
		sameView(t, name+" tail", viewOf(s), full)
		s.Close()
	}
}

func TestCorruptMiddleIsFatal(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	for _, slot := range []string{"a", "b", "c", "d", "e"} {
		mustAdd(t, s, pvc(slot, MiB))
	}
	s.Close()
	journal, _ := os.ReadFile(filepath.Join(dir, journalFile))
	starts := frameStarts(t, journal)
	second, third := starts[1], starts[2]

	damage := map[string]func(b []byte) []byte{
		"payload bit":  func(b []byte) []byte { b[second+frameHeader+5] ^= 0x01; return b },
		"length":       func(b []byte) []byte { b[second+4] ^= 0x40; return b },
		"length huge":  func(b []byte) []byte { b[second+7] = 0xff; return b },
		"crc":          func(b []byte) []byte { b[second+9] ^= 0x80; return b },
		"magic":        func(b []byte) []byte { b[second] = 'X'; return b },
		"zeroed block": func(b []byte) []byte { clear(b[second : second+20]); return b },
		"record lost":  func(b []byte) []byte { return append(b[:second:second], b[third:]...) },
	}
	for name, f := range damage {
		damaged := f(append([]byte{}, journal...))
		d := restoreDir(t, dir, damaged)
		s, err := Open(Options{Dir: d, Clock: clock.FromLibrary(newMock())})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open accepted a journal damaged in the middle", name)
			continue
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: unclear error %v", name, err)
		}
		if after, _ := os.ReadFile(filepath.Join(d, journalFile)); !bytes.Equal(after, damaged) {
			t.Errorf("%s: failed Open modified the journal", name)
		}
	}

	// The snapshot is never legitimately torn: any damage is fatal.
	snap, _ := os.ReadFile(filepath.Join(dir, snapshotFile))
	for _, cut := range []int{len(snap) - 1, len(snap) / 2} {
		d := restoreDir(t, dir, journal)
		os.WriteFile(filepath.Join(d, snapshotFile), snap[:cut], 0o644)
		if s, err := Open(Options{Dir: d, Clock: clock.FromLibrary(newMock())}); err == nil {
			s.Close()
			t.Errorf("snapshot cut to %d bytes accepted", cut)
		}
	}
}

// A crash after the snapshot is renamed into place but before the journal is
// emptied leaves records the snapshot already contains; replaying them again
// would fail (duplicate slots) or double-count.
func TestCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: GiB})
	a := mustAdd(t, s, pvc("a", MiB))
	mustAdd(t, s, pvc("b", MiB))
	s.RemoveDisk(a.ID)
	s.RemoveFile("storage-pool/k8s/a.img")
	want := viewOf(s)
	s.Close()
	oldJournal, _ := os.ReadFile(filepath.Join(dir, journalFile))
	s = openT(t, Options{Dir: dir}) // compacts: the snapshot now covers oldJournal
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, journalFile), oldJournal, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Dir: dir})
	sameView(t, "stale journal after compaction", viewOf(s), want)
	// New records after the stale ones still count.
	mustAdd(t, s, pvc("c", MiB))
	want = viewOf(s)
	s.Close()
	s = openT(t, Options{Dir: dir})
	sameView(t, "reopen", viewOf(s), want)
}

func TestRuntimeCompaction(t *testing.T) {
	oldMin, oldFactor := compactMinRecords, compactFactor
	compactMinRecords, compactFactor = 20, 1
	t.Cleanup(func() { compactMinRecords, compactFactor = oldMin, oldFactor })

	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, PoolSize: 10 * GiB})
	snap0, _ := os.ReadFile(filepath.Join(dir, snapshotFile))
	for i := range 200 {
		d := mustAdd(t, s, pvc("d"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), MiB))
		if i%3 != 0 {
			s.RemoveDisk(d.ID)
			s.RemoveFile(fileName(d.FilePath))
		}
	}
	want := viewOf(s)
	journal, _ := os.ReadFile(filepath.Join(dir, journalFile))
	n := len(frameStarts(t, journal))
	if limit := max(compactMinRecords, compactFactor*(s.DiskCount()+len(s.Files()))) + 1; n > limit {
		t.Fatalf("journal holds %d records, compaction should keep it <= %d", n, limit)
	}
	if snap, _ := os.ReadFile(filepath.Join(dir, snapshotFile)); bytes.Equal(snap, snap0) {
		t.Fatal("no snapshot written at runtime")
	}
	s.Close()
	s = openT(t, Options{Dir: dir})
	sameView(t, "after runtime compactions", viewOf(s), want)
}

// The journal outlives the code that wrote it: this pins the record encoding
// (field names, units, time format) so a refactor cannot silently make old
// state directories unreadable.
func TestJournalFormatIsStable(t *testing.T) {
	dir := t.TempDir()
	var j []byte
	for _, rec := range []string{
		`{"seq":1,"op":"pool","name":"storage-pool","size":1099511627776}`,
		`{"seq":2,"op":"add","t":"2025-11-12T00:36:13Z","disk":{"id":1,"slot":"pvc-a1","filePath":"/storage-pool/k8s/pvc-a1.img","fileSize":10737418240,"nvmeTcpExport":true,"nvmeTcpServerPort":4420,"nvmeTcpServerNqn":"nqn.2000-02.com.mikrotik:pvc-a1","comment":"c","created":"2025-11-12T00:36:13Z"}}`,
		`{"seq":3,"op":"update","t":"2025-11-12T00:40:00Z","disk":{"id":1,"slot":"pvc-a1","filePath":"/storage-pool/k8s/pvc-a1.img","fileSize":21474836480,"nvmeTcpExport":true,"nvmeTcpServerPort":4420,"nvmeTcpServerNqn":"nqn.2000-02.com.mikrotik:pvc-a1","nvmeTcpServerAllowHostName":"node-1","comment":"c","created":"2025-11-12T00:36:13Z"}}`,
		`{"seq":4,"op":"add","t":"2025-11-12T00:41:50Z","disk":{"id":2,"slot":"pvc-b2","filePath":"/storage-pool/k8s/pvc-b2.img","fileSize":1048576,"created":"2025-11-12T00:41:50Z"}}`,
		`{"seq":5,"op":"rmdisk","id":2}`,
	} {
		j = appendFrame(j, []byte(rec))
	}
	if err := os.WriteFile(filepath.Join(dir, journalFile), j, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openT(t, Options{Dir: dir})
	created := time.Date(2025, 11, 12, 0, 36, 13, 0, time.UTC)
	want := Disk{ID: 1, Slot: "pvc-a1", FilePath: "/storage-pool/k8s/pvc-a1.img", FileSize: 20 * GiB,
		NVMeTCPExport: true, NVMeTCPServerPort: 4420, NVMeTCPServerNQN: "nqn.2000-02.com.mikrotik:pvc-a1",
		NVMeTCPServerAllowHostName: "node-1", Comment: "c", Created: created}
	if got, ok := s.DiskBySlot("pvc-a1"); !ok || got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if _, ok := s.DiskBySlot("pvc-b2"); ok || s.DiskCount() != 1 {
		t.Fatal("removed disk decoded as present")
	}
	f, _ := s.FileByName("storage-pool/k8s/pvc-a1.img")
	if f.Size != 20*GiB || !f.LastModified.Equal(time.Date(2025, 11, 12, 0, 40, 0, 0, time.UTC)) {
		t.Fatalf("file %+v", f)
	}
	if p := s.Pool(); p.Size != GiB<<10 || p.Used != 20*GiB+MiB {
		t.Fatalf("pool %+v", p)
	}
}
