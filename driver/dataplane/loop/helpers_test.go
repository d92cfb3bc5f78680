package loop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// testRoot holds every test's backing directory, so that TestMain can check
// that no loop device of this package outlives the run.
var testRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rds-csi-loop-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loop tests:", err)
		os.Exit(2)
	}
	if testRoot, err = filepath.EvalSymlinks(dir); err != nil {
		fmt.Fprintln(os.Stderr, "loop tests:", err)
		os.Exit(2)
	}
	code := m.Run()
	if leaked := forceDetachUnder(testRoot); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: loop devices left attached to files under %s (now detached): %v\n", testRoot, leaked)
		code = 1
	}
	os.RemoveAll(testRoot)
	os.Exit(code)
}

// requireLoop fails (CI) or skips (elsewhere) when real loop devices cannot
// be used.
func requireLoop(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not running as root"
	} else if _, err := os.Stat("/dev/loop-control"); err != nil {
		why = fmt.Sprintf("no loop devices (%v)", err)
	} else if _, err := os.Stat("/sys/block"); err != nil {
		why = fmt.Sprintf("no sysfs (%v)", err)
	}
	if why == "" {
		return
	}
	msg := "these tests attach real loop devices and need root and /dev/loop-control: " + why
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this is a failure: the CI machine must provide loop devices")
	}
	t.Skip(msg + "; skipped outside CI (with CI set this fails)")
}

// boundUnder lists real loop devices (name → backing file) whose backing file
// is under dir.
func boundUnder(dir string) map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		if _, ok := loopNum(e.Name()); !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop", "backing_file"))
		if err != nil {
			continue
		}
		bf := strings.TrimSuffix(string(b), "\n")
		if strings.HasPrefix(bf, dir+"/") {
			out[e.Name()] = bf
		}
	}
	return out
}

// forceDetachUnder detaches whatever is still bound to files under dir and
// reports it.
func forceDetachUnder(dir string) []string {
	var leaked []string
	for name, bf := range boundUnder(dir) {
		leaked = append(leaked, name+"="+bf)
		if fd, err := unix.Open("/dev/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
			unix.Close(fd)
		}
	}
	return leaked
}

type env struct {
	dir string // the emulator state directory (BackingDir), symlinks resolved
	l   *Loop
}

// newEnv is a fresh backing directory with a Loop over it, for tests that
// attach devices. Its clean-up (registered first, so it runs last) fails the
// test if any device is still bound to a file under the directory.
func newEnv(t *testing.T) *env {
	t.Helper()
	requireLoop(t)
	return newPathEnv(t)
}

// newPathEnv is newEnv without the loop device requirement, for tests that
// must be rejected before touching a device.
func newPathEnv(t *testing.T) *env {
	t.Helper()
	if testRoot == "" {
		t.Fatal("TestMain did not run")
	}
	dir, err := os.MkdirTemp(testRoot, regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if leaked := forceDetachUnder(dir); len(leaked) > 0 {
			t.Errorf("loop devices left attached by this test (now detached): %v", leaked)
		}
		os.RemoveAll(dir)
	})
	return &env{dir: dir, l: newLoop(t, dir)}
}

func newLoop(t *testing.T, dir string) *Loop {
	t.Helper()
	l, err := New(Options{BackingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// host is where the emulator keeps the RDS file path p.
func (e *env) host(p string) string {
	return filepath.Join(e.dir, "files", filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

// file creates a sparse backing file for RDS path p and returns its target.
func (e *env) file(t *testing.T, p string, size int64) dataplane.Target {
	t.Helper()
	h := e.host(p)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(h, size); err != nil {
		t.Fatal(err)
	}
	return target(p)
}

func target(p string) dataplane.Target {
	return dataplane.Target{VolumeID: strings.TrimSuffix(filepath.Base(p), ".img"), FilePath: p}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var devRE = regexp.MustCompile(`^/dev/loop[0-9]+$`)

// attach attaches tg with l and registers its detach.
func attach(t *testing.T, l *Loop, tg dataplane.Target) string {
	t.Helper()
	dev, err := l.Attach(ctxT(t), tg)
	if err != nil {
		t.Fatalf("Attach(%s): %v", tg.FilePath, err)
	}
	if !devRE.MatchString(dev) {
		t.Fatalf("Attach(%s) = %q, want /dev/loopN", tg.FilePath, dev)
	}
	cleanupDetach(t, l, tg)
	return dev
}

func cleanupDetach(t *testing.T, l *Loop, tg dataplane.Target) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Detach(ctx, tg); err != nil {
			t.Errorf("clean-up Detach(%s): %v", tg.FilePath, err)
		}
	})
}

// sysAttr reads /sys/block/<dev>/<attr>.
func sysAttr(t *testing.T, dev, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), attr))
	if err != nil {
		t.Fatalf("read %s of %s: %v", attr, dev, err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// mountDev formats dev with ext4 and mounts it on a fresh directory; the
// unmount is registered (and runs before the detach registered earlier).
func mountDev(t *testing.T, dev string) string {
	t.Helper()
	run(t, "mkfs.ext4", "-q", "-F", dev)
	mnt := t.TempDir()
	run(t, "mount", dev, mnt)
	t.Cleanup(func() { umount(t, mnt) })
	return mnt
}

// umount unmounts mnt if it is mounted.
func umount(t *testing.T, mnt string) {
	t.Helper()
	if err := unix.Unmount(mnt, 0); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		t.Errorf("umount %s: %v", mnt, err)
	}
}
