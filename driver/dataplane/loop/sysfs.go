package loop

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/rds-csi/rds-csi/driver/dataplane/mountinfo"
)

// loopDev is a bound loop device as sysfs shows it.
type loopDev struct {
	name      string // "loop3"
	num       int
	backing   string // backing_file, without the trailing newline
	autoclear bool   // marked to be released on last close
}

func (l *Loop) devPath(name string) string { return filepath.Join(l.devDir, name) }

func (l *Loop) blockDir(name string) string { return filepath.Join(l.sysfs, "block", name) }

// loopNum parses "loop12" to 12; partitions (loop12p1) and other names fail.
func loopNum(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "loop")
	if !ok || rest == "" || strings.TrimLeft(rest, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// gone reports errors that mean "the device or attribute is not there (any
// more)": a loop device can be detached or removed while we read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}

// readAttr reads a sysfs attribute without its trailing newline.
func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// bound reads the state of one loop device; ok is false if it is not bound.
func (l *Loop) bound(name string) (d loopDev, ok bool, err error) {
	num, isLoop := loopNum(name)
	if !isLoop {
		return loopDev{}, false, nil
	}
	dir := filepath.Join(l.blockDir(name), "loop")
	bf, err := readAttr(filepath.Join(dir, "backing_file"))
	if err != nil {
		if gone(err) {
			return loopDev{}, false, nil
		}
		return loopDev{}, false, fmt.Errorf("loop: read backing file of %s: %w", name, err)
	}
	ac, err := readAttr(filepath.Join(dir, "autoclear"))
	if err != nil {
		if gone(err) {
			return loopDev{}, false, nil
		}
		return loopDev{}, false, fmt.Errorf("loop: read autoclear of %s: %w", name, err)
	}
	return loopDev{name: name, num: num, backing: bf, autoclear: ac == "1"}, true, nil
}

// find lists the loop devices backed by b: those reporting b.path, or, when the
// file no longer exists, those reporting it as deleted. The result is sorted
// with devices not marked autoclear first, then by number, so callers take the
// first as "the" device.
func (l *Loop) find(ctx context.Context, b backing) ([]loopDev, error) {
	want := b.path
	if b.missing != nil {
		// A file literally named "x.img (deleted)" would look the same as
		// x.img after deletion; do not confuse the two.
		if _, err := os.Lstat(b.path + deletedSuffix); err == nil {
			return nil, nil
		}
		want = b.path + deletedSuffix
	}
	entries, err := os.ReadDir(filepath.Join(l.sysfs, "block"))
	if err != nil {
		return nil, fmt.Errorf("loop: list block devices: %w", err)
	}
	var out []loopDev
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, ok, err := l.bound(e.Name())
		if err != nil {
			return nil, err
		}
		if ok && d.backing == want {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].autoclear != out[j].autoclear {
			return !out[i].autoclear
		}
		return out[i].num < out[j].num
	})
	return out, nil
}

// users describes what keeps a device busy, as far as mountinfo and sysfs
// show: mounts of the device (by device number or by source path), bind
// mounts of its device node (how kubelet publishes raw block volumes), and
// holders (device-mapper, md, ...). Empty means none visible.
func (l *Loop) users(name string) ([]string, error) {
	var out []string
	devNum, err := readAttr(filepath.Join(l.blockDir(name), "dev"))
	if err != nil {
		return nil, fmt.Errorf("loop: read device number of %s: %w", name, err)
	}
	mounts, err := mountinfo.Read(l.mountInfo)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	for _, m := range mounts {
		switch {
		case m.MajorMinor == devNum, m.Source == l.devPath(name), m.Source == "/dev/"+name:
			out = append(out, "mounted at "+m.MountPoint)
		case m.Root == "/"+name && (m.FSType == "devtmpfs" || m.FSType == "tmpfs"):
			out = append(out, "device node bind-mounted at "+m.MountPoint)
		}
	}
	holders, err := os.ReadDir(filepath.Join(l.blockDir(name), "holders"))
	if err != nil && !gone(err) {
		return nil, fmt.Errorf("loop: read holders of %s: %w", name, err)
	}
	for _, h := range holders {
		out = append(out, "held by "+h.Name())
	}
	return out, nil
}
