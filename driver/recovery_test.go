package driver

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// panickingController stands for a bug one bad RDS reply could tickle.
type panickingController struct {
	csi.UnimplementedControllerServer
}

func (panickingController) ControllerGetVolume(context.Context, *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	var s string
	_ = s[1:] // what a missing file-path once did
	return nil, nil
}

// TestPanicBecomesInternal: a panicking handler costs one INTERNAL answer,
// not the process: the next call is served.
func TestPanicBecomesInternal(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "csi.sock")
	srv, err := Listen("unix://"+sock, Services{Identity: NodeIdentity{Name: DefaultName}, Controller: panickingController{}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(srv.Stop)
	cc, ic := dialCSI(t, sock)
	for i := 0; i < 3; i++ {
		if _, err := cc.ControllerGetVolume(context.Background(), &csi.ControllerGetVolumeRequest{VolumeId: "pvc-a"}); status.Code(err) != codes.Internal {
			t.Fatalf("call %d: %v, want INTERNAL", i, err)
		}
	}
	if _, err := ic.GetPluginInfo(context.Background(), &csi.GetPluginInfoRequest{}); err != nil {
		t.Fatalf("the server did not survive the panic: %v", err)
	}
}

// TestHostileParametersFailAtCreate: over gRPC against the emulator, bad
// StorageClass values and absurd sizes are refused by CreateVolume and
// ControllerExpandVolume with the right codes, before anything reaches RDS.
func TestHostileParametersFailAtCreate(t *testing.T) {
	sock, _, emu := startDriver(t, "node-a", 1<<40)
	cc, _ := dialCSI(t, sock)
	ctx := context.Background()
	for key, v := range map[string]string{"nvmeAddress": "$(id)", "ctrlLossTmo": "+5", "reconnectDelay": "-1", "keepAliveTmo": "1e3"} {
		_, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-bad-" + key[:4], VolumeCapabilities: rwoMount,
			Parameters: map[string]string{key: v}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: %v, want INVALID_ARGUMENT naming the key", key, v, err)
		}
	}
	if n := emu.Run("/disk print count-only"); n != "1\n" { // the pool's partition only
		t.Fatalf("a refused create reached RDS: %q disks", n)
	}
	vol, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-grow", VolumeCapabilities: rwoMount,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{math.MaxInt64, math.MaxInt64 - 1<<20 + 2} {
		_, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId(),
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}})
		if status.Code(err) != codes.OutOfRange {
			t.Errorf("expand to %d: %v, want OUT_OF_RANGE", size, err)
		}
	}
	if _, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-huge", VolumeCapabilities: rwoMount,
		CapacityRange: &csi.CapacityRange{RequiredBytes: math.MaxInt64}}); status.Code(err) != codes.OutOfRange {
		t.Errorf("create of 2^63-1 bytes: %v, want OUT_OF_RANGE", err)
	}
	// A volume context edited in the PV is checked at publish too.
	_, err = cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId(), NodeId: "node-a",
		VolumeCapability: rwoMount[0], VolumeContext: map[string]string{"nvmeAddress": "x;reboot"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("publish with a hostile volume context: %v", err)
	}
}
