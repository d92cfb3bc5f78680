package loop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

const mib = 1 << 20

func TestName(t *testing.T) {
	l, err := New(Options{BackingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name() != "loop" {
		t.Fatalf("Name() = %q", l.Name())
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without BackingDir succeeded")
	}
}

func TestAttachReturnsDeviceBackedByFile(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 4*mib)
	dev := attach(t, e.l, tg)

	if got := sysAttr(t, dev, "loop/backing_file"); got != e.host(tg.FilePath) {
		t.Fatalf("backing_file of %s = %q, want %q", dev, got, e.host(tg.FilePath))
	}
	if got := sysAttr(t, dev, "loop/autoclear"); got != "0" {
		t.Fatalf("autoclear of %s = %q, want 0 (the device must outlive its openers)", dev, got)
	}
	if n := e.l.legacyBinds.Load(); n != 0 {
		t.Fatalf("%d binds fell back to LOOP_SET_FD on a kernel with LOOP_CONFIGURE", n)
	}
	if got := sysAttr(t, dev, "size"); got != strconv.Itoa(4*mib/512) {
		t.Fatalf("size of %s = %s sectors, want %d", dev, got, 4*mib/512)
	}
	st, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		t.Fatalf("%s is %v, not a block device", dev, st.Mode())
	}
}

func TestAttachTwiceReturnsSameDevice(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	first := attach(t, e.l, tg)
	second, err := e.l.Attach(ctxT(t), tg)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatalf("second Attach = %s, first = %s", second, first)
	}
	if n := len(boundUnder(e.dir)); n != 1 {
		t.Fatalf("%d loop devices bound to the file, want 1: %v", n, boundUnder(e.dir))
	}
}

func TestConcurrentAttachOfOneFileYieldsOneDevice(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	cleanupDetach(t, e.l, tg)

	const n = 8
	devs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			devs[i], errs[i] = e.l.Attach(ctxT(t), tg)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Attach #%d: %v", i, errs[i])
		}
		if devs[i] != devs[0] {
			t.Fatalf("Attach #%d = %s, #0 = %s", i, devs[i], devs[0])
		}
	}
	if got := boundUnder(e.dir); len(got) != 1 {
		t.Fatalf("loop devices bound: %v, want exactly one", got)
	}
	if k := e.l.locks.Len(); k != 0 {
		t.Fatalf("%d lock entries left behind", k)
	}
}

func TestConcurrentAttachOfManyFilesYieldsDistinctDevices(t *testing.T) {
	e := newEnv(t)
	const n = 8
	tgs := make([]dataplane.Target, n)
	for i := range n {
		tgs[i] = e.file(t, "/storage-pool/k8s/pvc-"+strconv.Itoa(i)+".img", mib)
		cleanupDetach(t, e.l, tgs[i])
	}
	devs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			devs[i], errs[i] = e.l.Attach(ctxT(t), tgs[i])
		}()
	}
	close(start)
	wg.Wait()
	seen := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Attach %s: %v", tgs[i].FilePath, errs[i])
		}
		if j, dup := seen[devs[i]]; dup {
			t.Fatalf("%s and %s both got %s", tgs[i].FilePath, tgs[j].FilePath, devs[i])
		}
		seen[devs[i]] = i
		if got := sysAttr(t, devs[i], "loop/backing_file"); got != e.host(tgs[i].FilePath) {
			t.Fatalf("%s backs %q, want %q", devs[i], got, e.host(tgs[i].FilePath))
		}
	}
}

