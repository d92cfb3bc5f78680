package store

import (
	"errors"
	"os"
	"syscall"
)

// Linux lseek whence values; the syscall package does not name them.
const (
	seekData = 3
	seekHole = 4
)

// nextData finds the first data extent at or after off: [start, end). more is
// false when only a hole remains.
func nextData(f *os.File, off, size int64) (start, end int64, more bool, err error) {
	start, err = f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return 0, 0, false, nil
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
		return 0, 0, false, errNoExtents
	}
	if err != nil {
		return 0, 0, false, err
	}
	if start >= size {
		return 0, 0, false, nil
	}
	end, err = f.Seek(start, seekHole)
	if err != nil {
		return 0, 0, false, err
	}
	return start, min(end, size), true, nil
}
