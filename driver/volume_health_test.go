package driver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/health"
)

// TestControllerVolumeHealth: a healthy volume has no entries; one whose disk
// stops being exported is reported with the reason on both health RPCs (a
// vanished backing file, which RouterOS itself never allows while a disk uses
// it, is health.OfDisk's test); an RDS that does not answer makes it
// INACCESSIBLE, never NOT_FOUND; an unknown volume is NOT_FOUND.
func TestControllerVolumeHealth(t *testing.T) {
	sock, _, emu := startDriver(t, "node-a", 1<<40)
	cc, _ := dialCSI(t, sock)
	ctx := context.Background()
	create := func(name string) string {
		resp, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetVolume().GetVolumeId()
	}
	get := func(id string) []string {
		t.Helper()
		resp, err := cc.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: id})
		if err != nil {
			t.Fatalf("ControllerGetVolumeHealth(%s): %v", id, err)
		}
		if resp.GetVolumeHealth().GetVolumeId() != id {
			t.Fatalf("health of %s is about %q", id, resp.GetVolumeHealth().GetVolumeId())
		}
		var rs []string
		for _, e := range resp.GetVolumeHealth().GetHealthStatuses() {
			rs = append(rs, e.GetReason())
		}
		return rs
	}
	fine, unexported, other := create("pvc-fine"), create("pvc-unexported"), create("pvc-unexported-too")
	if rs := get(fine); len(rs) != 0 {
		t.Fatalf("a healthy volume: %v", rs)
	}
	emu.Run(`/disk set [find slot="pvc-unexported"] nvme-tcp-export=no`)
	if rs := get(unexported); len(rs) != 1 || rs[0] != health.ReasonNotExported {
		t.Fatalf("unexported: %v", rs)
	}
	emu.Run(`/disk set [find slot="pvc-unexported-too"] nvme-tcp-export=no`)
	list, err := cc.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range list.GetEntries() {
		listed = append(listed, e.GetVolumeId())
	}
	if len(listed) != 2 || listed[0] != unexported || listed[1] != other {
		t.Fatalf("ControllerListVolumeHealth lists %v, want the two abnormal volumes %s and %s", listed, unexported, other)
	}
	page, err := cc.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{MaxEntries: 1})
	if err != nil || len(page.GetEntries()) != 1 || page.GetNextToken() == "" {
		t.Fatalf("first page of one: %v, %v", page, err)
	}
	if _, err := cc.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "pvc-nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown volume: %v, want NOT_FOUND", err)
	}
	emu.Crash()
	if rs := get(fine); len(rs) != 1 || rs[0] != health.ReasonStorageUnreachable {
		t.Fatalf("RDS down: %v", rs)
	}
	if _, err := cc.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("listing with RDS down: %v, want UNAVAILABLE (no answer is not 'all healthy')", err)
	}
}