// TestAttachRetriesWhenFreeDeviceIsTaken steals the free device between
// LOOP_CTL_GET_FREE and the bind, as another process would.
func TestAttachRetriesWhenFreeDeviceIsTaken(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	cleanupDetach(t, e.l, tg)

	// stolen lists the devices we bound to decoys; calls counts the binds
	// attempted. Other processes (parallel test packages) may take a device
	// first: then our steal gets EBUSY, and so does Attach's bind, which is
	// the same situation.
	var stolen []string
	calls := 0
	steal := func(name string) {
		calls++
		decoy := e.file(t, "/storage-pool/decoy/"+strconv.Itoa(calls)+".img", mib)
		cleanupDetach(t, e.l, decoy)
		f, err := os.OpenFile(e.host(decoy.FilePath), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := e.l.bind(name, f, e.host(decoy.FilePath)); err != nil {
			if !errors.Is(err, unix.EBUSY) {
				t.Errorf("steal %s: %v", name, err)
			}
			return
		}
		stolen = append(stolen, "/dev/"+name)
	}
	e.l.testHookBeforeBind = func(name string) {
		if calls < 2 {
			steal(name)
		} else {
			calls++
		}
	}
	dev, err := e.l.Attach(ctxT(t), tg)
	if err != nil {
		t.Fatal(err)
	}
	if calls < 3 {
		t.Fatalf("%d bind attempts, want at least 3 (two stolen, then success)", calls)
	}
	for _, s := range stolen {
		if dev == s {
			t.Fatalf("Attach returned %s, which was stolen for a decoy", dev)
		}
	}
	if got := sysAttr(t, dev, "loop/backing_file"); got != e.host(tg.FilePath) {
		t.Fatalf("%s backs %q", dev, got)
	}

	// A device that is always taken ends in an error, not a hang.
	tg2 := e.file(t, "/storage-pool/k8s/pvc-2.img", mib)
	e.l.testHookBeforeBind = steal
	before := calls
	_, err = e.l.Attach(ctxT(t), tg2)
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Attach with every free device stolen: %v, want EBUSY after %d attempts", err, maxBindAttempts)
	}
	if got := calls - before; got != maxBindAttempts {
		t.Fatalf("%d bind attempts, want %d", got, maxBindAttempts)
	}
}

func TestLegacyAttach(t *testing.T) {
	e := newEnv(t)
	e.l.legacy = true
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 2*mib)
	dev := attach(t, e.l, tg)
	if n := e.l.legacyBinds.Load(); n != 1 {
		t.Fatalf("%d binds with LOOP_SET_FD, want 1", n)
	}
	if got := sysAttr(t, dev, "loop/backing_file"); got != e.host(tg.FilePath) {
		t.Fatalf("backing_file = %q", got)
	}
	if got := sysAttr(t, dev, "size"); got != strconv.Itoa(2*mib/512) {
		t.Fatalf("size = %s sectors", got)
	}
	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatal(err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound after Detach: %v", got)
	}
}

// TestDataSurvivesDetachAndReattach writes through the device, finds the bytes
// in the backing file, and reads them back through a device attached by a new
// Loop, as after a plugin restart.
func TestDataSurvivesDetachAndReattach(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 4*mib)
	dev := attach(t, e.l, tg)

	const off = 3*mib + 3*4096
	data := make([]byte, 8192)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	onDisk := make([]byte, len(data))
	bf, err := os.Open(e.host(tg.FilePath))
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if _, err := bf.ReadAt(onDisk, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Fatal("bytes written through the device are not in the backing file at the same offset")
	}

	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatal(err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound after Detach: %v", got)
	}

	restarted := newLoop(t, e.dir)
	dev2 := attach(t, restarted, tg)
	g, err := os.Open(dev2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	back := make([]byte, len(data))
	if _, err := g.ReadAt(back, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatal("bytes read back through the re-attached device differ from those written")
	}
}

func TestDeviceFindsAttachmentOfAnotherInstance(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	other := e.file(t, "/storage-pool/k8s/pvc-2.img", mib)
	dev := attach(t, e.l, tg)

	restarted := newLoop(t, e.dir)
	got, err := restarted.Device(ctxT(t), tg)
	if err != nil || got != dev {
		t.Fatalf("Device() on a new instance = %q, %v; want %s", got, err, dev)
	}
	got, err = restarted.Device(ctxT(t), other)
	if err != nil || got != "" {
		t.Fatalf("Device() of an unattached file = %q, %v; want \"\", nil", got, err)
	}
	if got := boundUnder(e.dir); len(got) != 1 {
		t.Fatalf("Device attached something: %v", got)
	}
	// And Attach on the new instance adopts the device instead of binding
	// another one.
	again, err := restarted.Attach(ctxT(t), tg)
	if err != nil || again != dev {
		t.Fatalf("Attach on a new instance = %q, %v; want %s", again, err, dev)
	}
}

