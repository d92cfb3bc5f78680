//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// Scenario 8: storage-side access control (--restrict-hosts). The export's
// allow-list follows a pod from node-a to node-b through the real
// attach-detach controller and external-attacher, read back from the
// emulator as RouterOS prints it; and a node the export does not allow is
// refused by its own data plane even when asked directly, which is what
// keeps a cut-off node from writing.
func TestAllowListFollowsThePod(t *testing.T) {
	e := newTestEnv(t, "acl")
	e.withControllerFlags("--restrict-hosts")
	rdsFlags := []string{"--restrict-hosts", "--rds-address=" + e.c.emuAddr, "--rds-user=admin",
		"--rds-key-file=" + e.c.emuKey, "--rds-host-key-fingerprint=" + e.c.emuFingerprnt,
		"--base-path=/storage-pool/k8s"}
	a, b := e.node("acl-node-a", rdsFlags...), e.node("acl-node-b", rdsFlags...)
	nqnA, _ := hostnqn.For(a.name)
	nqnB, _ := hostnqn.For(b.name)

	e.pvc("data", "256Mi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	pv := e.waitBound("data", 60*time.Second)
	handle := pv.Spec.CSI.VolumeHandle

	start := time.Now()
	pod := e.pod("app", a.name, false, nil, "data")
	e.waitAttached(pv, a.name, 60*time.Second)
	e.waitRunning("app", 60*time.Second)
	if got := e.allowedHosts(handle); !slices.Equal(got, []string{nqnA}) {
		t.Fatalf("published to %s: export allows %q, want only %q", a.name, got, nqnA)
	}
	t.Logf("scenario8: on %s in %.2fs, export allows %v", a.name, time.Since(start).Seconds(), e.allowedHosts(handle))
	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(a.targetPath(pod, pv.Name), "payload.bin"), payload)

	// node-b asking for the volume while node-a holds it is refused by
	// node-b's data plane (the storage's rule), whatever the caller claims.
	va := e.va(pv, a.name)
	staging := filepath.Join(b.root, "acl-probe-staging")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	before := loopDevices(e.c.dir)
	_, err := b.csi.NodeStageVolume(e.ctx(), &csi.NodeStageVolumeRequest{
		VolumeId: handle, PublishContext: va.Status.AttachmentMetadata, StagingTargetPath: staging,
		VolumeCapability: capability(pv), VolumeContext: pv.Spec.CSI.VolumeAttributes,
	})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), dataplane.ErrHostNotAllowed.Error()) {
		t.Fatalf("NodeStage on %s of a volume published to %s: %v, want FAILED_PRECONDITION: %v", b.name, a.name, err, dataplane.ErrHostNotAllowed)
	}
	t.Logf("scenario8: %s refused: %v", b.name, err)
	if after := loopDevices(e.c.dir); len(after) != len(before) {
		t.Fatalf("refused stage on %s changed the loop devices: %v, then %v", b.name, before, after)
	}

	// Move: once node-a has let go, nobody is allowed until node-b's
	// publish, then only node-b.
	start = time.Now()
	e.deletePod("app", 60*time.Second)
	e.waitDetached(pv, a.name, 60*time.Second)
	if got := e.allowedHosts(handle); !slices.Equal(got, []string{hostnqn.Nobody}) {
		t.Fatalf("unpublished: export allows %q, want only %q", got, hostnqn.Nobody)
	}
	pod = e.pod("app", b.name, false, nil, "data")
	e.waitAttached(pv, b.name, 60*time.Second)
	e.waitRunning("app", 60*time.Second)
	if got := e.allowedHosts(handle); !slices.Equal(got, []string{nqnB}) {
		t.Fatalf("moved to %s: export allows %q, want only %q", b.name, got, nqnB)
	}
	t.Logf("scenario8: moved to %s in %.2fs, export allows %v", b.name, time.Since(start).Seconds(), e.allowedHosts(handle))
	got, err := os.ReadFile(filepath.Join(b.targetPath(pod, pv.Name), "payload.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("data written on node-a differs on node-b")
	}
	e.deletePod("app", 60*time.Second)
	e.waitDetached(pv, b.name, 60*time.Second)
}

// withControllerFlags restarts every controller replica's driver with extra
// flags, waits for a ready leader, and restores the flags (and a ready
// leader) when the test ends.
func (e *testEnv) withControllerFlags(extra ...string) {
	e.t.Helper()
	restart := func(args func(r *replica) []string) {
		for _, r := range e.c.replicas {
			r.driver.Stop(10 * time.Second)
		}
		for _, r := range e.c.replicas {
			r.driver.mu.Lock()
			r.driver.args = args(r)
			r.driver.mu.Unlock()
			if err := r.driver.Start(); err != nil {
				e.t.Fatalf("restart %s: %v", r.name, err)
			}
		}
		if err := e.c.waitControllerReady(e.ctx()); err != nil {
			e.t.Fatal(err)
		}
	}
	saved := map[*replica][]string{}
	for _, r := range e.c.replicas {
		saved[r] = slices.Clone(r.driver.args)
	}
	restart(func(r *replica) []string { return append(slices.Clone(saved[r]), extra...) })
	e.t.Cleanup(func() { restart(func(r *replica) []string { return saved[r] }) })
}

// allowedHosts reads the export's allow-list of the volume from the
// emulator, as RouterOS prints it; a disk missing or printed without the
// property fails the test.
func (e *testEnv) allowedHosts(slot string) []string {
	e.t.Helper()
	out := e.routeros("/disk print detail where slot=" + slot)
	entries, err := rds.ParseDetail(out, rds.ParseOptions{Width: 512})
	if err != nil || len(entries) != 1 {
		e.t.Fatalf("/disk print detail where slot=%s: %d entries, %v:\n%s", slot, len(entries), err, out)
	}
	v, printed := entries[0].Get(rds.AllowHostProperty)
	if !printed {
		e.t.Fatalf("disk %s printed no %s:\n%s", slot, rds.AllowHostProperty, out)
	}
	return rds.AllowedHosts(v)
}
