package loop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// backing is a validated backing file.
type backing struct {
	// path is the symlink-resolved absolute path when the file exists, the
	// lexical path under the resolved files directory otherwise. It is the
	// string the kernel reports in backing_file, and the per-file lock key.
	path string
	// missing is the lookup error (wrapping fs.ErrNotExist) when the file does
	// not exist; nil when it does.
	missing error
}

// deletedSuffix is what the kernel appends to backing_file once the file has
// been unlinked while attached.
const deletedSuffix = " (deleted)"

// resolve maps an RDS file path (/storage-pool/k8s/pvc-1.img) to the
// emulator's copy under <BackingDir>/files and checks that it stays there.
// Only syntax and containment errors are returned as errors; a missing file is
// reported in backing.missing so that Device and Detach can still look for a
// device whose file was deleted.
func (l *Loop) resolve(filePath string) (backing, error) {
	rel, err := relPath(filePath)
	if err != nil {
		return backing{}, err
	}
	root, err := filepath.EvalSymlinks(l.filesDir)
	if err != nil {
		if !isNotExist(err) {
			return backing{}, fmt.Errorf("loop: backing directory: %w", err)
		}
		// No files directory at all: nothing can be attached, and nothing
		// attached can be found under a path that never existed.
		return backing{path: filepath.Join(l.filesDir, rel), missing: fmt.Errorf("loop: backing file for %s: %w", filePath, err)}, nil
	}
	lexical := filepath.Join(root, rel)
	resolved, err := filepath.EvalSymlinks(lexical)
	if err != nil {
		if isNotExist(err) {
			return backing{path: lexical, missing: fmt.Errorf("loop: backing file for %s: %w", filePath, asNotExist(err))}, nil
		}
		return backing{}, fmt.Errorf("loop: backing file for %s: %w", filePath, err)
	}
	if !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
		return backing{}, fmt.Errorf("%w: %q resolves to %s, outside %s", ErrInvalidPath, filePath, resolved, root)
	}
	st, err := os.Stat(resolved)
	if err != nil {
		if isNotExist(err) {
			return backing{path: lexical, missing: fmt.Errorf("loop: backing file for %s: %w", filePath, err)}, nil
		}
		return backing{}, fmt.Errorf("loop: backing file for %s: %w", filePath, err)
	}
	if !st.Mode().IsRegular() {
		return backing{}, fmt.Errorf("%w: %q is %s, not a regular file", ErrInvalidPath, filePath, st.Mode().Type())
	}
	return backing{path: resolved}, nil
}

// relPath checks the syntax of an RDS file path and returns it relative, in
// host form. It must be absolute and consist of non-empty segments none of
// which is "." or "..": the emulator never names files otherwise, so anything
// else is a forged or corrupted volume context.
func relPath(filePath string) (string, error) {
	if filePath == "" {
		return "", fmt.Errorf("%w: empty file path", ErrInvalidPath)
	}
	if !strings.HasPrefix(filePath, "/") {
		return "", fmt.Errorf("%w: %q is not absolute", ErrInvalidPath, filePath)
	}
	if strings.ContainsRune(filePath, 0) {
		return "", fmt.Errorf("%w: %q contains NUL", ErrInvalidPath, filePath)
	}
	segs := strings.Split(filePath[1:], "/")
	for _, s := range segs {
		switch s {
		case "":
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidPath, filePath)
		case ".", "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidPath, filePath, s)
		}
	}
	return filepath.Join(segs...), nil
}

// isNotExist treats "a directory on the way is a file" like "not there".
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// asNotExist makes sure the error wraps fs.ErrNotExist.
func asNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
}