func TestDetachIsIdempotent(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	attach(t, e.l, tg)
	for i := range 3 {
		if err := e.l.Detach(ctxT(t), tg); err != nil {
			t.Fatalf("Detach #%d: %v", i+1, err)
		}
		if got := boundUnder(e.dir); len(got) != 0 {
			t.Fatalf("still bound after Detach #%d: %v", i+1, got)
		}
	}
	if dev, err := e.l.Device(ctxT(t), tg); err != nil || dev != "" {
		t.Fatalf("Device() after Detach = %q, %v", dev, err)
	}
	// Never attached, and not even existing: both fine.
	if err := e.l.Detach(ctxT(t), e.file(t, "/storage-pool/k8s/never.img", mib)); err != nil {
		t.Fatalf("Detach of a never attached file: %v", err)
	}
	if err := e.l.Detach(ctxT(t), target("/storage-pool/k8s/missing.img")); err != nil {
		t.Fatalf("Detach of a missing file: %v", err)
	}
}

// assertInUse checks that err is an ErrInUse refusal and the device is still
// attached, usable and not marked for release.
func assertInUse(t *testing.T, e *env, tg dataplane.Target, dev string, err error, why string) {
	t.Helper()
	if !errors.Is(err, ErrInUse) || !errors.Is(err, dataplane.ErrInUse) {
		t.Fatalf("Detach of a device that is %s: %v, want ErrInUse", why, err)
	}
	if !strings.Contains(err.Error(), dev) {
		t.Errorf("error does not name the device %s: %v", dev, err)
	}
	got, derr := e.l.Device(ctxT(t), tg)
	if derr != nil || got != dev {
		t.Fatalf("after refused Detach, Device() = %q, %v; want %s", got, derr, dev)
	}
	if ac := sysAttr(t, dev, "loop/autoclear"); ac != "0" {
		t.Fatalf("after refused Detach, %s is marked autoclear", dev)
	}
}

func TestDetachRefusesMountedDevice(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 32*mib)
	dev := attach(t, e.l, tg)
	mnt := mountDev(t, dev)

	err := e.l.Detach(ctxT(t), tg)
	assertInUse(t, e, tg, dev, err, "mounted")
	if !strings.Contains(err.Error(), mnt) {
		t.Errorf("error does not name the mount point %s: %v", mnt, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "still-works"), []byte("x"), 0o644); err != nil {
		t.Fatalf("filesystem unusable after refused Detach: %v", err)
	}

	umount(t, mnt)
	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatalf("Detach after unmount: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound: %v", got)
	}
}

// TestDetachRefusesMountInvisibleInMountInfo covers a mount in another mount
// namespace: our mountinfo does not list it, the exclusive open still fails.
func TestDetachRefusesMountInvisibleInMountInfo(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 32*mib)
	dev := attach(t, e.l, tg)
	mountDev(t, dev)

	empty := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	blind, err := New(Options{BackingDir: e.dir, MountInfo: empty})
	if err != nil {
		t.Fatal(err)
	}
	err = blind.Detach(ctxT(t), tg)
	assertInUse(t, e, tg, dev, err, "mounted where mountinfo does not show it")
	if !strings.Contains(err.Error(), "exclusively") {
		t.Errorf("refusal did not come from the exclusive open: %v", err)
	}
}

