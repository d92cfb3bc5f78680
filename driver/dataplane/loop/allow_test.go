package loop

import (
	"context"
	"errors"
	"testing"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

func TestAllows(t *testing.T) {
	a, b := "nqn.2026-12.io.rds-csi:node:a", "nqn.2026-12.io.rds-csi:node:b"
	for _, tc := range []struct {
		list, host string
		want       bool
	}{
		{"", a, true}, // empty: any host, as RouterOS reads it
		{"", "", true},
		{a, a, true},
		{a, b, false},
		{a + "," + b, b, true},
		{a, "", false}, // no host NQN is no host on the list
		{"nqn.2026-12.io.rds-csi:nobody", a, false},
		{a + "x", a, false}, // exact names, not prefixes
		{a + ",", "", false},
	} {
		if got := Allows(tc.list, tc.host); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.list, tc.host, got, tc.want)
		}
	}
}

// TestAttachRefusesHostNotAllowed: with the emulator's allow-list wired in,
// Attach refuses before it touches a device, so kind and CI refuse the
// wrong host where RDS would.
func TestAttachRefusesHostNotAllowed(t *testing.T) {
	e := newPathEnv(t)
	tg := e.file(t, "/storage-pool/k8s/pvc-1.img", 4*mib)
	tg.HostNQN = "nqn.2026-12.io.rds-csi:node:b"
	asked := ""
	l, err := New(Options{BackingDir: e.dir, AllowHost: func(_ context.Context, t dataplane.Target) (string, error) {
		asked = t.VolumeID
		return "nqn.2026-12.io.rds-csi:node:a", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if dev, err := l.Attach(context.Background(), tg); !errors.Is(err, dataplane.ErrHostNotAllowed) {
		t.Fatalf("Attach = %q, %v; want ErrHostNotAllowed", dev, err)
	}
	if asked != tg.VolumeID {
		t.Errorf("allow-list asked for %q, want %q", asked, tg.VolumeID)
	}
	boom := errors.New("emulator state unreadable")
	l.allowHost = func(context.Context, dataplane.Target) (string, error) { return "", boom }
	if _, err := l.Attach(context.Background(), tg); !errors.Is(err, boom) {
		t.Fatalf("Attach with an unreadable allow-list: %v; want it to fail, never to attach", err)
	}
}
