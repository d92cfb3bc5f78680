package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// growFile makes the host file at p exist with at least size bytes. It never
// shrinks or rewrites: the file may hold data a loop device wrote, and an
// idempotent "grow to" is what lets replay run it again after a crash.
func growFile(p string, size int64) (created bool, err error) {
	fi, err := os.Stat(p)
	switch {
	case err == nil && fi.Mode().IsRegular() && fi.Size() >= size:
		return false, nil
	case err == nil && !fi.Mode().IsRegular():
		return false, fmt.Errorf("%s exists and is not a regular file", p)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return false, err
	}
	created = err != nil
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, err
	}
	// Re-check under the open handle: never Truncate below the current size.
	if fi, err = f.Stat(); err == nil && fi.Size() < size {
		err = f.Truncate(size) // sparse: no blocks are allocated
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return created, err
}

// copySparse copies src into a new file at dst of dstSize bytes (>= the
// source's size). Volumes are huge and mostly holes, so only data extents are
// copied (found with SEEK_DATA/SEEK_HOLE where the OS has them); within them
// os.File.ReadFrom uses copy_file_range, which lets btrfs/XFS share extents.
func copySparse(dst, src string, dstSize int64, fsync bool) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	srcSize := fi.Size()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if err := out.Truncate(max(dstSize, srcSize)); err != nil {
		return err
	}
	for off := int64(0); off < srcSize; {
		start, end, more, err := nextData(in, off, srcSize)
		if errors.Is(err, errNoExtents) {
			if err := copyNonZero(out, in, off, srcSize); err != nil {
				return err
			}
			break
		}
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if err := copyRange(out, in, start, end-start); err != nil {
			return err
		}
		off = end
	}
	if fsync {
		return out.Sync()
	}
	return nil
}

var errNoExtents = errors.New("extent lookup unsupported")

func copyRange(out, in *os.File, off, n int64) error {
	if _, err := in.Seek(off, io.SeekStart); err != nil {
		return err
	}
	if _, err := out.Seek(off, io.SeekStart); err != nil {
		return err
	}
	w, err := out.ReadFrom(io.LimitReader(in, n))
	if err == nil && w != n {
		err = fmt.Errorf("copy: short copy at %d: %d of %d bytes (source shrank?)", off, w, n)
	}
	return err
}

// copyNonZero is the fallback without extent information: read everything,
// write only blocks that are not all zero, so holes stay holes.
func copyNonZero(out, in *os.File, off, end int64) error {
	buf := make([]byte, 1<<20)
	for off < end {
		n, err := in.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var zeroBlock = make([]byte, 64<<10)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
