package nvme

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// ErrTimeout: the volume's block device did not appear in time after connect.
var ErrTimeout = errors.New("nvme: timed out waiting for the block device")

// exitEALREADY is nvme-cli's exit status when the kernel refuses a connect
// because the same controller already exists.
const exitEALREADY = 114

// Linux errno values nvme-cli exits with when the target's address does not
// answer a connect.
const (
	exitENETUNREACH  = 101
	exitETIMEDOUT    = 110
	exitECONNREFUSED = 111
	exitEHOSTUNREACH = 113
)

// Defaults for Options.
const (
	DefaultNVMeCLI           = "nvme"
	DefaultSysfsRoot         = "/sys"
	DefaultDevRoot           = "/dev"
	DefaultMountInfo         = "/proc/self/mountinfo"
	DefaultDeviceWaitTimeout = 30 * time.Second
	DefaultPollInterval      = 200 * time.Millisecond
	DefaultRescanWait        = 5 * time.Second
)

// Options configure an NVMe data plane. Zero values take the defaults.
type Options struct {
	// Exec runs nvme-cli; default k8s.io/utils/exec.New().
	Exec utilexec.Interface
	// NVMeCLI is the nvme-cli program, a path or a name looked up in PATH.
	NVMeCLI string
	// SysfsRoot and DevRoot are where sysfs and the device nodes are
	// mounted; returned device paths are under DevRoot.
	SysfsRoot, DevRoot string
	// MountInfo is read to tell whether a device is mounted before
	// disconnecting. The plugin must see the mounts kubelet makes (mount
	// propagation on the kubelet directory).
	MountInfo string
	// Clock drives every wait; default the real clock.
	Clock clock.Clock
	// DeviceWaitTimeout bounds the wait for the block device after connect.
	DeviceWaitTimeout time.Duration
	// PollInterval is how often sysfs is looked at while waiting.
	PollInterval time.Duration
	// RescanWait bounds how long Rescan watches for the size to change
	// (nvme ns-rescan only queues the kernel's scan). When the size has not
	// changed by then, Rescan returns it as it is.
	RescanWait time.Duration
	// HostNQN is passed as --hostnqn when a Target has none; "" leaves
	// nvme-cli's default (/etc/nvme/hostnqn).
	HostNQN string
}

// NVMe is the dataplane.Plane for hardware: NVMe/TCP through nvme-cli, device
// discovery through sysfs. It keeps no state and is safe for concurrent use.
type NVMe struct {
	exec         utilexec.Interface
	cli          string
	sysfs        string
	devRoot      string
	mountInfo    string
	clock        clock.Clock
	waitTimeout  time.Duration
	pollInterval time.Duration
	rescanWait   time.Duration
	hostNQN      string
}

var _ dataplane.Plane = (*NVMe)(nil)

// New returns an NVMe data plane. Invalid values (a bad HostNQN) are reported
// by the operation that uses them.
func New(o Options) *NVMe {
	n := &NVMe{
		exec: o.Exec, cli: o.NVMeCLI, sysfs: o.SysfsRoot, devRoot: o.DevRoot, mountInfo: o.MountInfo,
		clock: o.Clock, waitTimeout: o.DeviceWaitTimeout, pollInterval: o.PollInterval,
		rescanWait: o.RescanWait, hostNQN: o.HostNQN,
	}
	if n.exec == nil {
		n.exec = utilexec.New()
	}
	if n.cli == "" {
		n.cli = DefaultNVMeCLI
	}
	if n.sysfs == "" {
		n.sysfs = DefaultSysfsRoot
	}
	if n.devRoot == "" {
		n.devRoot = DefaultDevRoot
	}
	if n.mountInfo == "" {
		n.mountInfo = DefaultMountInfo
	}
	if n.clock == nil {
		n.clock = clock.New()
	}
	if n.waitTimeout <= 0 {
		n.waitTimeout = DefaultDeviceWaitTimeout
	}
	if n.pollInterval <= 0 {
		n.pollInterval = DefaultPollInterval
	}
	if n.rescanWait <= 0 {
		n.rescanWait = DefaultRescanWait
	}
	return n
}

// Name implements dataplane.Plane.
func (n *NVMe) Name() string { return "nvme" }

// Attach connects t's subsystem unless a controller to t's address already
// exists, then waits for namespace 1's block device and returns its path.
func (n *NVMe) Attach(ctx context.Context, t dataplane.Target) (string, error) {
	args, err := connectArgs(t, n.hostNQN)
	if err != nil {
		return "", err
	}
	subs, err := n.subsystems(t.NQN)
	if err != nil {
		return "", err
	}
	if c, ok := connected(subs, t); ok {
		klog.V(2).InfoS("NVMe/TCP subsystem already connected", "volumeID", t.VolumeID, "nqn", t.NQN,
			"controller", c.name, "state", c.state)
	} else {
		klog.InfoS("Connecting NVMe/TCP subsystem", "volumeID", t.VolumeID, "nqn", t.NQN,
			"address", t.Address, "port", t.Port)
		out, err := n.run(ctx, args)
		if err != nil {
			if !alreadyConnected(out, err) {
				if unreachable(out, err) {
					return "", fmt.Errorf("%w: %w", dataplane.ErrTargetUnreachable, err)
				}
				return "", err
			}
			klog.V(2).InfoS("nvme connect: already connected", "volumeID", t.VolumeID, "nqn", t.NQN,
				"output", strings.TrimSpace(string(out)))
		}
	}
	return n.waitDevice(ctx, t)
}

