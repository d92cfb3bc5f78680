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
	// The common case is a new disk's file: create it exclusively and size
	// it, three syscalls, instead of a lookup that fails first. Only if
	// something is there already does it need the careful path below.
	if f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
		err = f.Truncate(size) // sparse: no blocks are allocated
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return true, err
	} else if !errors.Is(err, os.ErrExist) {
		return false, err
	}
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
		err = f.Truncate(size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return created, err
}

// copyStats is what a copy cost.
type copyStats struct {
	size   int64 // the new file's size
	copied int64 // data bytes read and written (0 for a reflink)
	cloned bool  // made with a reflink: no data copied at all
}

// copySparse copies src into a new file at dst of dstSize bytes (>= the
// source's size), fsynced when fsync is set. Volumes are huge and mostly
// holes, so a copy must cost what the data costs, not what the size says:
// first a reflink (FICLONE: btrfs, XFS) shares every extent at no cost;
// failing that only the data extents are copied (found with
// SEEK_DATA/SEEK_HOLE), and within them os.File.ReadFrom uses
// copy_file_range, so the kernel moves the bytes. Without extent
// information every block is read but only non-zero ones are written.
// progress, if not nil, is called after each extent with the bytes copied.
func copySparse(dst, src string, dstSize int64, fsync bool, progress func(int64)) (st copyStats, err error) {
	in, err := os.Open(src)
	if err != nil {
		return st, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return st, err
	}
	srcSize := fi.Size()
	st.size = max(dstSize, srcSize)
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return st, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if err := cloneFile(out, in); err == nil {
		st.cloned = true
	} else if !errors.Is(err, errNoClone) {
		return st, err
	} else {
		if err := copyExtents(out, in, srcSize, &st, progress); err != nil {
			return st, err
		}
	}
	if err := out.Truncate(st.size); err != nil {
		return st, err
	}
	if fsync {
		return st, out.Sync()
	}
	return st, nil
}

// copyExtents copies the data of in (srcSize bytes) to the same offsets of
// the empty file out.
func copyExtents(out, in *os.File, srcSize int64, st *copyStats, progress func(int64)) error {
	for off := int64(0); off < srcSize; {
		start, end, more, err := nextData(in, off, srcSize)
		if errors.Is(err, errNoExtents) {
			n, err := copyNonZero(out, in, off, srcSize)
			st.copied += n
			return err
		}
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		if err := copyRange(out, in, start, end-start); err != nil {
			return err
		}
		st.copied += end - start
		if progress != nil {
			progress(st.copied)
		}
		off = end
	}
	return nil
}

var (
	errNoExtents = errors.New("extent lookup unsupported")
	errNoClone   = errors.New("reflink unsupported")
)

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
// It returns the bytes written.
func copyNonZero(out, in *os.File, off, end int64) (written int64, err error) {
	buf := make([]byte, 1<<20)
	for off < end {
		n, err := in.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return written, werr
			}
			written += int64(n)
		}
		off += int64(n)
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
	}
	return written, nil
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

// noReflink makes copies skip FICLONE, so tests on a reflink filesystem still
// exercise the extent copy.
var noReflink bool