// TestDetachRefusesBindMountedDeviceNode covers raw block volumes: kubelet
// bind-mounts the device node, the device itself is not mounted.
func TestDetachRefusesBindMountedDeviceNode(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)
	pub := filepath.Join(t.TempDir(), "publish")
	if err := os.WriteFile(pub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", dev, pub)
	t.Cleanup(func() { umount(t, pub) })

	err := e.l.Detach(ctxT(t), tg)
	assertInUse(t, e, tg, dev, err, "bind-mounted")
	if !strings.Contains(err.Error(), pub) {
		t.Errorf("error does not name the bind mount %s: %v", pub, err)
	}
	umount(t, pub)
	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatalf("Detach after unmount: %v", err)
	}
}

// TestDetachRefusesDeviceHeldOpen: an open file descriptor is invisible to
// mountinfo and O_EXCL; the kernel would defer the detach and report success.
func TestDetachRefusesDeviceHeldOpen(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	err = e.l.Detach(ctxT(t), tg)
	assertInUse(t, e, tg, dev, err, "held open")
	// The device must survive its opener closing: no deferred teardown left.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.l.Device(ctxT(t), tg); err != nil || got != dev {
		t.Fatalf("after the opener closed, Device() = %q, %v; want %s (the refused Detach left the device marked for release)", got, err, dev)
	}
	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatalf("Detach after close: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound: %v", got)
	}
}

// TestDetachWaitsForShortLivedOpener: someone who opens the device only for
// a moment (udev probing it, another process racing for a free device) must
// not turn Detach into a refusal.
func TestDetachWaitsForShortLivedOpener(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(20 * time.Millisecond)
		f.Close()
	}()
	err = e.l.Detach(ctxT(t), tg)
	<-closed
	if err != nil {
		t.Fatalf("Detach while a short-lived opener had the device open: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound: %v", got)
	}
}

// TestDetachRefusesDeviceWithHolders uses a copy of the device's sysfs entry
// with a holder added (no device-mapper needed).
func TestDetachRefusesDeviceWithHolders(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)
	name := filepath.Base(dev)

	fake := t.TempDir()
	blk := filepath.Join(fake, "block", name)
	for _, d := range []string{filepath.Join(blk, "loop"), filepath.Join(blk, "holders", "dm-7")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"dev", "size", "loop/backing_file", "loop/autoclear"} {
		if err := os.WriteFile(filepath.Join(blk, a), []byte(sysAttr(t, dev, a)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held, err := New(Options{BackingDir: e.dir, SysfsRoot: fake})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := held.Device(ctxT(t), tg); err != nil || got != dev {
		t.Fatalf("fake sysfs not read: Device() = %q, %v", got, err)
	}
	err = held.Detach(ctxT(t), tg)
	assertInUse(t, e, tg, dev, err, "held by dm-7")
	if !strings.Contains(err.Error(), "dm-7") {
		t.Errorf("error does not name the holder: %v", err)
	}
}

// TestAttachRefusesDeviceMarkedForRelease: a device of our file that is
// marked autoclear (losetup -d while open, mount -o loop) is going away or
// belongs to someone else; a second device over the same file would be worse.
func TestAttachRefusesDeviceMarkedForRelease(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)

	holder, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	held := true
	defer func() {
		if held {
			unix.Close(holder)
		}
	}()
	info, err := unix.IoctlLoopGetStatus64(holder)
	if err != nil {
		t.Fatal(err)
	}
	info.Flags |= unix.LO_FLAGS_AUTOCLEAR
	if err := unix.IoctlLoopSetStatus64(holder, info); err != nil {
		t.Fatal(err)
	}

	if got, err := e.l.Attach(ctxT(t), tg); err == nil {
		t.Fatalf("Attach over a device marked for release = %q, want an error", got)
	}
	if got := boundUnder(e.dir); len(got) != 1 {
		t.Fatalf("Attach bound a second device: %v", got)
	}

	unix.Close(holder) // last close: the kernel releases the device
	held = false
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("device not released on last close: %v", got)
	}
	if _, err := e.l.Attach(ctxT(t), tg); err != nil {
		t.Fatalf("Attach once released: %v", err)
	}
}

