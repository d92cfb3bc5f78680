package loop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

const (
	// maxBindAttempts bounds the retries when another process takes the free
	// device we were given between LOOP_CTL_GET_FREE and binding it.
	maxBindAttempts = 16
	maxRetryDelay   = 50 * time.Millisecond
)

// bindFree binds the open backing file to a free loop device and returns the
// device's name (loopN).
func (l *Loop) bindFree(ctx context.Context, file *os.File, path string) (string, error) {
	var last error
	for attempt := 0; attempt < maxBindAttempts; attempt++ {
		if attempt > 0 {
			if err := l.wait(ctx, retryDelay(attempt)); err != nil {
				return "", fmt.Errorf("loop: attach %s: %w (last attempt: %v)", path, err, last)
			}
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := getFree(l.devPath("loop-control"))
		if err != nil {
			return "", fmt.Errorf("loop: attach %s: find a free loop device: %w", path, err)
		}
		name := fmt.Sprintf("loop%d", n)
		if l.testHookBeforeBind != nil {
			l.testHookBeforeBind(name)
		}
		err = l.bind(name, file, path)
		if err == nil {
			return name, nil
		}
		// EBUSY: someone bound or claimed it first. ENXIO/ENOENT: someone
		// removed it (LOOP_CTL_REMOVE) before we opened it.
		if !errors.Is(err, unix.EBUSY) && !gone(err) {
			return "", fmt.Errorf("loop: attach %s to /dev/%s: %w", path, name, err)
		}
		last = err
		klog.V(4).InfoS("Loop device taken by someone else, retrying", "device", name, "attempt", attempt+1, "err", err)
	}
	return "", fmt.Errorf("loop: attach %s: no free loop device after %d attempts: %w", path, maxBindAttempts, last)
}

// retryDelay is 0 for the first retry (the usual race is settled by asking
// for another free device), then grows exponentially.
func retryDelay(attempt int) time.Duration {
	if attempt <= 1 {
		return 0
	}
	d := time.Millisecond << (attempt - 2)
	if d > maxRetryDelay || d <= 0 {
		d = maxRetryDelay
	}
	return d
}

// wait waits d on the injected clock, or until ctx ends.
func (l *Loop) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := l.clock.Timer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

func getFree(control string) (int, error) {
	fd, err := unix.Open(control, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.IoctlRetInt(fd, unix.LOOP_CTL_GET_FREE)
}

// bind binds file to the loop device name with LOOP_CONFIGURE, or with
// LOOP_SET_FD and LOOP_SET_STATUS64 on kernels older than 5.8 (or when forced
// by tests).
func (l *Loop) bind(name string, file *os.File, path string) error {
	fd, err := unix.Open(l.devPath(name), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)

	var info unix.LoopInfo64
	copy(info.File_name[:unix.LO_NAME_SIZE-1], path) // for tools that read LOOP_GET_STATUS64
	backingFd := int(file.Fd())

	if !l.legacy {
		err = unix.IoctlLoopConfigure(fd, &unix.LoopConfig{Fd: uint32(backingFd), Info: info})
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
			return err
		}
		// Unknown ioctl on old kernels; a real EINVAL fails again below.
		klog.V(4).InfoS("LOOP_CONFIGURE unavailable, falling back to LOOP_SET_FD", "device", name, "err", err)
	}
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, backingFd); err != nil {
		return err
	}
	l.legacyBinds.Add(1)
	if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
		if cerr := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0); cerr != nil {
			klog.ErrorS(cerr, "Could not undo a half-configured loop device", "device", name)
		}
		return fmt.Errorf("LOOP_SET_STATUS64: %w", err)
	}
	return nil
}

