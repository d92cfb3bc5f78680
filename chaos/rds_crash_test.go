package chaos

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/emulator/store"
)

func TestRDSCrash(t *testing.T) {
	ctx := context.Background()
	emu := startEmulator(t)
	if out := emu.Run(addDisk("pvc-1")); out != "" {
		t.Fatalf("/disk add printed %q", out)
	}
	client, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()

	undo := apply(t, "rds.crash", nil, Targets{RDS: emu.Emulator})

	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("an open connection survived the crash")
	}
	if emu.Serving() {
		t.Fatal("still serving after the crash")
	}
	if c, err := emu.Dial("admin"); err == nil {
		c.Close()
		t.Fatal("a new connection succeeded during the crash")
	}
	if !slices.ContainsFunc(emu.Store().Disks(), func(d store.Disk) bool { return d.Slot == "pvc-1" }) {
		t.Fatal("the crash lost disk pvc-1")
	}

	if err := undo(ctx); err != nil {
		t.Fatalf("undo: %v", err)
	}
	if out := emu.Run("/disk print detail where slot=pvc-1"); !strings.Contains(out, `slot="pvc-1"`) {
		t.Fatalf("after restart, /disk print shows %q", out)
	}
	if err := undo(ctx); err != nil {
		t.Fatalf("second undo: %v", err)
	}
}

// apply looks a fault up by name, as a scenario file names it, and applies it.
func apply(t *testing.T, name string, params map[string]string, targets Targets) Undo {
	t.Helper()
	f, err := Lookup(name, params)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	if f.Name() != name {
		t.Fatalf("Lookup(%q) returned %q", name, f.Name())
	}
	undo, err := f.Apply(context.Background(), targets)
	if err != nil {
		t.Fatalf("apply %s: %v", name, err)
	}
	return undo
}