// connected returns an active controller of subs connected to t's endpoint.
func connected(subs []subsystem, t dataplane.Target) (controller, bool) {
	for _, s := range subs {
		for _, c := range s.ctrls {
			if c.active() && c.serves(t) {
				return c, true
			}
		}
	}
	return controller{}, false
}

// alreadyConnected recognises nvme-cli's answers to a connect the kernel
// refused because the controller exists: EALREADY as exit status or text
// ("Operation already in progress"), or libnvme's own "already connected".
func alreadyConnected(out []byte, err error) bool {
	var ee utilexec.ExitError
	if errors.As(err, &ee) && ee.ExitStatus() == exitEALREADY {
		return true
	}
	s := strings.ToLower(string(out))
	return strings.Contains(s, "already connected") || strings.Contains(s, "operation already in progress")
}

// unreachable recognises a connect that failed because the target's address
// did not answer: the kernel's errno as nvme-cli's exit status (ECONNREFUSED,
// EHOSTUNREACH, ENETUNREACH, ETIMEDOUT) or its strerror text. A target that
// answered and refused (an NVMe status such as an invalid host) is not one:
// the kernel reports those as EIO, and retrying cannot help.
func unreachable(out []byte, err error) bool {
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitStatus() {
		case exitECONNREFUSED, exitEHOSTUNREACH, exitENETUNREACH, exitETIMEDOUT:
			return true
		}
	}
	s := strings.ToLower(string(out))
	for _, m := range []string{"connection refused", "no route to host", "network is unreachable", "connection timed out"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func (n *NVMe) waitDevice(ctx context.Context, t dataplane.Target) (string, error) {
	var last string
	var dev string
	err := n.poll(ctx, n.waitTimeout, func() (bool, error) {
		subs, err := n.subsystems(t.NQN)
		if err != nil {
			return false, err
		}
		ns, s, ok := pick(subs, t)
		if !ok {
			last = describe(subs)
			return false, nil
		}
		path := filepath.Join(n.devRoot, ns.dev)
		if _, err := os.Stat(path); err != nil {
			last = fmt.Sprintf("%s is in sysfs but %s: %v", ns.dev, path, err)
			return false, nil
		}
		dev = path
		klog.InfoS("NVMe namespace ready", "volumeID", t.VolumeID, "nqn", t.NQN, "device", dev,
			"subsystem", s.name, "nsid", ns.nsid)
		return true, nil
	})
	if errors.Is(err, ErrTimeout) {
		return "", fmt.Errorf("%w: namespace %d of %s after %v (%s)", ErrTimeout, rdsNSID, t.NQN, n.waitTimeout, last)
	}
	if err != nil {
		return "", fmt.Errorf("nvme: wait for namespace %d of %s: %w", rdsNSID, t.NQN, err)
	}
	return dev, nil
}

// describe says what sysfs shows of a subsystem, for timeout errors.
func describe(subs []subsystem) string {
	if len(subs) == 0 {
		return "no subsystem with this NQN"
	}
	var b strings.Builder
	for _, s := range subs {
		fmt.Fprintf(&b, "%s: controllers", s.name)
		for _, c := range s.ctrls {
			fmt.Fprintf(&b, " %s=%s", c.name, c.state)
		}
		b.WriteString(", namespaces")
		for _, ns := range s.namespaces {
			fmt.Fprintf(&b, " %s(nsid %d)", ns.dev, ns.nsid)
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// Device implements dataplane.Plane: namespace 1 of t's subsystem, found from
// the NQN alone, or "" when the volume is not attached.
func (n *NVMe) Device(ctx context.Context, t dataplane.Target) (string, error) {
	ns, _, ok, err := n.find(t)
	if err != nil || !ok {
		return "", err
	}
	return filepath.Join(n.devRoot, ns.dev), nil
}

// find reads sysfs for t's subsystems and picks its device; ok is false
// when t is not connected.
func (n *NVMe) find(t dataplane.Target) (namespace, subsystem, bool, error) {
	if err := validateNQN("NQN", t.NQN); err != nil {
		return namespace{}, subsystem{}, false, err
	}
	subs, err := n.subsystems(t.NQN)
	if err != nil {
		return namespace{}, subsystem{}, false, err
	}
	ns, sub, ok := pick(subs, t)
	return ns, sub, ok, nil
}

// ControllerState reports the state of the controller behind t's device: the
// one the namespace hangs off or, for a multipath head, the best of its
// paths (live if any path is).
func (n *NVMe) ControllerState(ctx context.Context, t dataplane.Target) (string, error) {
	ns, sub, ok, err := n.find(t)
	if err != nil || !ok {
		return "", err
	}
	if c, found := sub.ctrl(ns.ctrl); found {
		return c.state, nil
	}
	state := ""
	for _, c := range sub.ctrls {
		if c.state == "live" {
			return "live", nil
		}
		if state == "" && c.active() {
			state = c.state
		}
	}
	return state, nil
}

// Detach disconnects t's subsystem, and only it, when no block device of it
// is held or mounted. A subsystem that is not connected is a success.
func (n *NVMe) Detach(ctx context.Context, t dataplane.Target) error {
	if err := validateNQN("NQN", t.NQN); err != nil {
		return err
	}
	subs, err := n.subsystems(t.NQN)
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		klog.V(2).InfoS("NVMe subsystem not connected, nothing to detach", "volumeID", t.VolumeID, "nqn", t.NQN)
		return nil
	}
	var devs []string
	for _, s := range subs {
		for _, ns := range s.namespaces {
			devs = append(devs, ns.dev)
		}
	}
	if err := n.checkNotInUse(devs); err != nil {
		return err
	}
	klog.InfoS("Disconnecting NVMe/TCP subsystem", "volumeID", t.VolumeID, "nqn", t.NQN, "devices", devs)
	if _, err := n.run(ctx, []string{"disconnect", "-n", t.NQN}); err != nil {
		return err
	}
	// nvme-cli reports success even when it removed nothing; trust sysfs.
	if subs, err = n.subsystems(t.NQN); err != nil {
		return err
	}
	for _, s := range subs {
		for _, c := range s.ctrls {
			if c.active() {
				return fmt.Errorf("nvme: %s still has controller %s (%s) after disconnect", t.NQN, c.name, c.state)
			}
		}
	}
	return nil
}

// Rescan asks every live controller of t's subsystem to rescan its
// namespaces and returns namespace 1's size in bytes once it changed, or as
// it is after RescanWait.
func (n *NVMe) Rescan(ctx context.Context, t dataplane.Target) (int64, error) {
	if err := validateNQN("NQN", t.NQN); err != nil {
		return 0, err
	}
	subs, err := n.subsystems(t.NQN)
	if err != nil {
		return 0, err
	}
	ns, s, ok := pick(subs, t)
	if !ok {
		return 0, fmt.Errorf("nvme: rescan %s: %w", t.NQN, dataplane.ErrNotAttached)
	}
	before, err := n.blockSize(ns.dev)
	if err != nil {
		return 0, err
	}
	var ctrls []string
	for _, c := range s.ctrls {
		if c.state == "live" && (ns.ctrl == "" || ns.ctrl == c.name) {
			ctrls = append(ctrls, c.name)
		}
	}
	if len(ctrls) == 0 {
		return 0, fmt.Errorf("nvme: rescan %s: no live controller (%s)", t.NQN, describe([]subsystem{s}))
	}
	for _, c := range ctrls {
		if _, err := n.run(ctx, []string{"ns-rescan", filepath.Join(n.devRoot, c)}); err != nil {
			return 0, err
		}
	}
	size := before
	err = n.poll(ctx, n.rescanWait, func() (bool, error) {
		var err error
		size, err = n.blockSize(ns.dev)
		return err != nil || size != before, err
	})
	if err != nil && !errors.Is(err, ErrTimeout) {
		return 0, fmt.Errorf("nvme: rescan %s: %w", t.NQN, err)
	}
	klog.InfoS("NVMe namespace rescanned", "volumeID", t.VolumeID, "nqn", t.NQN, "device", ns.dev,
		"sizeBefore", before, "size", size)
	return size, nil
}

// poll calls check now and then every PollInterval on the clock until it is
// done or fails, ctx ends, or timeout passes (ErrTimeout, after a last check).
func (n *NVMe) poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	timer := n.clock.Timer(timeout)
	defer timer.Stop()
	ticker := n.clock.Ticker(n.pollInterval)
	defer ticker.Stop()
	for {
		if done, err := check(); done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C():
			if done, err := check(); done || err != nil {
				return err
			}
			return ErrTimeout
		case <-ticker.C():
		}
	}
}

// maxOutput bounds the nvme-cli output quoted in errors.
const maxOutput = 512

// run runs nvme-cli with args (no shell) under ctx and returns its combined
// output. Errors carry the arguments, the exit status and the output.
func (n *NVMe) run(ctx context.Context, args []string) ([]byte, error) {
	klog.V(4).InfoS("Running nvme-cli", "cli", n.cli, "args", args)
	out, err := n.exec.CommandContext(ctx, n.cli, args...).CombinedOutput()
	if err == nil {
		return out, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	text := strings.TrimSpace(string(out))
	if len(text) > maxOutput {
		text = text[:maxOutput] + "..."
	}
	return out, fmt.Errorf("nvme: %s %s: %w: %q", n.cli, strings.Join(args, " "), err, text)
}
