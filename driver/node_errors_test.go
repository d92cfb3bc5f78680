package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// failingPlane fails every attach with err, as the data plane below it would.
type failingPlane struct {
	filePlane
	err error
}

func (p *failingPlane) Attach(context.Context, dataplane.Target) (string, error) { return "", p.err }

// TestNodeStageMapsDataPlaneErrors: each way an attach can fail reaches
// kubelet as the code that tells it what to do next, never a generic
// INTERNAL for a cause the driver knows.
func TestNodeStageMapsDataPlaneErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"storage unreachable", fmt.Errorf("nvme connect: %w", dataplane.ErrTargetUnreachable), codes.Unavailable},
		{"host not allowed", fmt.Errorf("loop: %w", dataplane.ErrHostNotAllowed), codes.FailedPrecondition},
		{"device in use", fmt.Errorf("detach: %w", dataplane.ErrInUse), codes.FailedPrecondition},
		{"backing file missing", fmt.Errorf("open: %w", os.ErrNotExist), codes.NotFound},
		{"deadline", fmt.Errorf("wait for device: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"unknown cause", errors.New("ioctl: bad things"), codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ns, err := NewNodeServer(NodeOptions{NodeID: "node-a", DataPlanes: map[string]dataplane.Plane{"file": &failingPlane{err: tc.err}},
				StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mount.NewFakeMounter(nil)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{VolumeId: "pvc-1",
				StagingTargetPath: filepath.Join(dir, "staging"), VolumeCapability: rwoMount[0],
				PublishContext: map[string]string{paramNQN: "nqn.2000-02.com.mikrotik:pvc-1", paramNVMeAddress: "10.0.0.1"}})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("NodeStageVolume: %v, want %v", err, tc.want)
			}
		})
	}
}
