package loop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/internal/keylock"
)

var (
	// ErrInUse is node.ErrInUse: Detach refuses while the device is mounted,
	// bind-mounted, held by another block device, or open elsewhere.
	ErrInUse = dataplane.ErrInUse
	// ErrNotAttached is node.ErrNotAttached: Rescan found no device for the file.
	ErrNotAttached = dataplane.ErrNotAttached
	// ErrInvalidPath: the target's file path is malformed or leads outside
	// <BackingDir>/files. Nothing is attached or detached.
	ErrInvalidPath = errors.New("loop: invalid backing file path")
)

// Options configures a Loop.
type Options struct {
	// BackingDir is the emulator's state directory as this node sees it;
	// backing files live under BackingDir/files. Required.
	BackingDir string
	// SysfsRoot is where sysfs is mounted; "" means /sys.
	SysfsRoot string
	// MountInfo is the mountinfo file consulted before detaching; "" means
	// /proc/self/mountinfo.
	MountInfo string
	// Clock times the retry delays when a free loop device is taken by
	// another process; nil means the real clock.
	Clock clock.Clock
	// AllowHost, when set, returns the target's export's
	// nvme-tcp-server-allow-host-name as the emulator holds it (the binary
	// reads it over SSH, as RouterOS prints it), so that Attach refuses a
	// volume whose export does not allow the target's host NQN, as RDS
	// refuses the connection on hardware. It must fail, never answer "",
	// when it cannot tell: "" allows any host. Nil checks nothing.
	AllowHost func(ctx context.Context, t dataplane.Target) (string, error)
}

// Loop is the loop-device data plane. It is safe for concurrent use; calls for
// one backing file are serialised.
type Loop struct {
	filesDir  string
	sysfs     string
	mountInfo string
	devDir    string
	clock     clock.Clock
	locks     keylock.Set
	allowHost func(ctx context.Context, t dataplane.Target) (string, error)

	// legacy forces LOOP_SET_FD + LOOP_SET_STATUS64 instead of LOOP_CONFIGURE
	// (tests of the pre-5.8 path).
	legacy bool
	// legacyBinds counts binds done with LOOP_SET_FD (tests).
	legacyBinds atomic.Int64
	// testHookBeforeBind runs between LOOP_CTL_GET_FREE and binding (tests
	// of the race with other processes).
	testHookBeforeBind func(name string)
}

var _ dataplane.Plane = (*Loop)(nil)

// New returns a Loop for the emulator state directory o.BackingDir. The
// directory need not exist yet: the emulator may start after the plugin.
func New(o Options) (*Loop, error) {
	if o.BackingDir == "" {
		return nil, errors.New("loop: BackingDir is required")
	}
	dir, err := filepath.Abs(o.BackingDir)
	if err != nil {
		return nil, fmt.Errorf("loop: BackingDir: %w", err)
	}
	l := &Loop{
		filesDir:  filepath.Join(dir, "files"),
		sysfs:     o.SysfsRoot,
		mountInfo: o.MountInfo,
		devDir:    "/dev",
		clock:     o.Clock,
		allowHost: o.AllowHost,
	}
	if l.sysfs == "" {
		l.sysfs = "/sys"
	}
	if l.mountInfo == "" {
		l.mountInfo = "/proc/self/mountinfo"
	}
	if l.clock == nil {
		l.clock = clock.New()
	}
	return l, nil
}

// Name implements dataplane.Plane.
func (l *Loop) Name() string { return "loop" }

