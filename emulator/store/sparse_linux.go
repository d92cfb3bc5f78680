package store

import (
	"errors"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nextData finds the first data extent at or after off: [start, end). more is
// false when only a hole remains.
func nextData(f *os.File, off, size int64) (start, end int64, more bool, err error) {
	start, err = f.Seek(off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return 0, 0, false, nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return 0, 0, false, errNoExtents
	}
	if err != nil {
		return 0, 0, false, err
	}
	if start >= size {
		return 0, 0, false, nil
	}
	end, err = f.Seek(start, unix.SEEK_HOLE)
	if err != nil {
		return 0, 0, false, err
	}
	return start, min(end, size), true, nil
}

// cloneFile makes dst (empty) share all of src's extents, where the
// filesystem supports reflinks. Every "cannot here" answer (ext4 and tmpfs
// say EOPNOTSUPP or ENOTTY, another filesystem EXDEV, an old kernel EINVAL)
// is errNoClone, for the caller to copy instead.
func cloneFile(dst, src *os.File) error {
	if noReflink {
		return errNoClone
	}
	var err error
	dc, derr := dst.SyscallConn()
	sc, serr := src.SyscallConn()
	if derr != nil || serr != nil {
		return errNoClone
	}
	cerr := dc.Control(func(dfd uintptr) {
		if e := sc.Control(func(sfd uintptr) { err = unix.IoctlFileClone(int(dfd), int(sfd)) }); e != nil {
			err = e
		}
	})
	if cerr != nil {
		return cerr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EXDEV),
		errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		return errNoClone
	}
	return err
}

// backgroundNice is the CPU niceness copies run at. A copy is bulk work
// that the kernel does on the copying thread (copy_file_range, then the
// fsync's writeback): at normal priority it takes a whole core for the
// copy's length, and a command arriving meanwhile waits for the scheduler
// to hand it a time slice, milliseconds on a small machine. At the lowest
// priority the command's threads preempt the copy as soon as they wake.
const backgroundNice = 19

// inBackground runs f on an OS thread of its own at backgroundNice and
// returns when f has. The thread is never unlocked: lowering its niceness
// again needs a privilege the emulator may lack, so the runtime discards the
// thread when the goroutine ends rather than reuse it for other work.
func inBackground(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// Best effort: at normal priority the copy is only slower for
		// others, never wrong.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), backgroundNice)
		f()
	}()
	<-done
}