// release unbinds d if nothing uses it. It returns an error wrapping ErrInUse
// if something does, and nil if d is not bound to want (any more).
func (l *Loop) release(ctx context.Context, d loopDev, want string) error {
	dev := l.devPath(d.name)
	users, err := l.users(d.name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("loop: detach %s: %w: %v", dev, ErrInUse, users)
	}
	// The exclusive open fails while the device is mounted in any mount
	// namespace or claimed by a kernel user, and keeps new mounts out until
	// we close it.
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("loop: detach %s: %w: claimed exclusively (mounted, possibly in another mount namespace, or held by a kernel user)", dev, ErrInUse)
		}
		if gone(err) {
			return nil
		}
		return fmt.Errorf("loop: detach %s: %w", dev, err)
	}
	// Between find and the open someone may have detached it and bound
	// another file; do not tear that down.
	if cur, ok, err := l.bound(d.name); err != nil || !ok || cur.backing != want {
		unix.Close(fd)
		return err
	}
	err = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
	unix.Close(fd) // the kernel tears the device down on the last close
	if err != nil {
		if gone(err) {
			return nil
		}
		return fmt.Errorf("loop: detach %s: LOOP_CLR_FD: %w", dev, err)
	}
	cur, ok, err := l.bound(d.name)
	if err != nil {
		return err
	}
	if !ok || cur.backing != want {
		return nil
	}
	// Still bound: another process has the device open, and the kernel only
	// marked it autoclear; it finishes the detach on that process's close.
	// Openers that merely look close within milliseconds (udev probing, or
	// another process that was offered this device by LOOP_CTL_GET_FREE just
	// before we bound it and opened it to find it busy), so give them a
	// moment.
	if released, err := l.settle(ctx, d.name, want); err != nil || released {
		if err != nil {
			err = fmt.Errorf("loop: detach %s: waiting for other openers to close: %w", dev, err)
			if cerr := l.clearAutoclear(dev); cerr != nil && !gone(cerr) {
				klog.ErrorS(cerr, "Could not clear autoclear on a loop device", "device", dev)
			}
		}
		return err
	}
	// A real user. Take the autoclear mark back so the device does not
	// vanish under it, and report the device as in use.
	if err := l.clearAutoclear(dev); err != nil {
		if gone(err) {
			return nil // the other user closed it meanwhile: released
		}
		return fmt.Errorf("loop: detach %s: %w: held open by another process, and clearing autoclear failed: %v", dev, ErrInUse, err)
	}
	return fmt.Errorf("loop: detach %s: %w: held open by another process", dev, ErrInUse)
}

// settleDelays are the pauses while waiting for short-lived openers of a
// device being detached (about 130ms in all).
var settleDelays = []time.Duration{1, 2, 4, 8, 16, 32, 64}

// settle waits for device name to stop backing want; it reports whether it
// did.
func (l *Loop) settle(ctx context.Context, name, want string) (bool, error) {
	for _, d := range settleDelays {
		if err := l.wait(ctx, d*time.Millisecond); err != nil {
			return false, err
		}
		cur, ok, err := l.bound(name)
		if err != nil {
			return false, err
		}
		if !ok || cur.backing != want {
			return true, nil
		}
	}
	return false, nil
}

// clearAutoclear clears LO_FLAGS_AUTOCLEAR on a bound device.
func (l *Loop) clearAutoclear(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	info, err := unix.IoctlLoopGetStatus64(fd)
	if err != nil {
		return err
	}
	if info.Flags&unix.LO_FLAGS_AUTOCLEAR == 0 {
		return nil
	}
	info.Flags &^= unix.LO_FLAGS_AUTOCLEAR
	return unix.IoctlLoopSetStatus64(fd, info)
}

// setCapacity makes the loop device re-read its backing file's size.
func (l *Loop) setCapacity(name string) error {
	fd, err := unix.Open(l.devPath(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.IoctlSetInt(fd, unix.LOOP_SET_CAPACITY, 0)
}

// unbind detaches a device we just bound, whatever uses it (Attach's own
// clean-up of a device it is about to report as failed).
func (l *Loop) unbind(name string) error {
	fd, err := unix.Open(l.devPath(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
}
