package routeros

import (
	"strings"
	"testing"
)

// seeds are the command shapes the driver really sends, plus a few edge cases
// so the fuzzer starts near interesting syntax.
var seeds = []string{
	`/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1G slot=pvc-1 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`,
	`/disk print detail where slot=pvc-1`,
	`/disk print detail where slot~"^pvc-"`,
	`/disk print detail where mount-point="storage-pool"`,
	`/disk set [find slot=pvc-1] file-size=2147483648`,
	`/disk remove [find slot=nope]`,
	`/file remove [find name="storage-pool/k8s/pvc-1.img"]`,
	`/file print detail where name~"^storage-pool/k8s/"`,
	`/disk add type=file copy-from=[find slot=pvc-1] file-path=/storage-pool/k8s/snap-1.img slot=snap-1`,
	`/system identity print`,
	`/system resource print`,
	`/disk remove [find slot=a]; /file remove [find name="a.img"]`,
	"/disk print\n/file print detail\n# c\n/system/identity/print",
	`/disk print where (a=1 or !b!=2) and not c~"x|y"`,
	`/disk remove 0,1,2`,
	`/disk add comment="a\"b\\c\n\$\?\_\41" slot=x`,
	"/disk\nadd slot=a \\\n  type=file",
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		cmds, err := Parse(script, nil)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
				t.Fatalf("bad error %#v", e)
			}
			if cmds != nil {
				t.Fatal("commands returned with an error")
			}
			return
		}
		for _, c := range cmds {
			var exprs []Expr
			if c.Where != nil {
				exprs = append(exprs, c.Where)
			}
			if c.Items != nil && c.Items.Find != nil && c.Items.Find.Where != nil {
				exprs = append(exprs, c.Items.Find.Where)
			}
			for _, a := range c.Args {
				if a.Value.Find != nil && a.Value.Find.Where != nil {
					exprs = append(exprs, a.Value.Find.Where)
				}
				if a.Value.Quoted {
					checkQuoteRoundTrip(t, a.Value.Text)
				}
			}
			for _, e := range exprs {
				s := e.String()
				again, err := Parse("/disk print where "+s, nil)
				if err != nil {
					t.Fatalf("String() %q of %q does not re-parse: %v", s, script, err)
				}
				if len(again) != 1 || again[0].Where == nil || again[0].Where.String() != s {
					t.Fatalf("String() %q of %q is not canonical", s, script)
				}
			}
		}
	})
}

func checkQuoteRoundTrip(t *testing.T, s string) {
	t.Helper()
	cmds, err := Parse("/disk print where slot="+Quote(s), nil)
	if err != nil {
		t.Fatalf("Quote(%q) = %s does not parse: %v", s, Quote(s), err)
	}
	if len(cmds) != 1 {
		t.Fatalf("Quote(%q) parsed into %d commands", s, len(cmds))
	}
	cmp, ok := cmds[0].Where.(*Compare)
	if !ok || cmp.Value != s || cmp.Op != "=" || cmp.Prop != "slot" {
		t.Fatalf("Quote(%q) parsed back as %#v", s, cmds[0].Where)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "pvc-1", `a"b\c`, "x; /disk remove [find]", "$(id)", "a\nb", "\x00\xff", "日本", "?", strings.Repeat("\\", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkQuoteRoundTrip(t, s)
		// The literal must be printable ASCII so no terminal layer can alter it.
		for _, b := range []byte(Quote(s)) {
			if b < 0x20 || b >= 0x7f {
				t.Fatalf("Quote(%q) contains byte %#x", s, b)
			}
		}
	})
}
