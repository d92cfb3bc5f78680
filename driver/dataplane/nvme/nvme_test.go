package nvme

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

const (
	nqn1      = "nqn.2000-02.com.mikrotik:pvc-1"
	nqn10     = "nqn.2000-02.com.mikrotik:pvc-10"
	nqnClone  = "nqn.2000-02.com.mikrotik:pvc-1-clone"
	nqn2      = "nqn.2000-02.com.mikrotik:pvc-2"
	rdsAddr   = "10.0.0.5"
	rdsPort   = 4420
	hostNQN   = "nqn.2014-08.org.nvmexpress:uuid:6c2e1f3a-0d4b-4b8e-9a51-3f0c2d7e8b10"
	optsHost  = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"
	waitLimit = 10 * time.Second // real time any call may take before the test fails
)

func target(nqn string) dataplane.Target {
	return dataplane.Target{VolumeID: "pvc-x", NQN: nqn, Address: rdsAddr, Port: rdsPort}
}

// timerClock is a mock clock that reports every Timer it creates, so a test
// advances time only once the code under test is waiting on it.
var _ clock.Clock = (*timerClock)(nil)

type timerClock struct {
	*libclock.Mock
	timers chan time.Duration
}

func newTimerClock() *timerClock {
	return &timerClock{Mock: libclock.NewMock(), timers: make(chan time.Duration, 100)}
}

// AfterFunc, Ticker and Timer make the Mock an internal/clock.Clock; its
// other methods already have the interface's signatures.
func (c *timerClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return clock.FromLibrary(c.Mock).AfterFunc(d, f)
}

func (c *timerClock) Ticker(d time.Duration) clock.Ticker { return clock.FromLibrary(c.Mock).Ticker(d) }

func (c *timerClock) Timer(d time.Duration) clock.Timer {
	t := clock.FromLibrary(c.Mock).Timer(d)
	select {
	case c.timers <- d:
	default:
	}
	return t
}

// awaitTimer waits (in real time) until the code under test has created a
// timer of duration d.
func (c *timerClock) awaitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-c.timers:
			if got == d {
				return
			}
		case <-deadline:
			t.Fatalf("no timer of %v was created", d)
		}
	}
}

func (f *fixture) options(c clock.Clock) Options {
	return Options{NVMeCLI: f.cli, SysfsRoot: f.sys.sys, DevRoot: f.sys.dev, MountInfo: f.mountInfo, Clock: c}
}

func (f *fixture) nvme(c clock.Clock) *NVMe { return New(f.options(c)) }

// within runs fn and fails the test if it does not return in waitLimit: the
// calls under test must not wait on a mock clock nobody advances.
func within[T any](t *testing.T, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(waitLimit):
		t.Fatal("call did not return; is it waiting on the clock?")
		panic("unreachable")
	}
}

func (f *fixture) attach(n *NVMe, tg dataplane.Target) (string, error) {
	f.t.Helper()
	return within(f.t, func() (string, error) { return n.Attach(context.Background(), tg) })
}

func (f *fixture) device(n *NVMe, tg dataplane.Target) string {
	f.t.Helper()
	dev, err := n.Device(context.Background(), tg)
	if err != nil {
		f.t.Fatalf("Device(%s): %v", tg.NQN, err)
	}
	return dev
}

func (f *fixture) detach(n *NVMe, tg dataplane.Target) error {
	f.t.Helper()
	_, err := within(f.t, func() (struct{}, error) { return struct{}{}, n.Detach(context.Background(), tg) })
	return err
}

func (f *fixture) devPath(name string) string { return filepath.Join(f.sys.dev, name) }

func countCalls(calls [][]string, verb string) int {
	n := 0
	for _, c := range calls {
		if len(c) > 0 && c[0] == verb {
			n++
		}
	}
	return n
}

