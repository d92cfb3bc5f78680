package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// The crash test re-executes the test binary as a child that hammers a store
// and is killed with SIGKILL at a random moment. TestMain turns the binary
// into that child when crashDirEnv is set.
const (
	crashDirEnv    = "STORE_CRASH_CHILD_DIR"
	crashSeedEnv   = "STORE_CRASH_CHILD_SEED"
	crashPrefixEnv = "STORE_CRASH_CHILD_PREFIX"
	crashFsyncEnv  = "STORE_CRASH_CHILD_FSYNC"
	// STORE_CRASH_SEED reproduces a failed run of TestCrashRecovery.
	crashBaseSeedEnv = "STORE_CRASH_SEED"

	crashPoolSize = 1 << 40
)

func TestMain(m *testing.M) {
	if os.Getenv(crashDirEnv) != "" {
		crashChild()
		os.Exit(0)
	}
	if os.Getenv(copyCrashDirEnv) != "" {
		copyCrashChild()
	}
	if os.Getenv(gcCrashDirEnv) != "" {
		gcCrashChild()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashLine is the JSON part of a BEGIN or ACK line.
type crashLine struct {
	Disk Disk   `json:"disk"`
	Name string `json:"name"` // file name (rmfile, and the disk's file)
}

func crashChild() {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stdout, "ERR "+format+"\n", args...)
		os.Exit(2)
	}
	dir := os.Getenv(crashDirEnv)
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	prefix := os.Getenv(crashPrefixEnv)
	// Compact often, so kills also land in the middle of compactions.
	compactMinRecords, compactFactor = 50, 1
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	clk := libclock.NewMock()
	clk.Set(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seed%1e6) * time.Second))
	s, err := Open(Options{Dir: dir, PoolSize: crashPoolSize, Clock: clock.FromLibrary(clk), Fsync: os.Getenv(crashFsyncEnv) == "1"})
	if err != nil {
		fail("open: %v", err)
	}
	var live []Disk
	var orphans []string
	used := map[string]bool{}
	for _, d := range s.Disks() {
		live = append(live, d)
		used[fileName(d.FilePath)] = true
	}
	for _, f := range s.Files() {
		if !f.Dir && !used[f.Name] {
			orphans = append(orphans, f.Name)
		}
	}
	emit := func(kind, op, key string, l crashLine) {
		b, _ := json.Marshal(l)
		// One write per line: the parent must see every ACK written
		// before the kill, and nothing half-written.
		os.Stdout.WriteString(kind + " " + op + " " + key + " " + string(b) + "\n")
	}
	pick := func(n int) int { return rng.IntN(n) }
	for i := 0; ; i++ {
		clk.Add(time.Second)
		r := pick(100)
		switch {
		case len(live) < 5 || (r < 35 && len(live) < 100):
			d := pvc(fmt.Sprintf("%s%d", prefix, i), int64(1+pick(8))<<16)
			d.Comment = fmt.Sprintf("seed %d op %d", seed, i)
			if len(orphans) > 0 && pick(4) == 0 {
				k := pick(len(orphans))
				d.FilePath = "/" + orphans[k]
				orphans = append(orphans[:k], orphans[k+1:]...)
			}
			emit("BEGIN", "add", d.Slot, crashLine{Disk: d, Name: fileName(d.FilePath)})
			got, err := s.AddDisk(d)
			if err != nil {
				fail("add %s: %v", d.Slot, err)
			}
			emit("ACK", "add", d.Slot, crashLine{Disk: got, Name: fileName(got.FilePath)})
			live = append(live, got)
		case r < 45 && len(live) < 100:
			src := live[pick(len(live))]
			d := pvc(fmt.Sprintf("%s%d", prefix, i), int64(pick(16))<<16)
			d.Comment = "copy of " + src.Slot
			emit("BEGIN", "copy", d.Slot, crashLine{Disk: d, Name: fileName(d.FilePath)})
			got, err := s.CopyDisk(src.Slot, d)
			if err != nil {
				fail("copy %s: %v", d.Slot, err)
			}
			emit("ACK", "copy", d.Slot, crashLine{Disk: got, Name: fileName(got.FilePath)})
			live = append(live, got)
		case r < 70:
			k := pick(len(live))
			want := live[k]
			want.FileSize += int64(pick(3)) << 16
			want.Comment = fmt.Sprintf("updated by op %d", i)
			emit("BEGIN", "update", want.Slot, crashLine{Disk: want, Name: fileName(want.FilePath)})
			got, err := s.UpdateDisk(want.ID, func(d *Disk) error { d.FileSize, d.Comment = want.FileSize, want.Comment; return nil })
			if err != nil {
				fail("update %s: %v", want.Slot, err)
			}
			emit("ACK", "update", got.Slot, crashLine{Disk: got, Name: fileName(got.FilePath)})
			live[k] = got
		case r < 88 || len(orphans) == 0:
			k := pick(len(live))
			d := live[k]
			emit("BEGIN", "rmdisk", d.Slot, crashLine{Disk: d, Name: fileName(d.FilePath)})
			if err := s.RemoveDisk(d.ID); err != nil {
				fail("rmdisk %s: %v", d.Slot, err)
			}
			emit("ACK", "rmdisk", d.Slot, crashLine{Disk: d, Name: fileName(d.FilePath)})
			live = append(live[:k], live[k+1:]...)
			orphans = append(orphans, fileName(d.FilePath))
		default:
			k := pick(len(orphans))
			name := orphans[k]
			emit("BEGIN", "rmfile", name, crashLine{Name: name})
			if err := s.RemoveFile(name); err != nil {
				fail("rmfile %s: %v", name, err)
			}
			emit("ACK", "rmfile", name, crashLine{Name: name})
			orphans = append(orphans[:k], orphans[k+1:]...)
		}
	}
}