func TestRescanReportsNewSize(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)

	if err := os.Truncate(e.host(tg.FilePath), 5*mib); err != nil {
		t.Fatal(err)
	}
	if got := sysAttr(t, dev, "size"); got != strconv.Itoa(mib/512) {
		t.Fatalf("the device grew by itself (%s sectors): the test proves nothing", got)
	}
	size, err := e.l.Rescan(ctxT(t), tg)
	if err != nil {
		t.Fatal(err)
	}
	if size != 5*mib {
		t.Fatalf("Rescan = %d bytes, want %d", size, 5*mib)
	}
	if got := sysAttr(t, dev, "size"); got != strconv.Itoa(5*mib/512) {
		t.Fatalf("device size after Rescan = %s sectors, want %d", got, 5*mib/512)
	}
	// Idempotent.
	if size, err := e.l.Rescan(ctxT(t), tg); err != nil || size != 5*mib {
		t.Fatalf("second Rescan = %d, %v", size, err)
	}
}

func TestRescanOfUnattachedOrMissingFile(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	if _, err := e.l.Rescan(ctxT(t), tg); !errors.Is(err, ErrNotAttached) || !errors.Is(err, dataplane.ErrNotAttached) {
		t.Fatalf("Rescan of an unattached file: %v, want ErrNotAttached", err)
	}
	if _, err := e.l.Rescan(ctxT(t), target("/storage-pool/k8s/missing.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Rescan of a missing file: %v, want ErrNotExist", err)
	}
}

