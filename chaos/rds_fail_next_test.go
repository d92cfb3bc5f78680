package chaos

import (
	"context"
	"testing"
)

func TestRDSFailNext(t *testing.T) {
	emu := startEmulator(t)
	apply(t, "rds.fail-next", map[string]string{"count": "2", "text": "failure: not enough space"}, Targets{RDS: emu.Emulator})
	for i := range 2 {
		out, status, err := emu.RunAs("admin", addDisk("pvc-1"))
		if err != nil || out != "failure: not enough space\n" || status == 0 {
			t.Fatalf("command %d: %q status %d err %v; want the injected failure", i+1, out, status, err)
		}
	}
	if out := emu.Run(addDisk("pvc-1")); out != "" {
		t.Fatalf("third command failed: %q", out)
	}
	if got := len(emu.Store().Disks()); got != 1 {
		t.Fatalf("%d disks; failed commands must not run", got)
	}
}

func TestRDSFailNextDefaultTextAndUndo(t *testing.T) {
	emu := startEmulator(t)
	undo := apply(t, "rds.fail-next", map[string]string{"count": "5"}, Targets{RDS: emu.Emulator})
	if out := emu.Run("/system identity print"); out != DefaultFailText+"\n" {
		t.Fatalf("got %q, want the default text %q", out, DefaultFailText)
	}
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := emu.Run("/system identity print"); out != identityReply {
		t.Fatalf("after undo: %q; undo must cancel the remaining failures", out)
	}
}
