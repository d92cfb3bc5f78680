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