func TestMissingFile(t *testing.T) {
	e := newEnv(t)
	e.file(t, "/storage-pool/k8s/other.img", mib) // the directory exists
	tg := target("/storage-pool/k8s/missing.img")
	if dev, err := e.l.Attach(ctxT(t), tg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach of a missing file = %q, %v; want ErrNotExist", dev, err)
	}
	if dev, err := e.l.Attach(ctxT(t), target("/no-pool/x.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach of a file in a missing directory = %q, %v; want ErrNotExist", dev, err)
	}
	// A path through a regular file.
	if dev, err := e.l.Attach(ctxT(t), target("/storage-pool/k8s/other.img/x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach below a regular file = %q, %v; want ErrNotExist", dev, err)
	}
	if dev, err := e.l.Device(ctxT(t), tg); err != nil || dev != "" {
		t.Fatalf("Device of a missing file = %q, %v", dev, err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("something got attached: %v", got)
	}
	// No state directory at all.
	gone, err := New(Options{BackingDir: filepath.Join(e.dir, "nonexistent")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Attach(ctxT(t), tg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach without a state directory: %v, want ErrNotExist", err)
	}
	if err := gone.Detach(ctxT(t), tg); err != nil {
		t.Fatalf("Detach without a state directory: %v", err)
	}
}

// TestDeletedFile: the volume was deleted on RDS while attached here. The
// device is still found, and Detach releases it (and with it the space).
func TestDeletedFile(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dev := attach(t, e.l, tg)
	if err := os.Remove(e.host(tg.FilePath)); err != nil {
		t.Fatal(err)
	}
	if got, err := e.l.Device(ctxT(t), tg); err != nil || got != dev {
		t.Fatalf("Device() after the file was deleted = %q, %v; want %s", got, err, dev)
	}
	if _, err := e.l.Attach(ctxT(t), tg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach of the deleted file: %v, want ErrNotExist", err)
	}
	if err := e.l.Detach(ctxT(t), tg); err != nil {
		t.Fatalf("Detach of the deleted file: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound: %v", got)
	}

	// The kernel follows renames: a device whose file was moved away is not
	// the device of a new file at the old path.
	e.file(t, tg.FilePath, mib)
	dev = attach(t, e.l, tg)
	moved := target(tg.FilePath + ".old")
	cleanupDetach(t, e.l, moved)
	if err := os.Rename(e.host(tg.FilePath), e.host(moved.FilePath)); err != nil {
		t.Fatal(err)
	}
	e.file(t, tg.FilePath, mib)
	if got, err := e.l.Device(ctxT(t), tg); err != nil || got != "" {
		t.Fatalf("Device() of a new file at the path of a moved one = %q, %v; want \"\"", got, err)
	}
	if got, err := e.l.Device(ctxT(t), moved); err != nil || got != dev {
		t.Fatalf("Device() of the moved file = %q, %v; want %s", got, err, dev)
	}
	if got := attach(t, e.l, tg); got == dev {
		t.Fatalf("Attach of the new file returned the moved file's device %s", dev)
	}
}

// TestSymlinksInsideBackingDir: a symlink to a file inside the files directory
// is followed, and its target's device is found under either name; a state
// directory reached through a symlink works too.
func TestSymlinksInsideBackingDir(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	if err := os.Symlink("pvc-1.img", e.host("/storage-pool/k8s/alias.img")); err != nil {
		t.Fatal(err)
	}
	alias := target("/storage-pool/k8s/alias.img")
	dev := attach(t, e.l, alias)
	if got := sysAttr(t, dev, "loop/backing_file"); got != e.host(tg.FilePath) {
		t.Fatalf("backing_file = %q, want the resolved %q", got, e.host(tg.FilePath))
	}
	if got, err := e.l.Attach(ctxT(t), tg); err != nil || got != dev {
		t.Fatalf("Attach of the symlink's target = %q, %v; want %s", got, err, dev)
	}

	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(e.dir, link); err != nil {
		t.Fatal(err)
	}
	via := newLoop(t, link)
	if got, err := via.Device(ctxT(t), tg); err != nil || got != dev {
		t.Fatalf("Device() through a symlinked state dir = %q, %v; want %s", got, err, dev)
	}
	if err := via.Detach(ctxT(t), tg); err != nil {
		t.Fatal(err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("still bound: %v", got)
	}
}

// TestAttachIsBoundedByContext: a caller stuck behind another operation on
// the same file gives up when its context ends, and a cancelled context
// attaches nothing.
func TestAttachIsBoundedByContext(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.l.Attach(cancelled, tg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Attach with a cancelled context: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("cancelled Attach attached %v", got)
	}

	unlock, err := e.l.locks.Lock(context.Background(), e.host(tg.FilePath))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	done := make(chan error, 1)
	go func() {
		_, err := e.l.Attach(ctx, tg)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Attach behind a held lock: %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Attach ignored its context while waiting for the per-file lock")
	}
	for _, op := range []func(context.Context) error{
		func(ctx context.Context) error { return e.l.Detach(ctx, tg) },
		func(ctx context.Context) error { _, err := e.l.Rescan(ctx, tg); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := op(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Detach/Rescan behind a held lock: %v, want DeadlineExceeded", err)
		}
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("attached %v", got)
	}
}

// TestAttachVerifiesKernelView: the file moved between the path checks and
// the bind (a directory renamed, or swapped for a symlink). The device would
// back a file that Device() cannot find by the target's path, so Attach must
// undo the bind and fail.
func TestAttachVerifiesKernelView(t *testing.T) {
	e := newEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", mib)
	dir := filepath.Dir(e.host(tg.FilePath))
	var once sync.Once
	e.l.testHookBeforeBind = func(string) {
		once.Do(func() {
			if err := os.Rename(dir, dir+"-moved"); err != nil {
				t.Error(err)
			}
		})
	}
	dev, err := e.l.Attach(ctxT(t), tg)
	if err == nil {
		cleanupDetach(t, e.l, target("/storage-pool/k8s-moved/pvc-1.img"))
		t.Fatalf("Attach of a file moved during the attach = %q, want an error", dev)
	}
	if !strings.Contains(err.Error(), "kernel reports") {
		t.Fatalf("Attach failed, but not in the verification: %v", err)
	}
	if got := boundUnder(e.dir); len(got) != 0 {
		t.Fatalf("the failed Attach left %v bound", got)
	}
}
