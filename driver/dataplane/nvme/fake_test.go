package nvme

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fake nvme-cli is this test binary: a shell script in the test's temp
// directory sets fakeEnv to that directory and execs the binary, and TestMain
// runs fakeMain instead of the tests. It logs its argv to argv.log, does what
// fake.json says, and creates or removes the fake sysfs entries a real connect
// or disconnect would.
const fakeEnv = "RDS_CSI_FAKE_NVME_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeEnv); dir != "" {
		os.Exit(fakeMain(dir, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeConfig is the fake nvme-cli's script, written by the test.
type fakeConfig struct {
	Sys, Dev string
	// Connect: exit status and output; with status 0 and NoDevice false,
	// the connection Next is created (NQN, address and port from argv).
	ConnectExit   int
	ConnectOutput string
	NoDevice      bool
	Next          conn
	// Hang: connect never returns.
	Hang bool
	// DisconnectNoop: disconnect reports success and removes nothing.
	DisconnectNoop bool
	// RescanSectors: the size ns-rescan gives namespaces; 0 leaves it.
	RescanSectors int64
}

// fixture is one test's fake host: sysfs, /dev, mountinfo and nvme-cli.
type fixture struct {
	t         *testing.T
	dir       string
	sys       fakeSys
	cfg       fakeConfig
	cli       string
	mountInfo string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, sys: fakeSys{sys: filepath.Join(dir, "sys"), dev: filepath.Join(dir, "dev")}}
	f.cfg = fakeConfig{Sys: f.sys.sys, Dev: f.sys.dev, Next: conn{Subsys: 0, Ctrl: 0, Head: 1, Layout: multipath}}
	for _, d := range []string{f.sys.sys, f.sys.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.mountInfo = filepath.Join(dir, "mountinfo")
	f.writeMountInfo(mountRoot)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f.cli = filepath.Join(dir, "nvme")
	// Under -race the runtime sleeps a second at exit unless told not to.
	script := fmt.Sprintf("#!/bin/sh\nGORACE=\"${GORACE:+$GORACE }atexit_sleep_ms=0\" %s='%s' exec '%s' \"$@\"\n", fakeEnv, dir, bin)
	if err := os.WriteFile(f.cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.save()
	return f
}

const mountRoot = "22 1 259:99 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"

func (f *fixture) writeMountInfo(s string) {
	f.t.Helper()
	if err := os.WriteFile(f.mountInfo, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// save writes f.cfg for the fake nvme-cli; call after changing it.
func (f *fixture) save() {
	f.t.Helper()
	b, err := json.Marshal(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "fake.json"), b, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// argv returns every nvme-cli invocation so far, oldest first.
func (f *fixture) argv() [][]string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "argv.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var calls [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var args []string
		if err := json.Unmarshal([]byte(line), &args); err != nil {
			f.t.Fatalf("argv.log line %q: %v", line, err)
		}
		calls = append(calls, args)
	}
	return calls
}

// add creates a connection in the fake sysfs as a real connect would.
func (f *fixture) add(c conn) {
	f.t.Helper()
	if err := f.sys.add(c); err != nil {
		f.t.Fatal(err)
	}
}

func fakeMain(dir string, args []string) int {
	b, err := os.ReadFile(filepath.Join(dir, "fake.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake nvme:", err)
		return 2
	}
	var cfg fakeConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fake nvme:", err)
		return 2
	}
	line, _ := json.Marshal(args)
	log, err := os.OpenFile(filepath.Join(dir, "argv.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake nvme:", err)
		return 2
	}
	fmt.Fprintf(log, "%s\n", line)
	log.Close()

	fs := fakeSys{sys: cfg.Sys, dev: cfg.Dev}
	if len(args) == 0 {
		return 1
	}
	switch args[0] {
	case "connect":
		if cfg.Hang {
			time.Sleep(time.Hour)
		}
		if cfg.ConnectExit != 0 {
			fmt.Fprintln(os.Stderr, cfg.ConnectOutput)
			return cfg.ConnectExit
		}
		if cfg.NoDevice {
			return 0
		}
		c := cfg.Next
		for i := 1; i+1 < len(args); i += 2 {
			switch args[i] {
			case "-a":
				c.Addr = args[i+1]
			case "-s":
				c.Port, _ = strconv.Atoi(args[i+1])
			case "-n":
				c.NQN = args[i+1]
			}
		}
		if err := fs.add(c); err != nil {
			fmt.Fprintln(os.Stderr, "fake nvme:", err)
			return 2
		}
		fmt.Printf("connecting to device: nvme%d\n", c.Ctrl)
		return 0
	case "disconnect":
		if len(args) != 3 || args[1] != "-n" {
			fmt.Fprintln(os.Stderr, "fake nvme: bad disconnect")
			return 22
		}
		if cfg.DisconnectNoop {
			fmt.Printf("NQN:%s disconnected 0 controller(s)\n", args[2])
			return 0
		}
		n, err := fs.remove(args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake nvme:", err)
			return 2
		}
		fmt.Printf("NQN:%s disconnected %d controller(s)\n", args[2], n)
		return 0
	case "ns-rescan":
		if len(args) != 2 {
			return 22
		}
		if cfg.RescanSectors > 0 {
			if err := fs.resize(filepath.Base(args[1]), cfg.RescanSectors); err != nil {
				fmt.Fprintln(os.Stderr, "fake nvme:", err)
				return 2
			}
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "fake nvme: unknown command", args[0])
	return 1
}

// Layouts of a connection's namespace, as the kernel creates them.
const (
	multipath = "multipath" // head nvmeSnH in the subsystem, hidden nvmeScCnH under the controller
	perCtrl   = "per-ctrl"  // multipath off: nvmeCnH under the controller
	pathOnly  = "path-only" // head not listed in the subsystem, only reachable from its path
)

// conn describes one controller of a subsystem and its namespace.
type conn struct {
	NQN          string
	Addr         string
	Port         int
	Subsys, Ctrl int
	Head         int    // instance in the device name (nvmeSnH)
	NSID         int    // default 1
	Sectors      int64  // default 2048 (1 MiB)
	State        string // default live
	Layout       string
	NoNamespace  bool
	ExtraNSID    int // if set, a second namespace, instance Head+1, with this nsid
}

// fakeSys builds a sysfs tree shaped like the kernel's, with the same
// symlinks: class and block entries point into devices/.
type fakeSys struct{ sys, dev string }

func (f fakeSys) subsysDir(s int) string {
	return filepath.Join(f.sys, "devices/virtual/nvme-subsystem", fmt.Sprintf("nvme-subsys%d", s))
}

func (f fakeSys) ctrlDir(c int) string {
	return filepath.Join(f.sys, "devices/virtual/nvme-fabrics/ctl", fmt.Sprintf("nvme%d", c))
}

func writeFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func symlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(link); err == nil {
		return nil
	}
	return os.Symlink(target, link)
}

// blockDev creates a block device's sysfs directory, its /sys/block link
// and, unless hidden, its /dev node.
func (f fakeSys) blockDev(dir, name string, nsid int, sectors int64, majMin string, hidden bool) error {
	if err := writeFiles(dir, map[string]string{
		"nsid": strconv.Itoa(nsid), "size": strconv.FormatInt(sectors, 10), "dev": majMin,
	}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "holders"), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Join(f.sys, "block"), dir)
	if err != nil {
		return err
	}
	if err := symlink(rel, filepath.Join(f.sys, "block", name)); err != nil {
		return err
	}
	if hidden {
		return nil
	}
	return os.WriteFile(filepath.Join(f.dev, name), nil, 0o644)
}

func (f fakeSys) add(c conn) error {
	if c.NSID == 0 {
		c.NSID = 1
	}
	if c.Sectors == 0 {
		c.Sectors = 2048
	}
	if c.State == "" {
		c.State = "live"
	}
	sub := f.subsysDir(c.Subsys)
	subName := filepath.Base(sub)
	if err := writeFiles(sub, map[string]string{"subsysnqn": c.NQN}); err != nil {
		return err
	}
	if err := symlink("../../devices/virtual/nvme-subsystem/"+subName, filepath.Join(f.sys, "class/nvme-subsystem", subName)); err != nil {
		return err
	}
	ctrl := f.ctrlDir(c.Ctrl)
	ctrlName := filepath.Base(ctrl)
	if err := writeFiles(ctrl, map[string]string{
		"state": c.State, "transport": "tcp", "subsysnqn": c.NQN,
		"address": fmt.Sprintf("traddr=%s,trsvcid=%d,src_addr=192.0.2.99", c.Addr, c.Port),
	}); err != nil {
		return err
	}
	if err := symlink("../../devices/virtual/nvme-fabrics/ctl/"+ctrlName, filepath.Join(f.sys, "class/nvme", ctrlName)); err != nil {
		return err
	}
	if err := symlink("../../nvme-fabrics/ctl/"+ctrlName, filepath.Join(sub, ctrlName)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.dev, ctrlName), nil, 0o644); err != nil {
		return err
	}
	if c.NoNamespace {
		return nil
	}
	heads := []struct{ inst, nsid int }{{c.Head, c.NSID}}
	if c.ExtraNSID != 0 {
		heads = append(heads, struct{ inst, nsid int }{c.Head + 1, c.ExtraNSID})
	}
	for _, h := range heads {
		majMin := fmt.Sprintf("259:%d", c.Ctrl*100+h.inst)
		switch c.Layout {
		case perCtrl:
			name := fmt.Sprintf("nvme%dn%d", c.Ctrl, h.inst)
			if err := f.blockDev(filepath.Join(ctrl, name), name, h.nsid, c.Sectors, majMin, false); err != nil {
				return err
			}
		case multipath, pathOnly:
			head := fmt.Sprintf("nvme%dn%d", c.Subsys, h.inst)
			headDir := filepath.Join(sub, head)
			if c.Layout == pathOnly {
				headDir = filepath.Join(f.sys, "devices/virtual/block", head)
			}
			if err := f.blockDev(headDir, head, h.nsid, c.Sectors, majMin, false); err != nil {
				return err
			}
			path := fmt.Sprintf("nvme%dc%dn%d", c.Subsys, c.Ctrl, h.inst)
			if err := f.blockDev(filepath.Join(ctrl, path), path, h.nsid, c.Sectors, fmt.Sprintf("259:%d", 50000+c.Ctrl*100+h.inst), true); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown layout %q", c.Layout)
		}
	}
	return nil
}

// remove deletes every subsystem with nqn, its controllers and its block
// devices, as nvme disconnect does, and returns the number of controllers.
func (f fakeSys) remove(nqn string) (int, error) {
	class := filepath.Join(f.sys, "class/nvme-subsystem")
	entries, err := os.ReadDir(class)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		sub := filepath.Join(class, e.Name())
		b, err := os.ReadFile(filepath.Join(sub, "subsysnqn"))
		if err != nil || strings.TrimSpace(string(b)) != nqn {
			continue
		}
		subDir, err := filepath.EvalSymlinks(sub)
		if err != nil {
			return n, err
		}
		devs, err := os.ReadDir(subDir)
		if err != nil {
			return n, err
		}
		for _, d := range devs {
			if !strings.HasPrefix(d.Name(), "nvme") {
				continue
			}
			if ctrlNameRE.MatchString(d.Name()) {
				n++
				ctrl, err := filepath.EvalSymlinks(filepath.Join(subDir, d.Name()))
				if err != nil {
					return n, err
				}
				if err := f.removeBlockDevs(ctrl); err != nil {
					return n, err
				}
				for _, p := range []string{ctrl, filepath.Join(f.sys, "class/nvme", d.Name()), filepath.Join(f.dev, d.Name())} {
					if err := os.RemoveAll(p); err != nil {
						return n, err
					}
				}
			}
		}
		if err := f.removeBlockDevs(subDir); err != nil {
			return n, err
		}
		if err := os.RemoveAll(subDir); err != nil {
			return n, err
		}
		if err := os.Remove(sub); err != nil {
			return n, err
		}
	}
	return n, nil
}

