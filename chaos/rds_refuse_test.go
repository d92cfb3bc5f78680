package chaos

import (
	"context"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestRDSRefuse(t *testing.T) {
	emu := startEmulator(t)
	open, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	undo := apply(t, "rds.refuse", nil, Targets{RDS: emu.Emulator})
	if c, err := emu.Dial("admin"); err == nil {
		c.Close()
		t.Fatal("a new connection got through")
	}
	if out, _, err := emulatortest.Exec(open, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("an established connection must keep working: %q %v", out, err)
	}

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := emu.Run("/system identity print"); out != identityReply {
		t.Fatalf("after undo: %q", out)
	}
}
