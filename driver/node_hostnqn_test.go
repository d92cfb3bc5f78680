package driver

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
)

// refusingPlane records the target of each attach and refuses it as a
// storage that does not allow the host would.
type refusingPlane struct {
	filePlane
	got []dataplane.Target
}

func (p *refusingPlane) Attach(_ context.Context, t dataplane.Target) (string, error) {
	p.got = append(p.got, t)
	return "", fmt.Errorf("export allows another host: %w", dataplane.ErrHostNotAllowed)
}

// TestNodeConnectsWithItsHostNQN: with RestrictHosts the node presents the
// host NQN and host ID derived from its node ID (the identity the
// controller allows), without it nvme-cli's defaults; a refusal by the
// storage is FAILED_PRECONDITION, never INTERNAL.
func TestNodeConnectsWithItsHostNQN(t *testing.T) {
	wantNQN, _ := hostnqn.For("node-a")
	wantID, _ := hostnqn.HostID("node-a")
	for _, tc := range []struct {
		restrict        bool
		wantNQN, wantID string
	}{
		{false, "", ""},
		{true, wantNQN, wantID},
	} {
		t.Run(fmt.Sprint("restrict=", tc.restrict), func(t *testing.T) {
			dir := t.TempDir()
			plane := &refusingPlane{}
			ns, err := NewNodeServer(NodeOptions{NodeID: "node-a", DataPlanes: map[string]dataplane.Plane{"file": plane},
				StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mount.NewFakeMounter(nil), RestrictHosts: tc.restrict})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{VolumeId: "pvc-1",
				StagingTargetPath: filepath.Join(dir, "staging"), VolumeCapability: rwoMount[0],
				PublishContext: map[string]string{paramNQN: "nqn.2000-02.com.mikrotik:pvc-1", paramNVMeAddress: "10.0.0.1"}})
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("stage refused by the storage: %v, want FAILED_PRECONDITION", err)
			}
			if len(plane.got) != 1 || plane.got[0].HostNQN != tc.wantNQN || plane.got[0].HostID != tc.wantID {
				t.Fatalf("attach targets %+v, want host NQN %q and host ID %q", plane.got, tc.wantNQN, tc.wantID)
			}
		})
	}
	if _, err := NewNodeServer(NodeOptions{NodeID: "Node_A", DataPlanes: map[string]dataplane.Plane{"file": &filePlane{}},
		StateDir: t.TempDir(), RestrictHosts: true}); err == nil {
		t.Fatal("a node ID that names no host NQN was accepted with RestrictHosts")
	}
}