// crashModel is what the parent knows must be true: every acknowledged change.
type crashModel struct {
	disks map[string]Disk  // slot -> disk
	files map[string]int64 // regular file name -> size
}

func (m *crashModel) apply(op string, l crashLine) {
	switch op {
	case "add", "copy", "update":
		m.disks[l.Disk.Slot] = l.Disk
		m.files[l.Name] = l.Disk.FileSize
	case "rmdisk":
		delete(m.disks, l.Disk.Slot)
	case "rmfile":
		delete(m.files, l.Name)
	}
}

// resolve settles the one operation that was in flight when the child died:
// it may or may not have happened, but if it did it must look exactly as
// requested. The model then follows what the store shows.
func (m *crashModel) resolve(t *testing.T, s *Store, op string, req crashLine) {
	t.Helper()
	got, present := s.DiskBySlot(req.Disk.Slot)
	switch op {
	case "add", "copy", "update":
		if !present {
			if op == "update" {
				t.Fatalf("in-flight update made %s disappear", req.Disk.Slot)
			}
			return
		}
		if op == "update" && got == m.disks[req.Disk.Slot] {
			return // did not happen
		}
		want := req.Disk
		want.ID, want.Created = got.ID, got.Created
		if op != "update" && got.FileSize >= want.FileSize {
			want.FileSize = got.FileSize // adoption or copy may round up
		}
		if got != want {
			t.Fatalf("in-flight %s of %s left %+v, requested %+v", op, req.Disk.Slot, got, req.Disk)
		}
		m.apply(op, crashLine{Disk: got, Name: req.Name})
	case "rmdisk":
		if !present {
			m.apply(op, req)
		} else if got != req.Disk {
			t.Fatalf("in-flight rmdisk changed %s: %+v", req.Disk.Slot, got)
		}
	case "rmfile":
		if _, ok := s.FileByName(req.Name); !ok {
			m.apply(op, req)
		}
	}
}

