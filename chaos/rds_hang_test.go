package chaos

import (
	"context"
	"testing"
)

func TestRDSHang(t *testing.T) {
	emu := startEmulator(t)
	client, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	undo := apply(t, "rds.hang", nil, Targets{RDS: emu.Emulator})
	res := execAsync(client, "/system identity print")
	eventually(t, "the command to hang", func() bool { return emu.Faults().Hanging() == 1 })
	// The connection is up (a new one even handshakes) but nothing answers.
	other, err := emu.Dial("admin")
	if err != nil {
		t.Fatalf("a hung RDS must still accept connections: %v", err)
	}
	other.Close()
	var r result
	if done(res, &r) {
		t.Fatalf("a command completed during the hang: %+v", r)
	}

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := await(t, res); r.err != nil || r.out != identityReply {
		t.Fatalf("released command: %+v", r)
	}
	if emu.Faults().Snapshot().HangAll {
		t.Fatal("still hanging after undo")
	}
}
