package nvme

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// The names the kernel gives NVMe devices (drivers/nvme/host):
//
//	nvme-subsysS   a subsystem, in /sys/class/nvme-subsystem; it links to its
//	               controllers and, with native multipath, holds the
//	               namespace heads
//	nvmeC          a controller, in /sys/class/nvme; its char device
//	               /dev/nvmeC is what ns-rescan talks to
//	nvmeSnH        a multipath namespace head (S = subsystem instance), the
//	               device to use
//	nvmeScCnH      one controller's path to head nvmeSnH: a hidden disk with
//	               no /dev node, listed under the controller
//	nvmeCnH        multipath off: the namespace under controller C
//
// H is an instance number, not the nsid; the nsid is read from the device.
var (
	ctrlNameRE = regexp.MustCompile(`^nvme[0-9]+$`)
	nsNameRE   = regexp.MustCompile(`^nvme[0-9]+n[0-9]+$`)
	pathNameRE = regexp.MustCompile(`^nvme([0-9]+)c[0-9]+n([0-9]+)$`)
)

// rdsNSID is the namespace RDS exports in each subsystem.
const rdsNSID = 1

// controller is one NVMe controller (path) of a subsystem.
type controller struct {
	name      string // nvme3
	state     string // live, connecting, resetting, new, deleting, dead, ...
	transport string // tcp
	traddr    string
	trsvcid   string
}

// active reports a controller that is, or is trying to be, a working path.
// The kernel treats these as existing connections (a second connect to the
// same endpoint fails with EALREADY); deleting and dead ones do not count.
func (c controller) active() bool {
	switch c.state {
	case "live", "connecting", "resetting", "new":
		return true
	}
	return false
}

// serves reports whether the controller is an NVMe/TCP connection to t's
// address and port.
func (c controller) serves(t dataplane.Target) bool {
	return c.transport == "tcp" && c.trsvcid == strconv.Itoa(t.Port) && sameHost(c.traddr, t.Address)
}

func sameHost(a, b string) bool {
	if a == b {
		return true
	}
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	return errX == nil && errY == nil && x.Unmap() == y.Unmap()
}

// namespace is a block device of a subsystem.
type namespace struct {
	dev  string // name in /sys/block and /dev: nvme3n1
	nsid int
	ctrl string // "" for a multipath head, else the controller it hangs off
}

// subsystem is one NVMe subsystem as sysfs shows it.
type subsystem struct {
	name       string // nvme-subsys3
	ctrls      []controller
	namespaces []namespace
}

func (s subsystem) ctrl(name string) (controller, bool) {
	for _, c := range s.ctrls {
		if c.name == name {
			return c, true
		}
	}
	return controller{}, false
}

// gone reports an error from a sysfs entry that disappeared while being read
// (a controller or subsystem deleted concurrently).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// subsystems returns every subsystem whose subsysnqn is nqn (normally at most
// one), read afresh from sysfs.
func (n *NVMe) subsystems(nqn string) ([]subsystem, error) {
	dir := filepath.Join(n.sysfs, "class", "nvme-subsystem")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nvme-core not loaded: nothing is connected
	}
	if err != nil {
		return nil, fmt.Errorf("nvme: list subsystems: %w", err)
	}
	var subs []subsystem
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "nvme-subsys") {
			continue
		}
		got, err := readAttr(filepath.Join(dir, e.Name(), "subsysnqn"))
		if gone(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nvme: read %s: %w", e.Name(), err)
		}
		if got != nqn {
			continue
		}
		s, err := n.readSubsystem(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	return subs, nil
}

// readSubsystem reads a subsystem's controllers and namespace block devices.
// Entries that vanish meanwhile are skipped.
func (n *NVMe) readSubsystem(dir string) (subsystem, error) {
	s := subsystem{name: filepath.Base(dir)}
	entries, err := os.ReadDir(dir)
	if err != nil && !gone(err) {
		return s, fmt.Errorf("nvme: read %s: %w", s.name, err)
	}
	seen := map[string]bool{}
	add := func(entry, ctrl string) error {
		ns, ok, err := n.readNamespace(entry, ctrl)
		if err != nil || !ok || seen[ns.dev] {
			return err
		}
		seen[ns.dev] = true
		s.namespaces = append(s.namespaces, ns)
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case ctrlNameRE.MatchString(name):
			c, ok, err := n.readController(name)
			if err != nil {
				return s, err
			}
			if ok {
				s.ctrls = append(s.ctrls, c)
			}
		case nsNameRE.MatchString(name), pathNameRE.MatchString(name):
			if err := add(name, ""); err != nil {
				return s, err
			}
		}
	}
	// Without native multipath the namespaces hang off the controllers; with
	// it the controllers hold hidden per-path disks, which readNamespace
	// turns into their heads.
	for _, c := range s.ctrls {
		entries, err := os.ReadDir(filepath.Join(n.sysfs, "class", "nvme", c.name))
		if err != nil && !gone(err) {
			return s, fmt.Errorf("nvme: read %s: %w", c.name, err)
		}
		for _, e := range entries {
			if nsNameRE.MatchString(e.Name()) || pathNameRE.MatchString(e.Name()) {
				if err := add(e.Name(), c.name); err != nil {
					return s, err
				}
			}
		}
	}
	sort.Slice(s.ctrls, func(i, j int) bool { return s.ctrls[i].name < s.ctrls[j].name })
	sort.Slice(s.namespaces, func(i, j int) bool { return s.namespaces[i].dev < s.namespaces[j].dev })
	return s, nil
}