// Attach implements dataplane.Plane: it returns the loop device already backed
// by the target's file, or binds a free one to it.
func (l *Loop) Attach(ctx context.Context, t dataplane.Target) (string, error) {
	b, err := l.resolve(t.FilePath)
	if err != nil {
		return "", err
	}
	if err := l.admitted(ctx, t); err != nil {
		return "", err
	}
	if b.missing != nil {
		return "", fmt.Errorf("loop: attach volume %s: %w", t.VolumeID, b.missing)
	}
	unlock, err := l.locks.Lock(ctx, b.path)
	if err != nil {
		return "", err
	}
	defer unlock()

	devs, err := l.find(ctx, b)
	if err != nil {
		return "", err
	}
	if len(devs) > 0 {
		d := devs[0]
		if d.autoclear {
			// Being released (losetup -d while open) or attached by someone
			// else with autoclear (mount -o loop). Binding a second device to
			// the same file would give two page caches over one disk.
			return "", fmt.Errorf("loop: attach volume %s: %s is bound to %s but marked for release on last close; retry when it is gone", t.VolumeID, l.devPath(d.name), b.path)
		}
		if len(devs) > 1 {
			klog.InfoS("Backing file is bound to several loop devices; using the first", "volume", t.VolumeID, "file", b.path, "devices", names(devs))
		}
		klog.V(4).InfoS("Loop device already attached", "volume", t.VolumeID, "device", l.devPath(d.name), "file", b.path)
		return l.devPath(d.name), nil
	}

	// O_NOFOLLOW: the last component was resolved above and must not have
	// become a symlink since. Directories swapped for symlinks are caught by
	// the check of the kernel's view below.
	f, err := os.OpenFile(b.path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("loop: attach volume %s: open backing file: %w", t.VolumeID, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return "", fmt.Errorf("loop: attach volume %s: %w", t.VolumeID, err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is %s, not a regular file", ErrInvalidPath, b.path, st.Mode().Type())
	}

	name, err := l.bindFree(ctx, f, b.path)
	if err != nil {
		return "", err
	}
	dev := l.devPath(name)
	cur, ok, err := l.bound(name)
	if err == nil && (!ok || cur.backing != b.path) {
		err = fmt.Errorf("the kernel reports backing file %q, want %q", cur.backing, b.path)
	}
	if err != nil {
		if uerr := l.unbind(name); uerr != nil && !gone(uerr) {
			klog.ErrorS(uerr, "Could not detach a loop device that failed verification", "device", dev)
		}
		return "", fmt.Errorf("loop: attach volume %s: verify %s: %w", t.VolumeID, dev, err)
	}
	klog.InfoS("Attached loop device", "volume", t.VolumeID, "device", dev, "file", b.path)
	return dev, nil
}

// Device implements dataplane.Plane: the loop device backed by the target's
// file (or by its deleted remains), "" if there is none.
func (l *Loop) Device(ctx context.Context, t dataplane.Target) (string, error) {
	b, err := l.resolve(t.FilePath)
	if err != nil {
		return "", err
	}
	devs, err := l.find(ctx, b)
	if err != nil || len(devs) == 0 {
		return "", err
	}
	return l.devPath(devs[0].name), nil
}

// Detach implements dataplane.Plane. It releases every loop device backed by
// the target's file, including one whose file has been deleted, and refuses
// with ErrInUse while any of them is used.
func (l *Loop) Detach(ctx context.Context, t dataplane.Target) error {
	b, err := l.resolve(t.FilePath)
	if err != nil {
		return err
	}
	unlock, err := l.locks.Lock(ctx, b.path)
	if err != nil {
		return err
	}
	defer unlock()

	devs, err := l.find(ctx, b)
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		klog.V(4).InfoS("Loop device already detached", "volume", t.VolumeID, "file", b.path)
		return nil
	}
	want := devs[0].backing
	var errs []error
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := l.release(ctx, d, want); err != nil {
			errs = append(errs, err)
			continue
		}
		klog.InfoS("Detached loop device", "volume", t.VolumeID, "device", l.devPath(d.name), "file", d.backing)
	}
	return errors.Join(errs...)
}

// Rescan implements dataplane.Plane: after the backing file grew, it makes the
// loop device take the new size and returns it in bytes.
func (l *Loop) Rescan(ctx context.Context, t dataplane.Target) (int64, error) {
	b, err := l.resolve(t.FilePath)
	if err != nil {
		return 0, err
	}
	if b.missing != nil {
		return 0, fmt.Errorf("loop: rescan volume %s: %w", t.VolumeID, b.missing)
	}
	unlock, err := l.locks.Lock(ctx, b.path)
	if err != nil {
		return 0, err
	}
	defer unlock()

	devs, err := l.find(ctx, b)
	if err != nil {
		return 0, err
	}
	if len(devs) == 0 {
		return 0, fmt.Errorf("loop: rescan volume %s (%s): %w", t.VolumeID, b.path, ErrNotAttached)
	}
	var size int64
	for i, d := range devs {
		if err := l.setCapacity(d.name); err != nil {
			return 0, fmt.Errorf("loop: rescan %s: LOOP_SET_CAPACITY: %w", l.devPath(d.name), err)
		}
		s, err := l.size(d.name)
		if err != nil {
			return 0, err
		}
		if i == 0 {
			size = s
		}
	}
	klog.InfoS("Rescanned loop device", "volume", t.VolumeID, "device", l.devPath(devs[0].name), "bytes", size)
	return size, nil
}

// size is the device's size in bytes; sysfs counts 512-byte sectors whatever
// the logical block size.
func (l *Loop) size(name string) (int64, error) {
	s, err := readAttr(filepath.Join(l.blockDir(name), "size"))
	if err != nil {
		return 0, fmt.Errorf("loop: size of %s: %w", name, err)
	}
	sectors, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sectors < 0 {
		return 0, fmt.Errorf("loop: size of %s: bad sector count %q", name, s)
	}
	return sectors * 512, nil
}

func names(devs []loopDev) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.name
	}
	return out
}

// admitted applies the storage's access rule to an attach: an export with an
// allow-list admits only a host NQN on it ("" allows any host).
func (l *Loop) admitted(ctx context.Context, t dataplane.Target) error {
	if l.allowHost == nil {
		return nil
	}
	v, err := l.allowHost(ctx, t)
	if err != nil {
		return fmt.Errorf("loop: attach volume %s: read the export's allowed hosts: %w", t.VolumeID, err)
	}
	if Allows(v, t.HostNQN) {
		return nil
	}
	return fmt.Errorf("loop: attach volume %s as host %q: export allows %q: %w", t.VolumeID, t.HostNQN, v, dataplane.ErrHostNotAllowed)
}

// Allows is the storage's rule: an empty allow-list admits any host, else
// the host NQN must be one of its comma-separated names.
func Allows(allowList, hostNQN string) bool {
	if allowList == "" {
		return true
	}
	for _, h := range strings.Split(allowList, ",") {
		if h == hostNQN && h != "" {
			return true
		}
	}
	return false
}
