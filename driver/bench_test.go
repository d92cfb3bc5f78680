package driver

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/emulator/store"
)

// BenchmarkCreateDeleteVolume: CreateVolume + DeleteVolume pairs over gRPC,
// against the emulator over SSH (every pair is five RouterOS commands: look
// up, add, read back, remove disk, remove file, verify).
func BenchmarkCreateDeleteVolume(b *testing.B) {
	sock, _, _ := startDriver(b, "node-a", 1<<50)
	cc, _ := dialCSI(b, sock)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("pvc-bench-%d", i)
		v, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolume().GetVolumeId()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
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
