package emulator_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// BenchmarkAddFsync measures `/disk add` over SSH with fsync on (the binary's
// default), from one session and from 16 concurrent ones. With one flush per
// change the 16 sessions queue behind each other's fsync; with group commit
// they share flushes, so the parallel rate should be several times the
// sequential one.
//
// parallel16-nofsync is the same load without fsync: the ceiling the rest of
// the path (SSH, console, host files) sets, which no journal change can pass.
func BenchmarkAddFsync(b *testing.B) {
	emus := map[bool]*emulatortest.Emulator{
		true:  emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, Fsync: true}),
		false: emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50}),
	}
	rates := map[string]float64{}
	for _, mode := range []struct {
		name  string
		conns int
		fsync bool
	}{{"sequential", 1, true}, {"parallel16", 16, true}, {"parallel16-nofsync", 16, false}} {
		var seq atomic.Int64
		emu := emus[mode.fsync]
		b.Run(mode.name, func(b *testing.B) {
			rates[mode.name] = measure(b, mode.conns, func() (*gossh.Client, error) { return emu.Dial("admin") },
				func(worker, i int) string {
					slot := fmt.Sprintf("fs-%s-%d", mode.name, seq.Add(1))
					return "/disk add type=file file-path=/storage-pool/bench/" + slot + ".img file-size=1M slot=" + slot
				}, func(out string) bool { return out == "" })
			if s := rates["sequential"]; mode.name != "sequential" && s > 0 {
				b.ReportMetric(rates[mode.name]/s, "x-sequential")
			}
		})
	}
}

// BenchmarkSnapshotCopy copies a 50 GiB volume holding 100 MiB of data with
// copy-from and issues `/disk print` on a second session while the copy runs.
// It reports the copy's time, the bytes the new file allocates (what was
// really copied), and the print's latency (p50, p99, max) in three windows of
// the same length taken in turn in every iteration, so all three see the
// same load from the rest of the machine:
//
//   - idle: nothing else running;
//   - burner: another process spinning on a core for the window (the
//     contention a 2-core machine shared with other work causes anyway);
//   - during: the copy.
//
// x-idle-* compare the copy window with the idle one; x-burner-p99 with the
// burner, which tells the copy's own doing from the machine's.
func BenchmarkSnapshotCopy(b *testing.B) {
	const (
		volSize  = 50 << 30
		dataSize = 100 << 20
		chunk    = 1 << 20
	)
	emu := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, Fsync: true})
	src, err := emu.Store().AddDisk(store.Disk{Slot: "pvc-src", FilePath: "/storage-pool/k8s/pvc-src.img", FileSize: volSize})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(emu.Store().BackingPath(src.FilePath), os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	// 100 extents of 1 MiB spread over the whole volume, as a filesystem
	// scatters its metadata and a little data.
	n := dataSize / chunk
	for i := range n {
		if _, err := f.WriteAt(buf, int64(i)*(volSize/int64(n))); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	copier, err := emu.Dial("admin")
	if err != nil {
		b.Fatal(err)
	}
	defer copier.Close()
	printer, err := emu.Dial("admin")
	if err != nil {
		b.Fatal(err)
	}
	defer printer.Close()
	print := func() time.Duration {
		start := time.Now()
		if out, _, err := emulatortest.Exec(printer, "/disk print"); err != nil || len(out) == 0 {
			b.Fatalf("print: %q %v", out, err)
		}
		return time.Since(start)
	}
	printFor := func(d time.Duration, into []time.Duration) []time.Duration {
		for end := time.Now().Add(d); time.Now().Before(end); {
			into = append(into, print())
		}
		return into
	}
	for range 100 {
		print() // warm the session path before anything is measured
	}

	var copyTime time.Duration
	var allocated int64
	var idle, burner, during []time.Duration
	window := 100 * time.Millisecond // then the previous copy's length
	i := 0
	for b.Loop() {
		b.StopTimer()
		idle = printFor(window, idle)
		burn := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := burn.Start(); err != nil {
			b.Fatal(err)
		}
		burner = printFor(window, burner)
		burn.Process.Kill()
		burn.Wait()
		b.StartTimer()

		slot := fmt.Sprintf("snap-%d", i)
		i++
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			out, _, err := emulatortest.Exec(copier, "/disk add type=file copy-from=[find slot=pvc-src] file-path=/storage-pool/k8s/"+slot+".img slot="+slot)
			if err == nil && out != "" {
				err = fmt.Errorf("copy-from: %q", out)
			}
			done <- err
		}()
	prints:
		for {
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				break prints
			default:
				during = append(during, print())
			}
		}
		window = time.Since(start)
		copyTime += window
		b.StopTimer()
		fi, err := os.Stat(emu.Store().BackingPath("/storage-pool/k8s/" + slot + ".img"))
		if err != nil {
			b.Fatal(err)
		}
		allocated += fi.Sys().(*syscall.Stat_t).Blocks * 512
		if out := emu.Run("/disk remove [find slot=" + slot + "]"); out != "" {
			b.Fatal(out)
		}
		if out := emu.Run("/file remove [find name=storage-pool/k8s/" + slot + ".img]"); out != "" {
			b.Fatal(out)
		}
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(copyTime.Seconds()/float64(i), "copy-s")
	b.ReportMetric(float64(allocated)/float64(i)/(1<<20), "allocated-MiB")
	for _, w := range []struct {
		name string
		d    []time.Duration
	}{{"idle", idle}, {"burner", burner}, {"during", during}} {
		b.ReportMetric(ms(median(w.d)), "print-"+w.name+"-p50-ms")
		b.ReportMetric(ms(quantile(w.d, 0.99)), "print-"+w.name+"-p99-ms")
		b.ReportMetric(ms(slices.Max(w.d)), "print-"+w.name+"-max-ms")
	}
	b.ReportMetric(float64(median(during))/float64(median(idle)), "x-idle-p50")
	b.ReportMetric(float64(quantile(during, 0.99))/float64(quantile(idle, 0.99)), "x-idle-p99")
	b.ReportMetric(float64(quantile(during, 0.99))/float64(quantile(burner, 0.99)), "x-burner-p99")
	b.ReportMetric(float64(len(during))/float64(i), "prints/copy")
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}
