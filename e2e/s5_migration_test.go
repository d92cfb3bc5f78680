//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Scenario 5: KubeVirt-style live migration. An RWX block PVC is used by two
// pods on two nodes at once (source and target VM), both attached through
// the real attach-detach controller and attacher and both published as raw
// devices; a third node is refused (a migration has two ends, never three);
// then the source pod is deleted and only the target keeps the volume.
func TestLiveMigrationRWXBlock(t *testing.T) {
	e := newTestEnv(t, "migrate")
	a, b, c := e.node("mig-node-a"), e.node("mig-node-b"), e.node("mig-node-c")
	e.pvc("disk", "128Mi", corev1.PersistentVolumeBlock, corev1.ReadWriteMany)
	pv := e.waitBound("disk", 60*time.Second)

	src := e.pod("virt-launcher-src", a.name, true, nil, "disk")
	e.waitAttached(pv, a.name, 60*time.Second)
	e.waitRunning(src.Name, 60*time.Second)
	srcDev := a.targetPath(src, pv.Name)
	block := randomBlock(t)
	directIO(t, srcDev, 1<<20, block, true)

	// The migration target starts while the source still runs.
	start := time.Now()
	dst := e.pod("virt-launcher-dst", b.name, true, nil, "disk")
	e.waitAttached(pv, b.name, 60*time.Second)
	e.waitRunning(dst.Name, 60*time.Second)
	t.Logf("scenario5: target attached and published on %s in %.2fs while the source on %s stays attached", b.name, time.Since(start).Seconds(), a.name)
	if va := e.va(pv, a.name); va == nil || !va.Status.Attached {
		t.Fatalf("source attachment on %s lost during the hand-off", a.name)
	}
	dstDev := b.targetPath(dst, pv.Name)
	got := make([]byte, len(block))
	directIO(t, dstDev, 1<<20, got, false)
	if !bytes.Equal(got, block) {
		t.Fatal("target does not read what the source wrote")
	}

	// A third node is refused by the driver: FAILED_PRECONDITION naming the holders.
	third := e.pod("virt-launcher-rogue", c.name, true, nil, "disk")
	if err := waitFor(e.ctx(), 60*time.Second, 100*time.Millisecond, "the third attachment to be refused", func(ctx context.Context) (bool, error) {
		va := e.va(pv, c.name)
		return va != nil && va.Status.AttachError != nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	va := e.va(pv, c.name)
	t.Logf("scenario5: third node refused: %s", va.Status.AttachError.Message)
	if va.Status.Attached {
		t.Fatal("volume attached to three nodes")
	}
	if msg := va.Status.AttachError.Message; !strings.Contains(msg, a.name) && !strings.Contains(msg, b.name) {
		t.Errorf("refusal %q names neither holder", msg)
	}
	e.deletePod(third.Name, 60*time.Second)
	e.waitDetached(pv, c.name, 60*time.Second)

	// The hand-off completes: the source pod goes away.
	start = time.Now()
	e.deletePod(src.Name, 60*time.Second)
	e.waitDetached(pv, a.name, 60*time.Second)
	t.Logf("scenario5: source detached from %s %.2fs after its pod was deleted", a.name, time.Since(start).Seconds())
	if va := e.va(pv, b.name); va == nil || !va.Status.Attached {
		t.Fatal("target lost its attachment when the source left")
	}
	block2 := randomBlock(t)
	directIO(t, dstDev, 2<<20, block2, true)
	directIO(t, dstDev, 2<<20, got, false)
	if !bytes.Equal(got, block2) {
		t.Fatal("target cannot write after the hand-off")
	}
	// After the hand-off a new node may join again (the next migration).
	e.deletePod(dst.Name, 60*time.Second)
	e.waitDetached(pv, b.name, 60*time.Second)
	e.deletePVCAndWait("disk", pv, 60*time.Second)
}

// randomBlock is 64 KiB of random data, aligned for O_DIRECT.
func randomBlock(t *testing.T) []byte {
	buf := alignedBuf(64 << 10)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func alignedBuf(n int) []byte {
	raw := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))&4095)
	if off == 4096 {
		off = 0
	}
	return raw[off : off+n]
}

// directIO reads or writes buf at off on a block device, bypassing the page
// cache, as a VM's disk does with cache=none.
func directIO(t *testing.T, dev string, off int64, buf []byte, write bool) {
	t.Helper()
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(dev, flag|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatalf("open %s: %v", dev, err)
	}
	defer f.Close()
	data := alignedBuf(len(buf))
	if write {
		copy(data, buf)
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatalf("write %s: %v", dev, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("sync %s: %v", dev, err)
		}
		return
	}
	if _, err := f.ReadAt(data, off); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	copy(buf, data)
}
