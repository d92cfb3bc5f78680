package emulator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/faults"
)

// TestHostileLoginWidths: widths too narrow for an entry's indentation (the
// login options +1w to +5w, and 0) once panicked the emulator or made it loop
// forever; each must now answer, and the emulator must keep serving.
func TestHostileLoginWidths(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	emu.Run(addCmd("pvc-wide-enough", "1G"))
	for _, login := range []string{"admin+1w", "admin+2w", "admin+3w", "admin+4w", "admin+5w", "admin+0w", "admin+ct7w"} {
		done := make(chan string, 1)
		go func() {
			out, _, err := emu.RunAs(login, "/disk print detail")
			if err != nil {
				out = "error: " + err.Error()
			}
			done <- out
		}()
		select {
		case out := <-done:
			if !strings.Contains(strings.ReplaceAll(out, "\n", ""), "pvc-wide-enough") {
				t.Errorf("%s: %q", login, out)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer (the printer loops)", login)
		}
	}
	if out := emu.Run("/system identity print"); !strings.Contains(out, "name:") {
		t.Fatalf("emulator stopped serving: %q", out)
	}
}

// TestReplyFaults: each reply mode reaches a real SSH client as it says, and
// the command behind a mangled reply still ran.
func TestReplyFaults(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	emu.Run(addCmd("pvc-a", "1G"))
	emu.Run(addCmd("pvc-b", "1G"))
	clean := emu.Run("/disk print detail")
	check := map[faults.ReplyMode]func(out string, noExit bool) bool{
		faults.ReplyTruncate:   func(o string, n bool) bool { return len(o) < len(clean) && strings.HasPrefix(clean, o) && !n },
		faults.ReplyCut:        func(o string, n bool) bool { return len(o) < len(clean) && strings.HasPrefix(clean, o) && n },
		faults.ReplyEmpty:      func(o string, n bool) bool { return o == "" && !n },
		faults.ReplyNoExit:     func(o string, n bool) bool { return o == clean && n },
		faults.ReplyDropLegend: func(o string, n bool) bool { return !strings.Contains(o, "Flags:") && strings.Contains(o, "pvc-b") },
		faults.ReplyLegendOnly: func(o string, n bool) bool { return strings.HasPrefix(o, "Flags:") && !strings.Contains(o, "pvc-a") },
		faults.ReplyGarble:     func(o string, n bool) bool { return len(o) == len(clean) && o != clean },
		faults.ReplyRewrap: func(o string, n bool) bool {
			return o != clean && strings.Count(o, "\n") > strings.Count(clean, "\n")
		},
		faults.ReplyDuplicate: func(o string, n bool) bool { return strings.Count(o, `slot="pvc-a"`) == 2 },
	}
	c, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, mode := range faults.ReplyModes {
		if mode == faults.ReplyHang {
			continue // the controller tests drive hangs; they need a deadline on the client
		}
		if err := emu.Faults().AddReplyFault(faults.ReplyFault{Match: `^/disk print detail$`, Mode: mode, Count: 1, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Output("/disk print detail")
		var missing *gossh.ExitMissingError
		noExit := errors.As(err, &missing)
		if err != nil && !noExit {
			t.Fatalf("%s: %v", mode, err)
		}
		if !check[mode](string(b), noExit) {
			t.Errorf("%s: got %q (no exit status: %v)", mode, b, noExit)
		}
		if again := emu.Run("/disk print detail"); again != clean {
			t.Fatalf("%s: the fault outlived its count: %q", mode, again)
		}
	}
	// The command behind a mangled reply ran.
	if err := emu.Faults().AddReplyFault(faults.ReplyFault{Match: `^/disk remove`, Mode: faults.ReplyCut}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := emu.RunAs("admin", "/disk remove [find slot=pvc-b]"); err == nil {
		t.Fatal("a cut reply reached the client as a clean exit")
	}
	emu.Faults().ClearReplyFaults()
	if out := emu.Run("/disk print count-only where slot=pvc-b"); out != "0\n" {
		t.Fatalf("the remove behind the cut reply did not run: %q", out)
	}
}