// removeBlockDevs removes the /sys/block links and /dev nodes of the
// namespaces directly under dir, including heads only reachable by name.
func (f fakeSys) removeBlockDevs(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		names := []string{e.Name()}
		if m := pathNameRE.FindStringSubmatch(e.Name()); m != nil {
			names = append(names, "nvme"+m[1]+"n"+m[2])
		} else if !nsNameRE.MatchString(e.Name()) {
			continue
		}
		for _, name := range names {
			link := filepath.Join(f.sys, "block", name)
			if target, err := filepath.EvalSymlinks(link); err == nil && strings.HasPrefix(target, filepath.Join(f.sys, "devices/virtual/block")) {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			if err := os.RemoveAll(link); err != nil {
				return err
			}
			if err := os.RemoveAll(filepath.Join(f.dev, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resize sets the size of every namespace of ctrl's subsystem.
func (f fakeSys) resize(ctrl string, sectors int64) error {
	subs, err := filepath.Glob(filepath.Join(f.sys, "class/nvme-subsystem/*", ctrl))
	if err != nil || len(subs) != 1 {
		return fmt.Errorf("controller %s: %d subsystems (%v)", ctrl, len(subs), err)
	}
	blocks, err := os.ReadDir(filepath.Join(f.sys, "block"))
	if err != nil {
		return err
	}
	sub := filepath.Base(filepath.Dir(subs[0]))
	inst := strings.TrimPrefix(sub, "nvme-subsys")
	num := strings.TrimPrefix(ctrl, "nvme")
	for _, b := range blocks {
		name := b.Name()
		if strings.HasPrefix(name, "nvme"+inst+"n") || strings.HasPrefix(name, "nvme"+inst+"c") || strings.HasPrefix(name, "nvme"+num+"n") {
			if err := os.WriteFile(filepath.Join(f.sys, "block", name, "size"), []byte(strconv.FormatInt(sectors, 10)+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
