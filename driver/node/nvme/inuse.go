package nvme

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rds-csi/rds-csi/driver/node"
)

// blockDev is a block device or partition to check before disconnecting.
type blockDev struct {
	name   string // nvme3n1, nvme3n1p1
	dir    string // its sysfs directory
	majMin string // "259:4", "" if unknown
}

// checkNotInUse returns an error wrapping node.ErrInUse when any of devs, or
// a partition of one, has holders (device-mapper, md, ...) or is mounted:
// directly, by its path, or bind-mounted as a raw block volume. It fails
// closed: when it cannot tell, it returns an error too.
func (n *NVMe) checkNotInUse(devs []string) error {
	var all []blockDev
	for _, dev := range devs {
		dir := filepath.Join(n.sysfs, "block", dev)
		entries, err := os.ReadDir(dir)
		if gone(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("nvme: read %s: %w", dev, err)
		}
		all = append(all, blockDev{name: dev, dir: dir})
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), dev+"p") {
				all = append(all, blockDev{name: e.Name(), dir: filepath.Join(dir, e.Name())})
			}
		}
	}
	for i := range all {
		d := &all[i]
		holders, err := os.ReadDir(filepath.Join(d.dir, "holders"))
		if err != nil && !gone(err) {
			return fmt.Errorf("nvme: read %s holders: %w", d.name, err)
		}
		if len(holders) > 0 {
			names := make([]string, len(holders))
			for j, h := range holders {
				names[j] = h.Name()
			}
			return fmt.Errorf("%w: /dev/%s is held by %s", node.ErrInUse, d.name, strings.Join(names, ", "))
		}
		if d.majMin, err = readAttr(filepath.Join(d.dir, "dev")); err != nil && !gone(err) {
			return fmt.Errorf("nvme: read %s dev: %w", d.name, err)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return n.checkNotMounted(all)
}

func (n *NVMe) checkNotMounted(devs []blockDev) error {
	f, err := os.Open(n.mountInfo)
	if err != nil {
		return fmt.Errorf("nvme: cannot tell whether the device is mounted: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, ok := parseMountInfo(sc.Text())
		if !ok {
			continue
		}
		for _, d := range devs {
			if (d.majMin != "" && m.majMin == d.majMin) ||
				m.source == "/dev/"+d.name || m.source == filepath.Join(n.devRoot, d.name) ||
				(m.fsType == "devtmpfs" && m.root == "/"+d.name) {
				return fmt.Errorf("%w: /dev/%s is mounted on %s", node.ErrInUse, d.name, m.mountPoint)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("nvme: cannot tell whether the device is mounted: read %s: %w", n.mountInfo, err)
	}
	return nil
}

type mountEntry struct {
	majMin, root, mountPoint, fsType, source string
}

// parseMountInfo parses one line of /proc/<pid>/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Paths keep their octal escapes (\040 for a space); device names have none.
func parseMountInfo(line string) (mountEntry, bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return mountEntry{}, false
	}
	return mountEntry{majMin: f[2], root: f[3], mountPoint: f[4], fsType: f[sep+1], source: f[sep+2]}, true
}