func (m *crashModel) verify(t *testing.T, s *Store, dir string) {
	t.Helper()
	disks := s.Disks()
	if len(disks) != len(m.disks) {
		t.Fatalf("store has %d disks, %d acknowledged", len(disks), len(m.disks))
	}
	for _, d := range disks {
		want, ok := m.disks[d.Slot]
		if !ok {
			t.Fatalf("unacknowledged disk %+v", d)
		}
		if d != want {
			t.Fatalf("disk %s is %+v, acknowledged %+v", d.Slot, d, want)
		}
		fi, err := os.Stat(s.BackingPath(d.FilePath))
		if err != nil || fi.Size() < d.FileSize {
			t.Fatalf("backing file of %s: %v (size %v, want >= %d)", d.Slot, err, fi, d.FileSize)
		}
	}
	var used int64
	regular := 0
	for _, f := range s.Files() {
		if f.Dir {
			continue
		}
		regular++
		used += f.Size
		if want, ok := m.files[f.Name]; !ok || want != f.Size {
			t.Fatalf("file %s has size %d; acknowledged: %d (known %v)", f.Name, f.Size, want, ok)
		}
	}
	if regular != len(m.files) {
		t.Fatalf("store has %d files, %d acknowledged", regular, len(m.files))
	}
	if p := s.Pool(); p.Used != used || p.Free() != p.Size-used {
		t.Fatalf("pool %+v, files add up to %d", p, used)
	}
	// The host holds exactly the files the store accounts for.
	host := 0
	root := filepath.Join(dir, filesDir)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		f, ok := s.FileByName(filepath.ToSlash(rel))
		fi, _ := e.Info()
		if !ok || f.Dir || fi.Size() != f.Size {
			t.Errorf("host file %s (%d bytes) does not match the store (%+v, %v)", rel, fi.Size(), f, ok)
		}
		host++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if host != regular {
		t.Fatalf("host has %d files, store %d", host, regular)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(tmp) != 0 {
		t.Fatalf("staged copies left behind: %v", tmp)
	}
}

// startChild runs this test binary again as a crash child (no test runs;
// TestMain sees env and plays the child's part), with its stdout to read
// and its stderr kept for the failure message.
func startChild(t *testing.T, env ...string) (*exec.Cmd, io.ReadCloser, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, stderr
}

// runCrashRound starts a child on dir, kills it at a random moment chosen by
// rng, and returns the operation in flight (if any) after folding every
// acknowledged one into m.
func runCrashRound(t *testing.T, rng *rand.Rand, dir, prefix string, fsync bool, m *crashModel) (op string, req crashLine, inFlight bool) {
	t.Helper()
	fs := "0"
	if fsync {
		fs = "1"
	}
	cmd, out, stderr := startChild(t, crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10),
		crashPrefixEnv+"="+prefix, crashFsyncEnv+"="+fs)
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	// Either after a random number of acknowledgements (mid-operation,
	// often mid-compaction) or after a random time from the start (which
	// can land inside Open's own recovery and compaction).
	ackTarget, timer := -1, (<-chan time.Time)(nil)
	if rng.IntN(5) == 0 {
		timer = time.After(time.Duration(rng.IntN(40)) * time.Millisecond)
	} else {
		ackTarget = 1 + rng.IntN(250)
	}
	jitter := time.Duration(rng.IntN(500)) * time.Microsecond
	kill := func() {
		time.Sleep(jitter)
		cmd.Process.Signal(syscall.SIGKILL)
	}
	acks, killed := 0, false
	for {
		select {
		case <-timer:
			timer = nil
			if !killed {
				killed = true
				kill()
			}
			continue
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				if !killed {
					t.Fatalf("child exited by itself: %v\n%s", cmd.ProcessState, stderr.String())
				}
				return op, req, inFlight
			}
			kind, rest, _ := strings.Cut(line, " ")
			if kind == "ERR" {
				cmd.Process.Kill()
				t.Fatalf("child failed: %s\n%s", rest, stderr.String())
			}
			o, rest, _ := strings.Cut(rest, " ")
			_, js, _ := strings.Cut(rest, " ")
			var l crashLine
			if err := json.Unmarshal([]byte(js), &l); err != nil {
				t.Fatalf("bad line from child %q: %v", line, err)
			}
			switch kind {
			case "BEGIN":
				op, req, inFlight = o, l, true
			case "ACK":
				m.apply(o, l)
				inFlight = false
				acks++
				if acks == ackTarget && !killed {
					killed = true
					kill()
				}
			default:
				t.Fatalf("unexpected line from child: %q", line)
			}
		}
	}
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary many times")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashBaseSeedEnv); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, crashBaseSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	const dirs, rounds = 4, 5 // 20 kill points
	for d := range dirs {
		dir := t.TempDir()
		fsync := d == 0
		m := &crashModel{disks: map[string]Disk{}, files: map[string]int64{}}
		for round := range rounds {
			op, req, inFlight := runCrashRound(t, rng, dir, fmt.Sprintf("d%dr%d-", d, round), fsync, m)
			// The child's own configuration: the kill may have come before
			// its first Open recorded the pool.
			s, err := Open(Options{Dir: dir, PoolSize: crashPoolSize, Clock: clock.FromLibrary(newMock())})
			if err != nil {
				t.Fatalf("dir %d round %d: Open after kill: %v", d, round, err)
			}
			if inFlight {
				m.resolve(t, s, op, req)
			}
			m.verify(t, s, dir)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
