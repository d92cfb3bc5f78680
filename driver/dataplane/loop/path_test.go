package loop

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// TestPathEscapesAreRejected: every path below would reach an existing file,
// so a lexical join without checks would attach it. All four operations must
// refuse with ErrInvalidPath, and nothing may get attached.
func TestPathEscapesAreRejected(t *testing.T) {
	e := newPathEnv(t)
	e.file(t, "/storage-pool/k8s/pvc-1.img", mib)

	// Targets of the escapes, all existing.
	mk := func(p string) string {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk(filepath.Join(e.dir, "etc", "passwd"))      // /../etc/passwd, joined naively
	mk(filepath.Join(e.dir, "x"))                  // /storage-pool/../../x
	journal := mk(filepath.Join(e.dir, "journal")) // inside BackingDir, outside files/
	outsideDir := t.TempDir()
	outside := mk(filepath.Join(outsideDir, "victim.img"))

	links := map[string]string{
		"/storage-pool/k8s/evil.img":    outside,
		"/storage-pool/k8s/journal.img": journal,
		"/storage-pool/k8s/rel.img":     "../../../journal",
		"/storage-pool/evildir":         outsideDir,
	}
	for p, to := range links {
		if err := os.Symlink(to, e.host(p)); err != nil {
			t.Fatal(err)
		}
	}

	bad := []string{
		"/../etc/passwd",
		"/storage-pool/../../x",
		"/storage-pool/k8s/../../../x",
		"storage-pool/k8s/pvc-1.img", // relative
		"./storage-pool/k8s/pvc-1.img",
		"",
		"/",
		"//storage-pool/k8s/pvc-1.img",
		"/storage-pool//k8s/pvc-1.img",
		"/storage-pool/./k8s/pvc-1.img",
		"/storage-pool/k8s/pvc-1.img/",
		"/storage-pool/k8s/pvc-1.img\x00",
		"/storage-pool/k8s/evil.img",    // symlink out of BackingDir
		"/storage-pool/k8s/journal.img", // symlink to BackingDir, outside files/
		"/storage-pool/k8s/rel.img",     // relative symlink out of files/
		"/storage-pool/evildir/victim.img",
		"/storage-pool/k8s", // a directory
	}
	for _, p := range bad {
		tg := dataplane.Target{VolumeID: "v", FilePath: p}
		ctx := ctxT(t)
		if dev, err := e.l.Attach(ctx, tg); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Attach(%q) = %q, %v; want ErrInvalidPath", p, dev, err)
		}
		if dev, err := e.l.Device(ctx, tg); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Device(%q) = %q, %v; want ErrInvalidPath", p, dev, err)
		}
		if err := e.l.Detach(ctx, tg); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Detach(%q) = %v; want ErrInvalidPath", p, err)
		}
		if size, err := e.l.Rescan(ctx, tg); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Rescan(%q) = %d, %v; want ErrInvalidPath", p, size, err)
		}
	}
	for _, dir := range []string{e.dir, outsideDir} {
		if got := boundUnder(dir); len(got) != 0 {
			t.Fatalf("a rejected path got attached: %v", got)
		}
	}
	if k := e.l.locks.Len(); k != 0 {
		t.Fatalf("%d lock entries left behind", k)
	}
}

func TestRelPath(t *testing.T) {
	good := map[string]string{
		"/storage-pool/k8s/pvc-1.img": filepath.Join("storage-pool", "k8s", "pvc-1.img"),
		"/a":                          "a",
		"/a b/c (deleted)":            filepath.Join("a b", "c (deleted)"),
		"/...":                        "...",
	}
	for in, want := range good {
		got, err := relPath(in)
		if err != nil || got != want {
			t.Errorf("relPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "a", "/a/", "/a//b", "/./a", "/a/..", "/a\x00"} {
		if got, err := relPath(in); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("relPath(%q) = %q, %v; want ErrInvalidPath", in, got, err)
		}
	}
}
