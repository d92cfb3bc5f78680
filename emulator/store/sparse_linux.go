package store

import (
	"errors"
	"os"

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
