package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// The group-commit crash test re-executes the test binary (see TestMain) as a
// child in which several goroutines add disks concurrently with fsync on. It
// reports every completed journal fsync (SYNC <bytes covered>) and every
// acknowledgement (ACK <disk>). The parent kills it with SIGKILL and then
// plays the machine crash: the journal is cut back to what the last fsync
// covered, as if the page cache were lost. Every acknowledged disk must
// still be there, exactly as acknowledged.
const gcCrashDirEnv = "STORE_GC_CRASH_DIR"

func gcCrashChild() {
	dir := os.Getenv(gcCrashDirEnv)
	s, err := Open(Options{Dir: dir, PoolSize: crashPoolSize, Clock: clock.FromLibrary(newMock()), Fsync: true})
	if err != nil {
		os.Stdout.WriteString("ERR " + err.Error() + "\n")
		os.Exit(2)
	}
	realSync := s.syncJournal
	s.syncJournal = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := realSync(f); err != nil {
			return err
		}
		// Written before any caller this flush covers can be acknowledged.
		os.Stdout.WriteString("SYNC " + strconv.FormatInt(fi.Size(), 10) + "\n")
		return nil
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				d, err := s.AddDisk(pvc(fmt.Sprintf("g%d-%d", w, i), 1<<16))
				if err != nil {
					os.Stdout.WriteString("ERR " + err.Error() + "\n")
					os.Exit(2)
				}
				b, _ := json.Marshal(d)
				os.Stdout.WriteString("ACK " + string(b) + "\n")
			}
		})
	}
	wg.Wait()
}

func TestGroupCommitSurvivesMachineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 4 {
		dir := t.TempDir()
		cmd, out, stderr := startChild(t, gcCrashDirEnv+"="+dir)
		target := 20 + rng.IntN(200)
		acked := map[string]Disk{}
		var synced int64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			switch kind {
			case "SYNC":
				n, _ := strconv.ParseInt(rest, 10, 64)
				synced = max(synced, n)
			case "ACK":
				var d Disk
				if err := json.Unmarshal([]byte(rest), &d); err != nil {
					t.Fatalf("bad ACK %q: %v", rest, err)
				}
				acked[d.Slot] = d
				if len(acked) == target {
					cmd.Process.Signal(syscall.SIGKILL)
				}
			default:
				cmd.Process.Kill()
				t.Fatalf("child: %s\n%s", sc.Text(), stderr.String())
			}
		}
		cmd.Wait()
		if len(acked) < target {
			t.Fatalf("child died after %d acknowledgements\n%s", len(acked), stderr.String())
		}

		// The machine crash: nothing after the last completed fsync.
		jpath := filepath.Join(dir, journalFile)
		if fi, err := os.Stat(jpath); err != nil || fi.Size() < synced {
			t.Fatalf("journal %v shorter than its last fsync (%d): %v", fi, synced, err)
		}
		if err := os.Truncate(jpath, synced); err != nil {
			t.Fatal(err)
		}
		s := openT(t, Options{Dir: dir, Clock: clock.FromLibrary(newMock())})
		for slot, want := range acked {
			if got, ok := s.DiskBySlot(slot); !ok || got != want {
				t.Fatalf("round %d: acknowledged %+v lost in the crash (found %+v, %v)", round, want, got, ok)
			}
		}
		s.Close()
	}
}
