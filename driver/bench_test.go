package driver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// floorNs measures, as a sub-benchmark named "floor", one round trip of the
// bare SSH floor server (a session that runs one command) on this machine and
// in this run, so the figures after it can be read as floor round trips.
func floorNs(b *testing.B) float64 {
	floor := emulatortest.StartFloor(b)
	c, err := gossh.Dial("tcp", floor.Addr, floor.ClientConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var ns float64
	b.Run("floor", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if out, _, err := emulatortest.Exec(c, "/disk print detail"); err != nil || out != emulatortest.FloorReply {
				b.Fatalf("floor: %q %v", out, err)
			}
		}
		ns = float64(time.Since(start).Nanoseconds()) / float64(b.N)
	})
	return ns
}

// commandCounter counts the emulator's command scripts (one per SSH session).
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) add(emulator.CommandRecord) { c.n.Add(1) }

// BenchmarkCreateDeleteVolume: CreateVolume + DeleteVolume pairs over gRPC,
// sequential, against the emulator over SSH with fsync off. Reported per
// pair: the SSH scripts sent (a create is an anchored view, then the add with
// its read-back; a delete a view, the removal with the view that proves it,
// and the file's removal with the listing that proves it) and the pair's
// cost in floor round trips of the same run.
func BenchmarkCreateDeleteVolume(b *testing.B) {
	floor := floorNs(b)
	cmds := &commandCounter{}
	sock, _, _ := startDriverOn(b, emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, CommandLog: cmds.add}), "node-a")
	cc, _ := dialCSI(b, sock)
	ctx := context.Background()
	var seq int
	b.Run("pair", func(b *testing.B) {
		before := cmds.n.Load()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			seq++
			name := fmt.Sprintf("pvc-bench-%d", seq)
			v, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolume().GetVolumeId()}); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pairs/s")
		b.ReportMetric(float64(cmds.n.Load()-before)/float64(b.N), "scripts/pair")
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/floor, "floor-RTs/pair")
	})
}

// BenchmarkCreateVolumeConcurrent16: 16 callers issuing CreateVolume for new
// volumes at once, against an emulator with fsync on (the binary's default)
// and off. What fsync costs here is the emulator journal's flush per
// acknowledged change; what the driver decides is how many commands, and
// how many of them mutating, each create sends.
func BenchmarkCreateVolumeConcurrent16(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			sock, _, _ := startDriverOn(b, emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, Fsync: fsync}), "node-a")
			cc, _ := dialCSI(b, sock)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-conc-%d", i),
							VolumeCapabilities: rwoMount, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
		})
	}
}

// BenchmarkControllerPublish1000: ControllerPublish latency with 1,000 volumes
// already attached (to 100 nodes), reported as p50 and p99. Each publish checks
// the node, reads the disk from RDS and takes the attachment decision.
func BenchmarkControllerPublish1000(b *testing.B) {
	sock, d, emu := startDriver(b, "node-0", 1<<50)
	nodes := StaticNodes{}
	for i := 0; i < 100; i++ {
		nodes[fmt.Sprintf("node-%d", i)] = true
	}
	nodes["node-x"] = true
	d.opts.Nodes = nodes
	cc, _ := dialCSI(b, sock)
	ctx := context.Background()
	for i := 0; i < 1000+b.N; i++ {
		slot := fmt.Sprintf("pvc-pub-%d", i)
		if _, err := emu.Store().AddDisk(storeDisk(slot)); err != nil {
			b.Fatal(err)
		}
		if i < 1000 {
			if _, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: slot,
				NodeId: fmt.Sprintf("node-%d", i%100), VolumeCapability: rwoMount[0]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: fmt.Sprintf("pvc-pub-%d", 1000+i), NodeId: "node-x", VolumeCapability: rwoMount[0]}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func storeDisk(slot string) store.Disk {
	return store.Disk{Slot: slot, FilePath: "/storage-pool/k8s/" + slot + ".img", FileSize: 1 << 20,
		NVMeTCPExport: true, NVMeTCPServerPort: 4420, NVMeTCPServerNQN: "nqn.2000-02.com.mikrotik:" + slot}
}
