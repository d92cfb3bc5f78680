package chaos

import (
	"context"
	"testing"
	"time"
)

func TestRDSRestartAfterCrash(t *testing.T) {
	emu := startEmulator(t)
	targets := Targets{RDS: emu.Emulator}
	apply(t, "rds.crash", nil, targets)
	if emu.Serving() {
		t.Fatal("serving after the crash")
	}
	if undo := apply(t, "rds.restart", nil, targets); undo != nil {
		t.Fatal("rds.restart returned an Undo; a restart is an event")
	}
	if !emu.Serving() {
		t.Fatal("not serving after the restart")
	}
	if out := emu.Run("/system identity print"); out != identityReply {
		t.Fatalf("after the restart: %q", out)
	}
}

func TestRDSRestartReboots(t *testing.T) {
	emu := startEmulator(t)
	addr := emu.Addr()
	client, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dropped := make(chan error, 1)
	go func() { dropped <- client.Wait() }()

	apply(t, "rds.restart", nil, Targets{RDS: emu.Emulator})

	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("a reboot kept an open connection")
	}
	if emu.Addr() != addr {
		t.Fatalf("the reboot moved the RDS from %s to %s", addr, emu.Addr())
	}
	if out := emu.Run("/system identity print"); out != identityReply {
		t.Fatalf("after the reboot: %q", out)
	}
}

func TestRDSCrashUndoAfterRestart(t *testing.T) {
	// A scenario may end a crash with rds.restart and still hold the crash's
	// Undo; calling it must not fail.
	emu := startEmulator(t)
	targets := Targets{RDS: emu.Emulator}
	undo := apply(t, "rds.crash", nil, targets)
	apply(t, "rds.restart", nil, targets)
	if err := undo(context.Background()); err != nil {
		t.Fatalf("crash undo after restart: %v", err)
	}
	if !emu.Serving() {
		t.Fatal("not serving")
	}
}
