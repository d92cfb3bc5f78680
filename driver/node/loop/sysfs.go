package loop

import (
	"bufio"
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
	mounts, err := readMountInfo(l.mountInfo)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		switch {
		case m.majorMinor == devNum, m.source == l.devPath(name), m.source == "/dev/"+name:
			out = append(out, "mounted at "+m.mountPoint)
		case m.root == "/"+name && (m.fsType == "devtmpfs" || m.fsType == "tmpfs"):
			out = append(out, "device node bind-mounted at "+m.mountPoint)
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

// mount is one line of /proc/<pid>/mountinfo.
type mount struct {
	majorMinor string
	root       string
	mountPoint string
	fsType     string
	source     string
}

// readMountInfo parses a mountinfo file (proc(5)).
func readMountInfo(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loop: read mounts: %w", err)
	}
	defer f.Close()
	ms, err := parseMountInfo(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("loop: read mounts from %s: %w", path, err)
	}
	return ms, nil
}

func parseMountInfo(sc *bufio.Scanner) ([]mount, error) {
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var out []mount
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		out = append(out, mount{
			majorMinor: f[2],
			root:       unescapeOctal(f[3]),
			mountPoint: unescapeOctal(f[4]),
			fsType:     g[0],
			source:     unescapeOctal(g[1]),
		})
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline and
// backslash in mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