func (n *NVMe) readController(name string) (controller, bool, error) {
	dir := filepath.Join(n.sysfs, "class", "nvme", name)
	c := controller{name: name}
	for _, a := range []struct {
		file string
		dst  *string
	}{{"state", &c.state}, {"transport", &c.transport}} {
		v, err := readAttr(filepath.Join(dir, a.file))
		if gone(err) {
			return c, false, nil
		}
		if err != nil {
			return c, false, fmt.Errorf("nvme: read %s/%s: %w", name, a.file, err)
		}
		*a.dst = v
	}
	addr, err := readAttr(filepath.Join(dir, "address"))
	if gone(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("nvme: read %s/address: %w", name, err)
	}
	// traddr=10.0.0.5,trsvcid=4420[,host_traddr=...][,src_addr=...]
	for _, kv := range strings.Split(addr, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "traddr":
			c.traddr = v
		case "trsvcid":
			c.trsvcid = v
		}
	}
	return c, true, nil
}

// readNamespace turns a sysfs entry into the block device to use: the entry
// itself for a head or a non-multipath namespace, the head for a hidden path.
// ok is false when there is no such block device (any more).
func (n *NVMe) readNamespace(entry, ctrl string) (namespace, bool, error) {
	ns := namespace{dev: entry, ctrl: ctrl}
	if m := pathNameRE.FindStringSubmatch(entry); m != nil {
		// nvmeScCnH is a path of head nvmeSnH (same subsystem and head
		// instance by construction in the kernel); the head is shared by
		// all controllers.
		ns = namespace{dev: "nvme" + m[1] + "n" + m[2]}
	}
	v, err := readAttr(filepath.Join(n.sysfs, "block", ns.dev, "nsid"))
	if gone(err) {
		return ns, false, nil
	}
	if err != nil {
		return ns, false, fmt.Errorf("nvme: read %s/nsid: %w", ns.dev, err)
	}
	if ns.nsid, err = strconv.Atoi(v); err != nil {
		return ns, false, fmt.Errorf("nvme: %s/nsid %q: %w", ns.dev, v, err)
	}
	return ns, true, nil
}

// pick chooses the device of t's volume among subs: namespace 1, on a
// multipath head or else on an active controller, preferring a controller
// connected to t's address. ok is false when there is none.
func pick(subs []subsystem, t dataplane.Target) (ns namespace, s subsystem, ok bool) {
	best := 3
	for _, sub := range subs {
		anyActive := false
		for _, c := range sub.ctrls {
			anyActive = anyActive || c.active()
		}
		for _, cand := range sub.namespaces {
			if cand.nsid != rdsNSID {
				continue
			}
			rank := 3
			switch c, found := sub.ctrl(cand.ctrl); {
			case cand.ctrl == "" && anyActive:
				rank = 0 // a head lives as long as one of its paths does
			case found && c.active() && c.serves(t):
				rank = 1
			case found && c.active():
				rank = 2
			}
			if rank < best {
				best, ns, s, ok = rank, cand, sub, true
			}
		}
	}
	return ns, s, ok
}

// blockSize reads a block device's size in bytes.
func (n *NVMe) blockSize(dev string) (int64, error) {
	v, err := readAttr(filepath.Join(n.sysfs, "block", dev, "size"))
	if err != nil {
		return 0, fmt.Errorf("nvme: read %s size: %w", dev, err)
	}
	sectors, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sectors < 0 || sectors > (1<<63-1)/512 {
		return 0, fmt.Errorf("nvme: %s size %q is not a sector count", dev, v)
	}
	return sectors * 512, nil // always 512-byte units, whatever the block size
}
