package rds

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// AllowHostProperty is the /disk property that limits which NVMe hosts may
// connect to an export. RouterOS prints it as a quoted string; empty means any
// host. See routeros-allow-host.md beside this file for what is assumed
// about a list.
const AllowHostProperty = "nvme-tcp-server-allow-host-name"

// maxAllowedHosts bounds the allow-list: one node, or two during a live
// migration hand-off. A third is a bug in the caller.
const maxAllowedHosts = 2

// AllowedHosts parses an allow-host-name value: "" is nil (any host), else
// the comma-separated host NQNs in the order printed.
func AllowedHosts(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// AllowedHosts reports the disk's allow-list (nil: any host) and whether
// RDS printed the property at all: a disk read without it says nothing
// about who may connect.
func (d *Disk) AllowedHosts() (hosts []string, printed bool) {
	v, ok := d.Properties[AllowHostProperty]
	if !ok {
		return nil, false
	}
	return AllowedHosts(v), true
}

// allowAtAdd is the allow-host value a /disk add sets: "" (not set) when
// hosts is nil, else hosts validated and encoded. Only an export has one.
func allowAtAdd(export bool, hosts []string) (string, error) {
	if hosts == nil {
		return "", nil
	}
	if !export {
		return "", invalidf("allow-list given for a disk that is not exported")
	}
	return encodeAllowedHosts(hosts)
}

// encodeAllowedHosts validates hosts and renders the property value: sorted,
// so the same set always prints the same and a read-back compares equal.
func encodeAllowedHosts(hosts []string) (string, error) {
	if len(hosts) == 0 {
		// "" would open the export to every host: refusing is the
		// caller's job (it names a host that nobody presents instead).
		return "", invalidf("allow-list is empty, which RouterOS reads as any host")
	}
	if len(hosts) > maxAllowedHosts {
		return "", invalidf("allow-list has %d hosts, more than %d", len(hosts), maxAllowedHosts)
	}
	sorted := slices.Clone(hosts)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, h := range sorted {
		// ValidateNQN's alphabet has no ',' and nothing that needs quoting.
		if err := ValidateNQN(h); err != nil {
			return "", fmt.Errorf("allowed host: %w", err)
		}
	}
	return strings.Join(sorted, ","), nil
}

// cmdDiskAllowHosts sets the allow-list of the disk in slot only if its file
// is still filePath, so the set cannot reach a disk that took the slot since
// it was read (a hand-made one, another cluster's).
func cmdDiskAllowHosts(slot, filePath, value string) string {
	return "/disk set [find slot=" + Quote(slot) + " and file-path=" + Quote(filePath) + "] " + AllowHostProperty + "=" + Quote(value)
}

// SetAllowedHosts makes the export of the disk in slot whose file is
// filePath allow exactly hosts (one or two host NQNs) and returns the disk as
// read back. It is idempotent ("set" with the same value changes nothing),
// and it reports success only after a complete read shows the value in
// place: a lost reply proves nothing about who can still connect. A slot
// holding a disk with another file is ErrNotFound: that disk is not the one
// asked for, and it is left alone.
func (c *Client) SetAllowedHosts(ctx context.Context, slot, filePath string, hosts []string) (*Disk, error) {
	if err := ValidateSlot(slot); err != nil {
		return nil, err
	}
	if err := ValidatePathUnder(c.base, filePath); err != nil {
		return nil, err
	}
	want, err := encodeAllowedHosts(hosts)
	if err != nil {
		return nil, err
	}
	get := func() (*Disk, error) {
		d, err := c.GetDisk(ctx, slot)
		if err != nil {
			return nil, err
		}
		if d.FilePath != filePath {
			return nil, fmt.Errorf("disk %q has file %q, not %q: %w", slot, truncate(d.FilePath, 64), filePath, ErrNotFound)
		}
		return d, nil
	}
	d, err := get()
	if err != nil {
		return nil, err
	}
	if v, ok := d.Properties[AllowHostProperty]; ok && v == want {
		return d, nil
	}
	if _, err := c.exec(ctx, cmdDiskAllowHosts(slot, filePath, want)); err != nil {
		return nil, err
	}
	d, err = get()
	if err != nil {
		return nil, fmt.Errorf("reading back allowed hosts: %w", err)
	}
	if v, ok := d.Properties[AllowHostProperty]; !ok || v != want {
		return nil, fmt.Errorf("%w: disk %q allows %q after setting %q", ErrFailed, slot, truncate(v, 64), truncate(want, 64))
	}
	klog.V(2).InfoS("Set allowed NVMe hosts", "slot", slot, "hosts", want)
	return d, nil
}