func TestAttachConnectArgv(t *testing.T) {
	base := []string{"connect", "-t", "tcp", "-a", rdsAddr, "-s", "4420", "-n", nqn1}
	for _, tc := range []struct {
		name     string
		target   func(*dataplane.Target)
		optsHost string
		want     []string
	}{
		{
			name: "all options from the target",
			target: func(t *dataplane.Target) {
				t.CtrlLossTmo, t.ReconnectDelay, t.KeepAliveTmo, t.FastIOFailTmo, t.HostNQN = "-1", "5", "15", "30", hostNQN
			},
			optsHost: optsHost,
			want: append(base[:len(base):len(base)], "--ctrl-loss-tmo=-1", "--reconnect-delay=5", "--keep-alive-tmo=15",
				"--fast_io_fail_tmo=30", "--hostnqn="+hostNQN),
		},
		{
			name:     "host NQN from the options",
			target:   func(t *dataplane.Target) { t.CtrlLossTmo = "600" },
			optsHost: optsHost,
			want:     append(base[:len(base):len(base)], "--ctrl-loss-tmo=600", "--hostnqn="+optsHost),
		},
		{
			name: "host identity of a restrict-hosts node",
			target: func(t *dataplane.Target) {
				t.HostNQN, t.HostID = "nqn.2026-12.io.rds-csi:node:node-a", "6bc0bd83-e7eb-5b80-b33c-11a7da608b3f"
			},
			optsHost: optsHost,
			want: append(base[:len(base):len(base)], "--hostnqn=nqn.2026-12.io.rds-csi:node:node-a",
				"--hostid=6bc0bd83-e7eb-5b80-b33c-11a7da608b3f"),
		},
		{
			name:   "nvme-cli defaults",
			target: func(*dataplane.Target) {},
			want:   base,
		},
		{
			name:   "IPv6 address, keep-alive off",
			target: func(t *dataplane.Target) { t.Address, t.KeepAliveTmo = "fd00::5", "0" },
			want:   []string{"connect", "-t", "tcp", "-a", "fd00::5", "-s", "4420", "-n", nqn1, "--keep-alive-tmo=0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.options(clock.FromLibrary(libclock.NewMock()))
			o.HostNQN = tc.optsHost
			n := New(o)
			tg := target(nqn1)
			tc.target(&tg)
			dev, err := f.attach(n, tg)
			if err != nil {
				t.Fatal(err)
			}
			if want := f.devPath("nvme0n1"); dev != want {
				t.Errorf("device = %q, want %q", dev, want)
			}
			calls := f.argv()
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], tc.want) {
				t.Errorf("nvme-cli calls = %q\nwant [%q]", calls, tc.want)
			}
		})
	}
}

func TestAttachIsIdempotent(t *testing.T) {
	f := newFixture(t)
	n := f.nvme(clock.FromLibrary(libclock.NewMock()))
	first, err := f.attach(n, target(nqn1))
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.attach(n, target(nqn1))
	if err != nil {
		t.Fatal(err)
	}
	if first != second || first != f.devPath("nvme0n1") {
		t.Errorf("devices = %q, %q; want both %q", first, second, f.devPath("nvme0n1"))
	}
	if got := countCalls(f.argv(), "connect"); got != 1 {
		t.Errorf("%d connects, want 1 (the second Attach must find the live controller)", got)
	}
	if got := f.device(n, target(nqn1)); got != first {
		t.Errorf("Device = %q, want %q", got, first)
	}
}

func TestAttachExistingController(t *testing.T) {
	for _, tc := range []struct {
		name        string
		existing    conn
		address     string
		exit        int
		output      string
		wantConnect bool
		wantDev     string
		wantErr     string
		// wantUnreachable: the error must (or must not) say the target
		// did not answer, which the node reports as UNAVAILABLE.
		wantUnreachable bool
	}{
		{
			name:     "EALREADY exit status",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, Layout: multipath},
			// sysfs shows the IP nvme-cli resolved the name to, so the
			// pre-check cannot match and nvme connect runs.
			address: "rds.example", exit: 114, output: "could not add new controller: failed to write to nvme-fabrics device",
			wantConnect: true, wantDev: "nvme2n1",
		},
		{
			name:     "EALREADY message",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, Layout: multipath},
			address:  "rds.example", exit: 1, output: "Failed to write to /dev/nvme-fabrics: Operation already in progress",
			wantConnect: true, wantDev: "nvme2n1",
		},
		{
			name:     "libnvme already connected",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, Layout: multipath},
			address:  "rds.example", exit: 1, output: "could not add new controller: already connected",
			wantConnect: true, wantDev: "nvme2n1",
		},
		{
			name:    "connection refused, by text",
			address: rdsAddr, exit: 1, output: "Failed to write to /dev/nvme-fabrics: Connection refused",
			wantConnect: true, wantErr: "Connection refused", wantUnreachable: true,
		},
		{
			name:    "no route to host, by exit status",
			address: rdsAddr, exit: 113, output: "could not add new controller: failed to write to nvme-fabrics device",
			wantConnect: true, wantErr: "failed to write", wantUnreachable: true,
		},
		{
			name:    "connect timed out, by exit status",
			address: rdsAddr, exit: 110, output: "could not add new controller: failed to write to nvme-fabrics device",
			wantConnect: true, wantErr: "failed to write", wantUnreachable: true,
		},
		{
			name:    "target answered and refused",
			address: rdsAddr, exit: 5, output: "Failed to write to /dev/nvme-fabrics: Input/output error",
			wantConnect: true, wantErr: "Input/output error",
		},
		{
			name:     "reconnecting controller counts as connected",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, State: "connecting", Layout: multipath},
			address:  rdsAddr, wantDev: "nvme2n1",
		},
		{
			name:     "same IPv6 address spelled differently",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: "fd00:0:0:0::5", Layout: multipath},
			address:  "fd00::5", wantDev: "nvme2n1",
		},
		{
			name:     "controller on another port",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, Port: 4421, Layout: multipath},
			address:  rdsAddr, wantConnect: true, wantDev: "nvme2n1",
		},
		{
			name:     "dying controller is not a connection and its device is not used",
			existing: conn{Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, State: "deleting", Layout: multipath},
			address:  rdsAddr, wantConnect: true, wantDev: "nvme4n1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.existing.Layout != "" {
				tc.existing.NQN = nqn1
				if tc.existing.Port == 0 {
					tc.existing.Port = rdsPort
				}
				f.add(tc.existing)
			}
			f.cfg.ConnectExit, f.cfg.ConnectOutput = tc.exit, tc.output
			f.cfg.Next = conn{Subsys: 4, Ctrl: 4, Head: 1, Layout: multipath}
			f.save()
			tg := target(nqn1)
			tg.Address = tc.address
			dev, err := f.attach(f.nvme(clock.FromLibrary(libclock.NewMock())), tg)
			if got := countCalls(f.argv(), "connect"); got != map[bool]int{true: 1}[tc.wantConnect] {
				t.Errorf("%d connects, want connect=%v", got, tc.wantConnect)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if got := errors.Is(err, dataplane.ErrTargetUnreachable); got != tc.wantUnreachable {
					t.Fatalf("err = %v: unreachable %v, want %v", err, got, tc.wantUnreachable)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := f.devPath(tc.wantDev); dev != want {
				t.Errorf("device = %q, want %q", dev, want)
			}
		})
	}
}

