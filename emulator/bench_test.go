package emulator_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// benchDisks is how many disks are present while the emulator is measured.
const benchDisks = 10000

// BenchmarkThroughput measures commands per second over SSH: the bare floor
// server and the emulator with 10,000 disks present, each sequentially on one
// connection and with 16 parallel connections. Emulator commands alternate
// `/disk add` and `/disk print detail where slot=` for the disk just added.
//
// The floor and the emulator are measured in alternating batches within one
// sub-benchmark, and x-floor is the ratio of their median batch rates: on a
// machine shared with other work, two sub-benchmarks measured seconds apart
// see different loads, which is what made this ratio swing between runs.
func BenchmarkThroughput(b *testing.B) {
	floor := emulatortest.StartFloor(b)
	emu := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50})
	populate(b, emu.Store(), benchDisks)
	mem := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, InMemory: true})
	populate(b, mem.Store(), benchDisks)

	for _, mode := range []struct {
		name  string
		conns int
	}{{"sequential", 1}, {"parallel16", 16}} {
		var seq atomic.Int64
		b.Run(mode.name, func(b *testing.B) {
			floorSide := side{
				dial: func() (*gossh.Client, error) { return gossh.Dial("tcp", floor.Addr, floor.ClientConfig()) },
				cmd:  func(worker, i int) string { return "/disk print detail" },
				ok:   func(out string) bool { return out == emulatortest.FloorReply },
			}
			emuSide := func(e *emulatortest.Emulator) side {
				return side{
					dial: func() (*gossh.Client, error) { return e.Dial("admin") },
					cmd: func(worker, i int) string {
						n := seq.Add(1)
						slot := fmt.Sprintf("bench-%d-%d", worker, n/2)
						if n%2 == 0 {
							return "/disk add type=file file-path=/storage-pool/bench/" + slot + ".img file-size=1M slot=" + slot
						}
						return "/disk print detail where slot=" + slot
					},
					ok: func(string) bool { return true },
				}
			}
			rates := measureInterleaved(b, mode.conns, floorSide, emuSide(emu), emuSide(mem))
			b.ReportMetric(rates[0], "floor-cmds/s")
			b.ReportMetric(rates[1], "cmds/s")
			b.ReportMetric(rates[1]/rates[0], "x-floor")
			b.ReportMetric(rates[2]/rates[0], "x-floor-inmemory")
		})
	}
}

// side is one server under an interleaved measurement.
type side struct {
	dial func() (*gossh.Client, error)
	cmd  func(worker, i int) string
	ok   func(string) bool
}

// interleaveBatch is the commands per batch and side: small enough that a
// benchmark run holds many batches (so the median is a median), large enough
// that the switch between sides costs nothing.
const interleaveBatch = 64

// measureInterleaved runs b.N commands on each side over conns connections
// each, in alternating batches, and returns the median batch rate of each
// side in commands/s.
func measureInterleaved(b *testing.B, conns int, sides ...side) []float64 {
	b.Helper()
	clients := make([][]*gossh.Client, len(sides))
	for s, sd := range sides {
		for range conns {
			c, err := sd.dial()
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			clients[s] = append(clients[s], c)
		}
	}
	batchRates := make([][]float64, len(sides))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(interleaveBatch, b.N-done)
		// Alternate which side goes first, so neither always follows
		// the other's tail (its GC, its closing sessions).
		for k := range sides {
			s := (k + done/interleaveBatch) % len(sides)
			elapsed := runBatch(b, clients[s], done, n, sides[s])
			batchRates[s] = append(batchRates[s], float64(n)/elapsed.Seconds())
		}
		done += n
	}
	b.StopTimer()
	out := make([]float64, len(sides))
	for s, r := range batchRates {
		slices.Sort(r)
		out[s] = r[len(r)/2]
	}
	return out
}

// runBatch runs commands base+1..base+n of one side over its clients.
func runBatch(b *testing.B, clients []*gossh.Client, base, n int, sd side) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	start := time.Now()
	for w, c := range clients {
		wg.Add(1)
		go func(w int, c *gossh.Client) {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				out, _, err := emulatortest.Exec(c, sd.cmd(w, base+i))
				if err != nil || !sd.ok(out) {
					errs <- fmt.Errorf("command %d: %q %v", base+i, out, err)
					return
				}
			}
		}(w, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkPrintAll10k is the latency of a full `/disk print detail` with 10,000
// disks: the one operation allowed to be O(n).
func BenchmarkPrintAll10k(b *testing.B) {
	emu := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50})
	populate(b, emu.Store(), benchDisks)
	c, err := emu.Dial("admin+ct512w")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// The client keeps one reply buffer, as a client that reads big listings
	// would, so what the benchmark allocates is the emulator's (and the SSH
	// packets'), not a bytes.Buffer regrown to 5 MB on every iteration.
	var out bytes.Buffer
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := execInto(c, "/disk print detail", &out); err != nil || out.Len() < benchDisks*100 {
			b.Fatalf("print: %d bytes, %v", out.Len(), err)
		}
	}
	b.ReportMetric(float64(out.Len()), "reply-bytes")
	// CPU time, client and emulator together, tells more than ns/op on a
	// machine shared with other work.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// execInto runs cmd in a new session and collects its stdout into out.
func execInto(c *gossh.Client, cmd string, out *bytes.Buffer) error {
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdout = out
	return s.Run(cmd)
}

func populate(b *testing.B, st *store.Store, n int) {
	b.Helper()
	for i := st.DiskCount(); i < n; i++ {
		slot := fmt.Sprintf("pvc-%08d", i)
		if _, err := st.AddDisk(store.Disk{
			Slot: slot, FilePath: "/storage-pool/k8s/" + slot + ".img", FileSize: 1 << 30,
			NVMeTCPExport: true, NVMeTCPServerPort: 4420, NVMeTCPServerNQN: "nqn.2000-02.com.mikrotik:" + slot,
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// measure runs b.N commands over conns connections and reports commands/s.
func measure(b *testing.B, conns int, dial func() (*gossh.Client, error), cmd func(worker, i int) string, ok func(string) bool) float64 {
	b.Helper()
	clients := make([]*gossh.Client, conns)
	for i := range clients {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	b.ResetTimer()
	start := time.Now()
	for w, c := range clients {
		wg.Add(1)
		go func(w int, c *gossh.Client) {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				out, _, err := emulatortest.Exec(c, cmd(w, i))
				if err != nil || !ok(out) {
					errs <- fmt.Errorf("command %d: %q %v", i, out, err)
					return
				}
			}
		}(w, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "cmds/s")
	return rate
}
