//go:build !linux

package store

import "os"

// Without a portable SEEK_DATA, copySparse falls back to skipping zero blocks.
func nextData(f *os.File, off, size int64) (start, end int64, more bool, err error) {
	return 0, 0, false, errNoExtents
}

// Reflinks are only tried on Linux.
func cloneFile(dst, src *os.File) error { return errNoClone }

// inBackground runs f; lowering one thread's priority is Linux-only.
func inBackground(f func()) { f() }
