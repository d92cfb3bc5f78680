//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the state directory: two emulators
// appending to one journal would interleave records and corrupt it. The kernel
// drops the lock when the process dies, so kill -9 never leaves it stuck.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: state directory is in use by another process (%s): %w", path, err)
	}
	return f, nil
}
