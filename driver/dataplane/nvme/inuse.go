package nvme

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/mountinfo"
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
			return fmt.Errorf("%w: /dev/%s is held by %s", dataplane.ErrInUse, d.name, strings.Join(names, ", "))
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
	mounts, err := mountinfo.Read(n.mountInfo)
	if err != nil {
		return fmt.Errorf("nvme: cannot tell whether the device is mounted: %w", err)
	}
	for _, m := range mounts {
		for _, d := range devs {
			if (d.majMin != "" && m.MajorMinor == d.majMin) ||
				m.Source == "/dev/"+d.name || m.Source == filepath.Join(n.devRoot, d.name) ||
				(m.FSType == "devtmpfs" && m.Root == "/"+d.name) {
				return fmt.Errorf("%w: /dev/%s is mounted on %s", dataplane.ErrInUse, d.name, m.MountPoint)
			}
		}
	}
	return nil
}
