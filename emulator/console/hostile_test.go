package console

import (
	"regexp"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/routeros"
)

// TestHostileNames: every awkward name either gets a RouterOS-style error or is
// stored exactly and found again by the same quoted name, and its printed form
// parses back to the same bytes. Nothing may run a second command.
func TestHostileNames(t *testing.T) {
	names := []string{
		"with space", `with"quote`, "semi;colon", "br[ack]et", "new\nline", "uni-ünï-☃",
		"$(reboot)", `back\slash`, "tab\there", strings.Repeat("k", 10*1024), "a]; /disk remove [find]",
	}
	c, _ := newConsole(t, 8<<40)
	s := c.NewSession("admin", 80)
	mustRun(t, s, addCmd("keep-me", "1M"))
	quotedSlot := regexp.MustCompile(`(?s)slot=("(?:[^"\\]|\\.)*")`)
	for i, name := range names {
		path := "/storage-pool/h/" + string(rune('a'+i)) + ".img"
		r := run(t, s, "/disk add type=file file-size=1M file-path="+path+" slot="+routeros.Quote(name))
		if r.Failed {
			if !strings.HasPrefix(r.Output, "invalid value for argument") && !strings.HasPrefix(r.Output, "failure: ") {
				t.Errorf("%.40q: error is not RouterOS-style: %q", name, r.Output)
			}
			continue
		}
		out := mustRun(t, s, "/disk print detail where slot="+routeros.Quote(name))
		m := quotedSlot.FindStringSubmatch(strings.ReplaceAll(out, "\n     ", ""))
		if m == nil {
			t.Fatalf("%.40q: stored but not found again:\n%.300s", name, out)
		}
		cmds, err := routeros.Parse("/disk print where slot="+m[1], nil)
		if err != nil {
			t.Fatalf("%.40q: printed value %.60q does not parse: %v", name, m[1], err)
		}
		if got := cmds[0].Where.(*routeros.Compare).Value; got != name {
			t.Errorf("%.40q: printed back as %.40q", name, got)
		}
	}
	if out := mustRun(t, s, "/disk print count-only where slot=keep-me"); out != "1\n" {
		t.Fatalf("an injected command removed another disk: %q", out)
	}
}

// TestCommentCannotForgeEntries: a disk's comment is free text; printed, it
// must stay on its ";;;" line, so a newline in it cannot make a listing show
// an entry or a property that does not exist.
func TestCommentCannotForgeEntries(t *testing.T) {
	c, _ := newConsole(t, 8<<40)
	s := c.NewSession("admin", 80)
	forged := "x\n 1   type=file slot=\"pvc-forged\" size=1 file-path=/storage-pool/k8s/pvc-forged.img\r\n\x1b[2J"
	mustRun(t, s, addCmd("pvc-real", "1M"))
	mustRun(t, s, "/disk set [find slot=pvc-real] comment="+routeros.Quote(forged))
	out := mustRun(t, s, "/disk print detail where slot=pvc-real")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	comments := 0
	for _, l := range lines {
		if strings.Contains(l, ";;;") {
			comments++
			if !strings.Contains(l, `x\n 1   type=file`) || strings.ContainsAny(l, "\r\x1b") {
				t.Errorf("comment line not escaped: %q", l)
			}
		}
		if strings.HasPrefix(strings.TrimLeft(l, " "), "1 ") {
			t.Errorf("the comment forged an entry line: %q", l)
		}
	}
	if comments != 1 {
		t.Fatalf("%d comment lines:\n%s", comments, out)
	}
}

// TestNarrowWidthsTerminate: a width too narrow for an entry's indentation
// still prints every property, and terminates (it once looped forever).
func TestNarrowWidthsTerminate(t *testing.T) {
	c, _ := newConsole(t, 8<<40)
	mustRun(t, c.NewSession("admin", 80), addCmd("pvc-narrow", "1M"))
	for _, w := range []int{1, 2, 3, 4, 5, 6, 9} {
		out := mustRun(t, c.NewSession("admin", w), "/disk print detail")
		if !strings.Contains(strings.ReplaceAll(out, "\n", ""), "file-path") {
			t.Errorf("width %d: file-path missing:\n%s", w, out)
		}
	}
}