func TestDeviceByNQNAmongNeighbours(t *testing.T) {
	f := newFixture(t)
	// Neighbours first in every order sysfs might list them, sharing the
	// address, with NQNs that contain or extend ours.
	f.add(conn{NQN: nqn10, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.add(conn{NQN: nqnClone, Subsys: 1, Ctrl: 1, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.add(conn{NQN: nqn1, Subsys: 5, Ctrl: 2, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.add(conn{NQN: nqn2, Subsys: 3, Ctrl: 3, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	n := f.nvme(clock.FromLibrary(libclock.NewMock()))

	for nqn, want := range map[string]string{
		nqn1: f.devPath("nvme5n1"), nqn10: f.devPath("nvme0n1"), nqnClone: f.devPath("nvme1n1"), nqn2: f.devPath("nvme3n1"),
		"nqn.2000-02.com.mikrotik:pvc-3": "",
	} {
		if got := f.device(n, target(nqn)); got != want {
			t.Errorf("Device(%s) = %q, want %q", nqn, got, want)
		}
	}
	dev, err := f.attach(n, target(nqn1))
	if err != nil || dev != f.devPath("nvme5n1") {
		t.Errorf("Attach = %q, %v; want %q", dev, err, f.devPath("nvme5n1"))
	}
	if calls := f.argv(); len(calls) != 0 {
		t.Errorf("nvme-cli ran %q; the volume was already connected", calls)
	}
}

func TestDevicePicksNamespaceOne(t *testing.T) {
	f := newFixture(t)
	// nvme0n1 is namespace 2; namespace 1 is nvme0n2.
	f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, NSID: 2, ExtraNSID: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	// Only namespace 2: not the volume's device.
	f.add(conn{NQN: nqn2, Subsys: 1, Ctrl: 1, Head: 1, NSID: 2, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	n := f.nvme(clock.FromLibrary(libclock.NewMock()))
	if got, want := f.device(n, target(nqn1)), f.devPath("nvme0n2"); got != want {
		t.Errorf("Device = %q, want %q", got, want)
	}
	if got := f.device(n, target(nqn2)); got != "" {
		t.Errorf("Device = %q for a subsystem without namespace 1, want \"\"", got)
	}
}

func TestDeviceNaming(t *testing.T) {
	for _, tc := range []struct {
		layout, want string
	}{
		{multipath, "nvme2n1"}, // the head, never the hidden path nvme2c7n1
		{perCtrl, "nvme7n1"},   // multipath off: named after the controller
		{pathOnly, "nvme2n1"},  // found from the path nvme2c7n1 alone
	} {
		t.Run(tc.layout, func(t *testing.T) {
			f := newFixture(t)
			f.add(conn{NQN: nqn2, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: tc.layout})
			f.add(conn{NQN: nqn1, Subsys: 2, Ctrl: 7, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: tc.layout})
			f.cfg.RescanSectors = 4096
			f.save()
			n := f.nvme(clock.FromLibrary(libclock.NewMock()))
			want := f.devPath(tc.want)
			if got := f.device(n, target(nqn1)); got != want {
				t.Errorf("Device = %q, want %q", got, want)
			}
			if dev, err := f.attach(n, target(nqn1)); err != nil || dev != want {
				t.Errorf("Attach = %q, %v; want %q", dev, err, want)
			}
			size, err := within(t, func() (int64, error) { return n.Rescan(context.Background(), target(nqn1)) })
			if err != nil || size != 4096*512 {
				t.Errorf("Rescan = %d, %v; want %d", size, err, 4096*512)
			}
			if calls, want := f.argv(), [][]string{{"ns-rescan", f.devPath("nvme7")}}; !reflect.DeepEqual(calls, want) {
				t.Errorf("nvme-cli calls = %q, want %q", calls, want)
			}
		})
	}
}

func TestTwoPathsToOneSubsystem(t *testing.T) {
	for _, tc := range []struct {
		layout, want string
		rescans      []string
	}{
		// Multipath off: one device per controller; the one connected to
		// the target's address, and only its controller is rescanned.
		{perCtrl, "nvme8n1", []string{"nvme8"}},
		// Multipath: the shared head, rescanned through every live path.
		{multipath, "nvme2n1", []string{"nvme7", "nvme8"}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			f := newFixture(t)
			f.add(conn{NQN: nqn1, Subsys: 2, Ctrl: 7, Head: 1, Addr: "10.0.0.6", Port: rdsPort, Layout: tc.layout})
			f.add(conn{NQN: nqn1, Subsys: 2, Ctrl: 8, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: tc.layout})
			f.cfg.RescanSectors = 4096
			f.save()
			n := f.nvme(clock.FromLibrary(libclock.NewMock()))
			if got, want := f.device(n, target(nqn1)), f.devPath(tc.want); got != want {
				t.Errorf("Device = %q, want %q", got, want)
			}
			if _, err := within(t, func() (int64, error) { return n.Rescan(context.Background(), target(nqn1)) }); err != nil {
				t.Fatal(err)
			}
			var want [][]string
			for _, c := range tc.rescans {
				want = append(want, []string{"ns-rescan", f.devPath(c)})
			}
			if calls := f.argv(); !reflect.DeepEqual(calls, want) {
				t.Errorf("nvme-cli calls = %q, want %q", calls, want)
			}
		})
	}
}

func TestRenumberingAfterReconnect(t *testing.T) {
	for _, layout := range []string{multipath, perCtrl} {
		t.Run(layout, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.Next = conn{Subsys: 0, Ctrl: 0, Head: 1, Layout: layout}
			f.cfg.RescanSectors = 8192
			f.save()
			n := f.nvme(clock.FromLibrary(libclock.NewMock()))
			dev, err := f.attach(n, target(nqn1))
			if err != nil || dev != f.devPath("nvme0n1") {
				t.Fatalf("Attach = %q, %v; want %q", dev, err, f.devPath("nvme0n1"))
			}

			// RDS crashed; the kernel gave up on the controller, a reconnect
			// created nvme3, and a neighbour volume now has nvme0.
			if _, err := f.sys.remove(nqn1); err != nil {
				t.Fatal(err)
			}
			f.add(conn{NQN: nqn2, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: layout})
			f.add(conn{NQN: nqn1, Subsys: 3, Ctrl: 3, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: layout})

			want := f.devPath("nvme3n1")
			if got := f.device(n, target(nqn1)); got != want {
				t.Errorf("Device = %q, want %q", got, want)
			}
			if dev, err := f.attach(n, target(nqn1)); err != nil || dev != want {
				t.Errorf("Attach = %q, %v; want %q", dev, err, want)
			}
			if size, err := within(t, func() (int64, error) { return n.Rescan(context.Background(), target(nqn1)) }); err != nil || size != 8192*512 {
				t.Errorf("Rescan = %d, %v; want %d", size, err, 8192*512)
			}
			calls := f.argv()
			if got := countCalls(calls, "connect"); got != 1 {
				t.Errorf("%d connects, want 1", got)
			}
			if last := calls[len(calls)-1]; !reflect.DeepEqual(last, []string{"ns-rescan", f.devPath("nvme3")}) {
				t.Errorf("last call %q, want ns-rescan of nvme3", last)
			}
			if got := f.device(n, target(nqn2)); got != f.devPath("nvme0n1") {
				t.Errorf("neighbour's Device = %q, want %q", got, f.devPath("nvme0n1"))
			}
		})
	}
}

func TestDetachRefusesWhileInUse(t *testing.T) {
	const publish = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi/abc/globalmount"
	// The volume is nvme0n1 (259:1); a neighbour is nvme1n1 (259:101).
	for _, tc := range []struct {
		name      string
		mounts    string
		holder    string // under /sys/block/nvme0n1
		partition bool   // nvme0n1p1 (259:7) exists
	}{
		{name: "held by device-mapper", holder: "holders/dm-0"},
		{name: "mounted (major:minor)", mounts: "100 22 259:1 / " + publish + " rw - ext4 /dev/disk/by-id/nvme-x rw\n"},
		{name: "mounted (path, anonymous device)", mounts: "100 22 0:45 / " + publish + " rw - btrfs /dev/nvme0n1 rw\n"},
		{name: "raw block volume bind mount", mounts: "100 22 0:5 /nvme0n1 /var/lib/kubelet/pods/u/volumeDevices/x rw - devtmpfs udev rw\n"},
		{name: "partition mounted", partition: true, mounts: "100 22 259:7 / " + publish + " rw shared:9 - xfs /dev/nvme0n1p1 rw\n"},
		{name: "partition held", partition: true, holder: "nvme0n1p1/holders/md0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
			f.add(conn{NQN: nqn2, Subsys: 1, Ctrl: 1, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
			head := filepath.Join(f.sys.sys, "block/nvme0n1")
			if tc.partition {
				if err := writeFiles(filepath.Join(head, "nvme0n1p1"), map[string]string{"dev": "259:7", "partition": "1"}); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(head, "nvme0n1p1/holders"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.holder != "" {
				if err := os.MkdirAll(filepath.Join(head, tc.holder), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Mounts of neighbours, including one whose name extends ours.
			neighbours := mountRoot +
				"90 22 259:101 / /mnt/a rw - ext4 /dev/nvme1n1 rw\n" +
				"91 22 259:110 / /mnt/b rw - ext4 /dev/nvme0n10 rw\n" +
				"92 22 0:5 /nvme1n1 /mnt/c rw - devtmpfs udev rw\n"
			f.writeMountInfo(neighbours + tc.mounts)
			n := f.nvme(clock.FromLibrary(libclock.NewMock()))

			err := f.detach(n, target(nqn1))
			if !errors.Is(err, dataplane.ErrInUse) {
				t.Fatalf("Detach = %v, want ErrInUse", err)
			}
			if calls := f.argv(); len(calls) != 0 {
				t.Fatalf("nvme-cli ran %q while the device was in use", calls)
			}
			if f.device(n, target(nqn1)) == "" {
				t.Fatal("device vanished")
			}

			// Released: now the same Detach goes through.
			f.writeMountInfo(neighbours)
			if tc.holder != "" {
				if err := os.RemoveAll(filepath.Join(head, tc.holder)); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.detach(n, target(nqn1)); err != nil {
				t.Fatalf("Detach after release: %v", err)
			}
			if calls, want := f.argv(), [][]string{{"disconnect", "-n", nqn1}}; !reflect.DeepEqual(calls, want) {
				t.Errorf("nvme-cli calls = %q, want %q", calls, want)
			}
		})
	}
}

func TestDetachFailsClosedWithoutMountInfo(t *testing.T) {
	f := newFixture(t)
	f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	if err := os.Remove(f.mountInfo); err != nil {
		t.Fatal(err)
	}
	if err := f.detach(f.nvme(clock.FromLibrary(libclock.NewMock())), target(nqn1)); err == nil {
		t.Fatal("Detach succeeded without knowing the mounts")
	}
	if calls := f.argv(); len(calls) != 0 {
		t.Errorf("nvme-cli ran %q", calls)
	}
}

func TestDetachDisconnectsOnlyThisNQN(t *testing.T) {
	f := newFixture(t)
	f.add(conn{NQN: nqn10, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.add(conn{NQN: nqn1, Subsys: 1, Ctrl: 1, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.add(conn{NQN: nqnClone, Subsys: 2, Ctrl: 2, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: perCtrl})
	n := f.nvme(clock.FromLibrary(libclock.NewMock()))
	if err := f.detach(n, target(nqn1)); err != nil {
		t.Fatal(err)
	}
	if calls, want := f.argv(), [][]string{{"disconnect", "-n", nqn1}}; !reflect.DeepEqual(calls, want) {
		t.Errorf("nvme-cli calls = %q, want %q", calls, want)
	}
	for nqn, want := range map[string]string{nqn1: "", nqn10: f.devPath("nvme0n1"), nqnClone: f.devPath("nvme2n1")} {
		if got := f.device(n, target(nqn)); got != want {
			t.Errorf("after Detach, Device(%s) = %q, want %q", nqn, got, want)
		}
	}
}

func TestDetachNotConnectedIsNoop(t *testing.T) {
	f := newFixture(t)
	n := f.nvme(clock.FromLibrary(libclock.NewMock()))
	// No nvme-subsystem class at all (nvme-core not loaded).
	if err := f.detach(n, target(nqn1)); err != nil {
		t.Fatalf("Detach on a host without NVMe: %v", err)
	}
	f.add(conn{NQN: nqn10, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	if err := f.detach(n, target(nqn1)); err != nil {
		t.Fatalf("Detach of a volume that is not connected: %v", err)
	}
	if calls := f.argv(); len(calls) != 0 {
		t.Fatalf("nvme-cli ran %q", calls)
	}
	// Twice: the second finds nothing left to do.
	f.add(conn{NQN: nqn1, Subsys: 1, Ctrl: 1, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	for range 2 {
		if err := f.detach(n, target(nqn1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := countCalls(f.argv(), "disconnect"); got != 1 {
		t.Errorf("%d disconnects, want 1", got)
	}
}

func TestDetachChecksTheControllerIsGone(t *testing.T) {
	f := newFixture(t)
	f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	f.cfg.DisconnectNoop = true
	f.save()
	err := f.detach(f.nvme(clock.FromLibrary(libclock.NewMock())), target(nqn1))
	if err == nil || !strings.Contains(err.Error(), "still has controller nvme0") {
		t.Fatalf("Detach = %v, want a still-connected error", err)
	}
}

func TestRescan(t *testing.T) {
	t.Run("size changed by the rescan", func(t *testing.T) {
		f := newFixture(t)
		f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Sectors: 2048, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
		f.cfg.RescanSectors = 20971520 // 10 GiB
		f.save()
		n := f.nvme(clock.FromLibrary(libclock.NewMock()))
		size, err := within(t, func() (int64, error) { return n.Rescan(context.Background(), target(nqn1)) })
		if err != nil || size != 10<<30 {
			t.Fatalf("Rescan = %d, %v; want %d", size, err, int64(10<<30))
		}
		if calls, want := f.argv(), [][]string{{"ns-rescan", f.devPath("nvme0")}}; !reflect.DeepEqual(calls, want) {
			t.Errorf("nvme-cli calls = %q, want %q", calls, want)
		}
	})

	t.Run("kernel scan finishes later", func(t *testing.T) {
		f := newFixture(t)
		f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Sectors: 2048, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
		clk := newTimerClock()
		n := f.nvme(clk)
		done := make(chan int64, 1)
		go func() {
			size, err := n.Rescan(context.Background(), target(nqn1))
			if err != nil {
				t.Error(err)
			}
			done <- size
		}()
		clk.awaitTimer(t, DefaultRescanWait)
		clk.Add(time.Second)
		select {
		case size := <-done:
			t.Fatalf("Rescan returned %d before the size changed or the wait ended", size)
		case <-time.After(50 * time.Millisecond):
		}
		if err := os.WriteFile(filepath.Join(f.sys.sys, "block/nvme0n1/size"), []byte("4096\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		clk.Add(DefaultPollInterval)
		select {
		case size := <-done:
			if size != 4096*512 {
				t.Errorf("Rescan = %d, want %d", size, 4096*512)
			}
		case <-time.After(waitLimit):
			t.Fatal("Rescan did not see the new size")
		}
	})

	t.Run("size unchanged", func(t *testing.T) {
		f := newFixture(t)
		f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Sectors: 2048, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
		clk := newTimerClock()
		n := f.nvme(clk)
		done := make(chan int64, 1)
		go func() {
			size, err := n.Rescan(context.Background(), target(nqn1))
			if err != nil {
				t.Error(err)
			}
			done <- size
		}()
		clk.awaitTimer(t, DefaultRescanWait)
		clk.Add(DefaultRescanWait - time.Millisecond)
		select {
		case size := <-done:
			t.Fatalf("Rescan returned %d before RescanWait", size)
		case <-time.After(50 * time.Millisecond):
		}
		clk.Add(time.Millisecond)
		select {
		case size := <-done:
			if size != 2048*512 {
				t.Errorf("Rescan = %d, want %d", size, 2048*512)
			}
		case <-time.After(waitLimit):
			t.Fatal("Rescan did not return after RescanWait")
		}
	})

	t.Run("not attached", func(t *testing.T) {
		f := newFixture(t)
		f.add(conn{NQN: nqn10, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
		_, err := within(t, func() (int64, error) {
			return f.nvme(clock.FromLibrary(libclock.NewMock())).Rescan(context.Background(), target(nqn1))
		})
		if !errors.Is(err, dataplane.ErrNotAttached) {
			t.Errorf("Rescan = %v, want ErrNotAttached", err)
		}
		if calls := f.argv(); len(calls) != 0 {
			t.Errorf("nvme-cli ran %q", calls)
		}
	})

	t.Run("no live path", func(t *testing.T) {
		f := newFixture(t)
		f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, State: "connecting", Addr: rdsAddr, Port: rdsPort, Layout: multipath})
		_, err := within(t, func() (int64, error) {
			return f.nvme(clock.FromLibrary(libclock.NewMock())).Rescan(context.Background(), target(nqn1))
		})
		if err == nil || !strings.Contains(err.Error(), "no live controller") {
			t.Errorf("Rescan = %v, want a no-live-controller error", err)
		}
		if calls := f.argv(); len(calls) != 0 {
			t.Errorf("nvme-cli ran %q", calls)
		}
	})
}

func TestAttachTimesOutOnTheClock(t *testing.T) {
	f := newFixture(t)
	f.cfg.NoDevice = true // connect "succeeds", the namespace never shows up
	f.save()
	clk := newTimerClock()
	n := f.nvme(clk)
	type result struct {
		dev string
		err error
	}
	done := make(chan result, 1)
	go func() {
		dev, err := n.Attach(context.Background(), target(nqn1))
		done <- result{dev, err}
	}()
	clk.awaitTimer(t, DefaultDeviceWaitTimeout)
	clk.Add(DefaultDeviceWaitTimeout - time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Attach returned %q, %v before the timeout", r.dev, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	clk.Add(time.Millisecond)
	select {
	case r := <-done:
		if !errors.Is(r.err, ErrTimeout) || r.dev != "" {
			t.Fatalf("Attach = %q, %v; want ErrTimeout", r.dev, r.err)
		}
		if !strings.Contains(r.err.Error(), nqn1) {
			t.Errorf("error %q does not name the NQN", r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Attach did not time out")
	}
}

func TestAttachWaitsForTheDevice(t *testing.T) {
	f := newFixture(t)
	f.cfg.NoDevice = true
	f.save()
	clk := newTimerClock()
	n := f.nvme(clk)
	done := make(chan string, 1)
	go func() {
		dev, err := n.Attach(context.Background(), target(nqn1))
		if err != nil {
			t.Error(err)
		}
		done <- dev
	}()
	clk.awaitTimer(t, DefaultDeviceWaitTimeout)
	clk.Add(5 * time.Second)
	// The kernel is slow today: the namespace appears 5s after connect,
	// and its /dev node (udev) 5s later still.
	f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: multipath})
	devNode := f.devPath("nvme0n1")
	if err := os.Remove(devNode); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Second)
	select {
	case dev := <-done:
		t.Fatalf("Attach returned %q before its /dev node existed", dev)
	case <-time.After(50 * time.Millisecond):
	}
	if err := os.WriteFile(devNode, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Add(DefaultPollInterval)
	select {
	case dev := <-done:
		if dev != f.devPath("nvme0n1") {
			t.Errorf("Attach = %q, want %q", dev, f.devPath("nvme0n1"))
		}
	case <-time.After(waitLimit):
		t.Fatal("Attach did not notice the device")
	}
}

func TestContextBoundsEveryWait(t *testing.T) {
	t.Run("hung nvme connect", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.Hang = true
		f.save()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		n := f.nvme(clock.FromLibrary(libclock.NewMock()))
		_, err := within(t, func() (string, error) { return n.Attach(ctx, target(nqn1)) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Attach = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("device wait", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.NoDevice = true
		f.save()
		ctx, cancel := context.WithCancel(context.Background())
		clk := newTimerClock()
		n := f.nvme(clk)
		done := make(chan error, 1)
		go func() {
			_, err := n.Attach(ctx, target(nqn1))
			done <- err
		}()
		clk.awaitTimer(t, DefaultDeviceWaitTimeout)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Attach = %v, want Canceled", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Attach ignored the cancelled context")
		}
	})
}

func TestInjectionRejectedBeforeExec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*dataplane.Target)
		opts   string // Options.HostNQN
	}{
		{name: "NQN with a space and an option", mutate: func(t *dataplane.Target) { t.NQN = nqn1 + " --hostnqn=x" }},
		{name: "NQN is an option", mutate: func(t *dataplane.Target) { t.NQN = "--duplicate-connect" }},
		{name: "NQN with a shell metacharacter", mutate: func(t *dataplane.Target) { t.NQN = nqn1 + ";reboot" }},
		{name: "NQN with a newline", mutate: func(t *dataplane.Target) { t.NQN = nqn1 + "\nx" }},
		{name: "empty NQN", mutate: func(t *dataplane.Target) { t.NQN = "" }},
		{name: "address is an option", mutate: func(t *dataplane.Target) { t.Address = "-d" }},
		{name: "address with an option", mutate: func(t *dataplane.Target) { t.Address = "10.0.0.5 --duplicate-connect" }},
		{name: "address with a port", mutate: func(t *dataplane.Target) { t.Address = "10.0.0.5:4420" }},
		{name: "empty address", mutate: func(t *dataplane.Target) { t.Address = "" }},
		{name: "bad IPv6 zone", mutate: func(t *dataplane.Target) { t.Address = "fe80::1%eth0 -x" }},
		{name: "port 0", mutate: func(t *dataplane.Target) { t.Port = 0 }},
		{name: "port too big", mutate: func(t *dataplane.Target) { t.Port = 65536 }},
		{name: "timeout with an option", mutate: func(t *dataplane.Target) { t.CtrlLossTmo = "5 --duplicate-connect" }},
		{name: "timeout not decimal", mutate: func(t *dataplane.Target) { t.KeepAliveTmo = "1e3" }},
		{name: "timeout with a sign", mutate: func(t *dataplane.Target) { t.KeepAliveTmo = "+5" }},
		{name: "negative keep-alive", mutate: func(t *dataplane.Target) { t.KeepAliveTmo = "-1" }},
		{name: "ctrl-loss below -1", mutate: func(t *dataplane.Target) { t.CtrlLossTmo = "-2" }},
		{name: "reconnect-delay 0", mutate: func(t *dataplane.Target) { t.ReconnectDelay = "0" }},
		{name: "huge timeout", mutate: func(t *dataplane.Target) { t.ReconnectDelay = "99999999999999999999" }},
		{name: "host NQN with an option", mutate: func(t *dataplane.Target) { t.HostNQN = hostNQN + " -n x" }},
		{name: "host ID with an option", mutate: func(t *dataplane.Target) { t.HostID = "6bc0bd83-e7eb-5b80-b33c-11a7da608b3f --hostnqn=x" }},
		{name: "host ID upper case", mutate: func(t *dataplane.Target) { t.HostID = "6BC0BD83-E7EB-5B80-B33C-11A7DA608B3F" }},
		{name: "bad default host NQN", mutate: func(*dataplane.Target) {}, opts: "nqn.2014-08.org.nvmexpress:uuid:x --hostid=y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.options(clock.FromLibrary(libclock.NewMock()))
			o.HostNQN = tc.opts
			n := New(o)
			tg := target(nqn1)
			tc.mutate(&tg)
			if _, err := f.attach(n, tg); !errors.Is(err, ErrInvalidTarget) {
				t.Errorf("Attach = %v, want ErrInvalidTarget", err)
			}
			if tg.NQN != nqn1 {
				if _, err := n.Device(context.Background(), tg); !errors.Is(err, ErrInvalidTarget) {
					t.Errorf("Device = %v, want ErrInvalidTarget", err)
				}
				if err := f.detach(n, tg); !errors.Is(err, ErrInvalidTarget) {
					t.Errorf("Detach = %v, want ErrInvalidTarget", err)
				}
				if _, err := n.Rescan(context.Background(), tg); !errors.Is(err, ErrInvalidTarget) {
					t.Errorf("Rescan = %v, want ErrInvalidTarget", err)
				}
			}
			if calls := f.argv(); len(calls) != 0 {
				t.Errorf("nvme-cli ran %q", calls)
			}
		})
	}
}

func TestName(t *testing.T) {
	if got := New(Options{}).Name(); got != "nvme" {
		t.Errorf("Name = %q", got)
	}
}

// TestControllerState: health sees the state of the controller behind the
// volume's device, through a multipath head or on a direct path, and "" for
// a volume that is not connected.
func TestControllerState(t *testing.T) {
	for _, tc := range []struct {
		layout, state, want string
	}{
		{multipath, "live", "live"},
		{multipath, "connecting", "connecting"},
		{multipath, "resetting", "resetting"},
		{perCtrl, "live", "live"},
		{perCtrl, "connecting", "connecting"},
	} {
		f := newFixture(t)
		f.add(conn{NQN: nqn1, Subsys: 0, Ctrl: 0, Head: 1, Addr: rdsAddr, Port: rdsPort, Layout: tc.layout, State: tc.state})
		n := f.nvme(clock.FromLibrary(libclock.NewMock()))
		got, err := n.ControllerState(context.Background(), target(nqn1))
		if err != nil || got != tc.want {
			t.Errorf("%s, %s: ControllerState = %q, %v; want %q", tc.layout, tc.state, got, err, tc.want)
		}
		if got, err := n.ControllerState(context.Background(), target(nqn2)); err != nil || got != "" {
			t.Errorf("not connected: ControllerState = %q, %v; want \"\"", got, err)
		}
	}
}
