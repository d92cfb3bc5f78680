package routeros

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// dump renders a command compactly so table entries can state the whole
// expected parse in one string.
func dump(c Command) string {
	var parts []string
	parts = append(parts, strings.Join(c.Path, "/")+" "+c.Verb)
	if c.Items != nil {
		if c.Items.Find != nil {
			parts = append(parts, "items=find("+exprStr(c.Items.Find.Where)+")")
		} else {
			parts = append(parts, fmt.Sprintf("items=%v", c.Items.Indices))
		}
	}
	for _, a := range c.Args {
		switch {
		case a.Value.Find != nil:
			parts = append(parts, a.Name+"=find("+exprStr(a.Value.Find.Where)+")")
		case a.Value.Quoted:
			parts = append(parts, fmt.Sprintf("%s=%q", a.Name, a.Value.Text))
		default:
			parts = append(parts, a.Name+"="+a.Value.Text)
		}
	}
	for _, w := range c.Words {
		parts = append(parts, "+"+w)
	}
	if c.Where != nil {
		parts = append(parts, "where("+c.Where.String()+")")
	}
	return strings.Join(parts, " ")
}

func exprStr(e Expr) string {
	if e == nil {
		return ""
	}
	return e.String()
}

func TestParseCommands(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []string
	}{
		{"create",
			`/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1G slot=pvc-1 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`,
			[]string{`disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1G slot=pvc-1 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`}},
		{"create quoted",
			`/disk add type=file file-path="/storage-pool/k8s/pvc-1.img" slot="pvc-1" comment=""`,
			[]string{`disk add type=file file-path="/storage-pool/k8s/pvc-1.img" slot="pvc-1" comment=""`}},
		{"read one", `/disk print detail where slot=pvc-1`,
			[]string{`disk print +detail where(slot="pvc-1")`}},
		{"list regex", `/disk print detail where slot~"^pvc-"`,
			[]string{`disk print +detail where(slot~"^pvc-")`}},
		{"capacity", `/disk print detail where mount-point="storage-pool"`,
			[]string{`disk print +detail where(mount-point="storage-pool")`}},
		{"resize", `/disk set [find slot=pvc-1] file-size=2147483648`,
			[]string{`disk set items=find(slot="pvc-1") file-size=2147483648`}},
		{"delete disk", `/disk remove [find slot=nope]`,
			[]string{`disk remove items=find(slot="nope")`}},
		{"delete file", `/file remove [find name="storage-pool/k8s/pvc-1.img"]`,
			[]string{`file remove items=find(name="storage-pool/k8s/pvc-1.img")`}},
		{"files", `/file print detail where name~"^storage-pool/k8s/"`,
			[]string{`file print +detail where(name~"^storage-pool/k8s/")`}},
		{"copy", `/disk add type=file copy-from=[find slot=pvc-1] file-path=/storage-pool/k8s/snap-1.img slot=snap-1`,
			[]string{`disk add type=file copy-from=find(slot="pvc-1") file-path=/storage-pool/k8s/snap-1.img slot=snap-1`}},
		{"identity", `/system identity print`, []string{`system/identity print`}},
		{"resource", `/system resource print`, []string{`system/resource print`}},
		{"identity set", `/system identity set name="rds 1"`, []string{`system/identity set name="rds 1"`}},
		{"slash form", `/system/identity/print`, []string{`system/identity print`}},
		{"slash form verb", `/disk/print detail`, []string{`disk print +detail`}},
		{"semicolon", `/disk remove [find slot=a]; /file remove [find name="a.img"]`,
			[]string{`disk remove items=find(slot="a")`, `file remove items=find(name="a.img")`}},
		{"where then semicolon", `/disk print where slot="a;b";/file print where name=x`,
			[]string{`disk print where(slot="a;b")`, `file print where(name="x")`}},
		{"semicolon no space", `/system identity print;/system resource print;`,
			[]string{`system/identity print`, `system/resource print`}},
		{"multi-line", "\n  /disk print\n\n# a comment\n\t/file print detail\r\n/system resource print\n",
			[]string{`disk print`, `file print +detail`, `system/resource print`}},
		{"empty", "", nil},
		{"blank lines", "\n \n\t;;\n", nil},
		{"find where", `/disk remove [find where slot=a]`, []string{`disk remove items=find(slot="a")`}},
		{"find all", `/disk remove [find]`, []string{`disk remove items=find()`}},
		{"find spaced", `/disk remove [ find  where  slot=a ]`, []string{`disk remove items=find(slot="a")`}},
		{"indices", `/disk remove 0,3,5`, []string{`disk remove items=[0 3 5]`}},
		{"index", `/disk set 2 comment=x`, []string{`disk set items=[2] comment=x`}},
		{"items after args", `/disk set comment=x [find]`, []string{`disk set items=find() comment=x`}},
		{"count-only", `/file print count-only`, []string{`file print +count-only`}},
		{"where only", `/disk print where slot!=x`, []string{`disk print where(slot!="x")`}},
		{"where precedence", `/disk print where a=1 or b=2 and !c=3`,
			[]string{`disk print where(a="1" or b="2" and !c="3")`}},
		{"where parens", `/disk print where (a=1 or b=2) and not c=3`,
			[]string{`disk print where((a="1" or b="2") and !c="3")`}},
		{"where implicit and", `/disk print where slot~"^pvc-" type=file`,
			[]string{`disk print where(slot~"^pvc-" and type="file")`}},
		{"find implicit and", `/disk remove [find slot=a type=file]`,
			[]string{`disk remove items=find(slot="a" and type="file")`}},
		{"where empty value", `/disk print where comment=`, []string{`disk print where(comment="")`}},
		{"keyword-named props", `/disk print where not=1 and=2 or or=3`,
			[]string{`disk print where(not="1" and and="2" or or="3")`}},
		{"where prop", `/disk remove [find where=1]`, []string{`disk remove items=find(where="1")`}},
		{"export style menu", "/disk\nprint detail\nremove [find slot=a]\n/file\nprint",
			[]string{`disk print +detail`, `disk remove items=find(slot="a")`, `file print`}},
		{"relative from root", `system identity print`, []string{`system/identity print`}},
		{"continuation", "/disk add type=file \\\n    slot=a \\\r\n    file-size=1G",
			[]string{`disk add type=file slot=a file-size=1G`}},
		{"unquoted specials", `/disk add comment=a/b.c:d-e_f~g,h*i!j=k#l?m`,
			[]string{`disk add comment=a/b.c:d-e_f~g,h*i!j=k#l?m`}},
		{"unicode unquoted", `/disk add comment=héllo`, []string{`disk add comment=héllo`}},
		{"escapes", `/disk add comment="a\"b\\c\nd\te\rf\$g\?h\_i\41\7F"`,
			[]string{`disk add comment="a\"b\\c\nd\te\rf$g?h iA\x7f"`}},
		{"quoted semicolon stays data", `/disk add comment="x; /disk remove [find]" slot=a`,
			[]string{`disk add comment="x; /disk remove [find]" slot=a`}},
		{"quoted newline escape", `/system identity set name="a\nb"`,
			[]string{`system/identity set name="a\nb"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := Parse(tt.script, DefaultSchema())
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.script, err)
			}
			var got []string
			for _, c := range cmds {
				got = append(got, dump(c))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Parse(%q)\n got: %q\nwant: %q", tt.script, got, tt.want)
			}
		})
	}
}

// TestParseStructure checks the fields dump does not show: positions, the
// Quoted flag, the regexp, and that Path slices are not shared.
func TestParseStructure(t *testing.T) {
	cmds, err := Parse("/disk print\n  /disk add slot=\"a\" file-size=1G copy-from=[find]\n/disk print where slot~\"^p\"", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 {
		t.Fatalf("got %d commands", len(cmds))
	}
	add := cmds[1]
	if add.Pos != (Pos{2, 3}) {
		t.Errorf("command pos = %v, want {2 3}", add.Pos)
	}
	if a := add.Args[0]; a.Pos != (Pos{2, 13}) || !a.Value.Quoted || a.Value.Text != "a" {
		t.Errorf("slot arg = %+v", a)
	}
	if a := add.Args[1]; a.Pos != (Pos{2, 22}) || a.Value.Quoted {
		t.Errorf("file-size arg = %+v", a)
	}
	if v := add.Args[2].Value; v.Find == nil || v.Find.Where != nil || v.Text != "" {
		t.Errorf("copy-from = %+v", v)
	}
	cmp, ok := cmds[2].Where.(*Compare)
	if !ok || cmp.Re == nil || !cmp.Re.MatchString("pvc") {
		t.Errorf("where = %#v", cmds[2].Where)
	}
	cmds[0].Path[0] = "mutated"
	if cmds[1].Path[0] != "disk" {
		t.Error("Path slices are shared between commands")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   string
	}{
		// bad command name
		{"unknown verb", `/disk frob`, "bad command name frob (line 1 column 7)"},
		{"unknown menu", `/frob`, "bad command name frob (line 1 column 2)"},
		{"unknown submenu", `/system frob print`, "bad command name frob (line 1 column 9)"},
		{"prefix has no verbs", `/system print`, "bad command name print (line 1 column 9)"},
		{"verb of other menu", `/system identity remove`, "bad command name remove (line 1 column 18)"},
		{"second line", "/disk print\n/disk  frob x=1", "bad command name frob (line 2 column 8)"},
		{"relative unknown", `print`, "bad command name print (line 1 column 1)"},
		{"bad find", `/disk remove [frob]`, "bad command name frob (line 1 column 15)"},
		{"weird word", `/fr@b`, "bad command name fr@b (line 1 column 2)"},
		{"arg as menu", `/disk slot=1`, "bad command name slot (line 1 column 7)"},
		// expected end of command
		{"unknown arg", `/disk add type=file frob=1`, "expected end of command (line 1 column 21)"},
		{"arg to argless verb", `/disk remove [find] slot=a`, "expected end of command (line 1 column 21)"},
		{"arg to print", `/system identity print name=x`, "expected end of command (line 1 column 24)"},
		{"stray word", `/disk print detail frob`, "expected end of command (line 1 column 20)"},
		{"word not allowed", `/system resource print detail`, "expected end of command (line 1 column 24)"},
		{"where not allowed", `/disk add where slot=a`, "expected end of command (line 1 column 11)"},
		{"after where", `/disk print where slot=a detail`, "expected end of command (line 1 column 26)"},
		{"items not allowed", `/disk print [find]`, "expected end of command (line 1 column 13)"},
		{"second items", `/disk remove [find] 0`, "expected end of command (line 1 column 21)"},
		{"stray quoted", `/disk print "x"`, "expected end of command (line 1 column 13)"},
		{"stray in find", `/disk remove [find slot=a junk]`, "expected end of command (line 1 column 27)"},
		{"index overflow", `/disk remove 1234567890`, "expected end of command (line 1 column 14)"},
		{"bad index list", `/disk remove 0,,1`, "expected end of command (line 1 column 14)"},
		{"long line col", `/disk add type=file file-path=/a.img frob=yes`, "expected end of command (line 1 column 38)"},
		{"comment mid-line", `/disk print # no`, "expected end of command (line 1 column 13)"},
		// syntax error
		{"unterminated quote", `/disk add slot="abc`, "syntax error (line 1 column 16)"},
		{"quote spans newline", "/disk add slot=\"ab\nc\"", "syntax error (line 1 column 16)"},
		{"unbalanced [", `/disk remove [find slot=a`, "syntax error (line 1 column 14)"},
		{"unbalanced [ newline", "/disk remove [find\n]", "syntax error (line 1 column 14)"},
		{"stray ]", `/disk remove 0]`, "syntax error (line 1 column 15)"},
		{"stray ] after value", `/disk add slot=a]`, "syntax error (line 1 column 17)"},
		{"unbalanced (", `/disk print where (slot=a`, "syntax error (line 1 column 19)"},
		{"stray )", `/disk print where slot=a)`, "syntax error (line 1 column 25)"},
		{"( in find unclosed", `/disk remove [find (slot=a]`, "syntax error (line 1 column 20)"},
		{"= without name", `/disk add =x`, "syntax error (line 1 column 11)"},
		{"bad escape", `/disk add slot="a\qb"`, "syntax error (line 1 column 18)"},
		{"lowercase hex", `/disk add slot="\7f"`, "syntax error (line 1 column 17)"},
		{"short hex", `/disk add slot="\4"`, "syntax error (line 1 column 17)"},
		{"backslash at eof", `/disk add slot="a\`, "syntax error (line 1 column 16)"},
		{"dollar unquoted", `/disk add slot=a$b`, "syntax error (line 1 column 17)"},
		{"dollar subst", `/disk add slot=$(id)`, "syntax error (line 1 column 16)"},
		{"dollar quoted", `/disk add slot="$(id)"`, "syntax error (line 1 column 17)"},
		{"backslash unquoted", `/disk add slot=a\b`, "syntax error (line 1 column 17)"},
		{"glued quote", `/disk add slot="a"b`, "syntax error (line 1 column 19)"},
		{"glued paren", `/disk add slot=a(b)`, "syntax error (line 1 column 17)"},
		{"empty where", `/disk print where`, "syntax error (line 1 column 18)"},
		{"where and nothing", `/disk print where slot=a and`, "syntax error (line 1 column 29)"},
		{"missing op", `/disk print where slot`, "syntax error (line 1 column 23)"},
		{"space before op", `/disk print where slot =a`, "syntax error (line 1 column 23)"},
		{"bad regex", `/disk print where slot~"(" `, "syntax error (line 1 column 24)"},
		{"find where nothing", `/disk remove [find where]`, "syntax error (line 1 column 25)"},
		{"empty brackets", `/disk remove []`, "syntax error (line 1 column 15)"},
		{"value subcommand in where", `/disk print where slot=[find]`, "syntax error (line 1 column 24)"},
		{"brace", `/disk add slot={x}`, "syntax error (line 1 column 16)"},
		{"control char", "/disk add slot=a\x01", "syntax error (line 1 column 17)"},
		{"double slash", `/disk//print`, "syntax error (line 1 column 7)"},
		{"leading bracket", `[find]`, "syntax error (line 1 column 1)"},
		{"error on line 3", "/disk print\n\n/disk add slot=\"x", "syntax error (line 3 column 16)"},
		{"first error wins", "/disk add frob=1\n/disk add slot=\"x", "expected end of command (line 1 column 11)"},
		{"too big", "/disk print where comment=\"" + strings.Repeat("a", maxScript) + "\"", "syntax error (line 1 column 1)"},
		{"too deep parens", "/disk print where " + strings.Repeat("(", 65) + "a=1" + strings.Repeat(")", 65),
			"syntax error (line 1 column 83)"},
		{"too deep not", "/disk print where " + strings.Repeat("!", 65) + "a=1", "syntax error (line 1 column 83)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := Parse(tt.script, DefaultSchema())
			if err == nil {
				t.Fatalf("Parse(%.80q) = %d commands, want error %q", tt.script, len(cmds), tt.want)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%.80q)\n got: %s\nwant: %s", tt.script, err, tt.want)
			}
			if cmds != nil {
				t.Errorf("commands returned alongside error: %v", cmds)
			}
		})
	}
}

func TestDepthLimitBoundary(t *testing.T) {
	// 64 levels is allowed, 65 is not (see too-deep cases above).
	s := "/disk print where " + strings.Repeat("(", 64) + "a=1" + strings.Repeat(")", 64)
	if _, err := Parse(s, nil); err != nil {
		t.Fatalf("64 levels: %v", err)
	}
	s = "/disk remove [find " + strings.Repeat("!", 63) + "a=1]"
	if _, err := Parse(s, nil); err != nil {
		t.Fatalf("[ + 63 ! levels: %v", err)
	}
	s = "/disk remove [find " + strings.Repeat("!", 64) + "a=1]"
	if _, err := Parse(s, nil); err == nil {
		t.Fatal("[ + 64 ! levels: want error")
	}
}

func TestHostileValues(t *testing.T) {
	values := []string{
		"pvc 1",
		`a"b`,
		`a\b`,
		"a;b",
		"x; /disk remove [find]",
		"[find]",
		"a]b[c",
		"line1\nline2",
		"cr\r\nlf",
		"$(/system reboot)",
		"$var",
		"?help",
		"tab\there",
		"\x00nul\x7f\x1b[31m",
		"ünïcødé ✓ 日本",
		"\xff\xfe invalid utf8",
		`\48`,
		"#comment",
		"",
		" ",
		strings.Repeat("x;\"$\\\n", 2000), // 10 kB
	}
	for _, v := range values {
		q := Quote(v)
		for _, script := range []string{
			"/disk add slot=" + q + " comment=" + q,
			"/disk set [find slot=" + q + "] comment=" + q,
			"/disk print where slot=" + q,
		} {
			cmds, err := Parse(script, nil)
			if err != nil {
				t.Errorf("Parse(%.60q): %v", script, err)
				continue
			}
			if len(cmds) != 1 {
				t.Errorf("Parse(%.60q): %d commands, want 1 (quoted data leaked into syntax)", script, len(cmds))
				continue
			}
			c := cmds[0]
			for _, a := range c.Args {
				if a.Value.Text != v || !a.Value.Quoted {
					t.Errorf("arg %s = %q, want %q", a.Name, a.Value.Text, v)
				}
			}
			var e Expr = c.Where
			if c.Items != nil {
				e = c.Items.Find.Where
			}
			if e != nil {
				if cmp := e.(*Compare); cmp.Value != v {
					t.Errorf("compare value = %q, want %q", cmp.Value, v)
				}
			}
		}
		if strings.ContainsAny(q[1:len(q)-1], "\n\r$\"") && !strings.Contains(q, `\`) {
			t.Errorf("Quote(%q) = %s leaves specials unescaped", v, q)
		}
	}

	// Unquoted hostile values are errors, never silently different data.
	for _, script := range []string{
		`/disk add slot=pvc 1`,
		`/disk add slot=a"b`,
		"/disk add slot=a\nb=c",
		`/disk add slot=$(/system reboot)`,
		`/disk add slot=a]b`,
		`/disk add slot=[x]`,
	} {
		if cmds, err := Parse(script, nil); err == nil {
			t.Errorf("Parse(%q) = %v, want error", script, cmds)
		}
	}
	// An unquoted `;` ends the command: that is RouterOS semantics and the
	// reason the driver must quote. Pin it so a change is noticed.
	cmds, err := Parse(`/disk add slot=a;/disk remove [find]`, nil)
	if err != nil || len(cmds) != 2 || cmds[1].Verb != "remove" {
		t.Errorf("unquoted ; = %v, %v; want two commands", cmds, err)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"pvc-1", `"pvc-1"`},
		{`a"b\c$d?e`, `"a\"b\\c\$d\3Fe"`},
		{"a\nb\rc\td", `"a\nb\rc\td"`},
		{"\x00\x1f\x7f", `"\00\1F\7F"`},
		{"é", `"\C3\A9"`},
		{"a b;[]", `"a b;[]"`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Msg: "syntax error", Pos: Pos{Line: 1, Col: 12}}
	if e.Error() != "syntax error (line 1 column 12)" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestCustomSchema(t *testing.T) {
	s := &Schema{Menus: map[string]*Menu{
		"ip address": {Verbs: map[string]*Verb{"print": {Words: map[string]bool{"terse": true}}}},
	}}
	cmds, err := Parse("/ip address print terse", s)
	if err != nil || len(cmds) != 1 || dump(cmds[0]) != "ip/address print +terse" {
		t.Fatalf("got %v, %v", cmds, err)
	}
	if _, err := Parse("/disk print", s); err == nil || err.Error() != "bad command name disk (line 1 column 2)" {
		t.Fatalf("got %v", err)
	}
}

// TestParseInMenu: a prompt inside a menu resolves relative commands there,
// ".." climbs, "/" and absolute paths start from the root, and a script that
// does not parse leaves the prompt where it was.
func TestParseInMenu(t *testing.T) {
	for _, tc := range []struct {
		script    string
		in        []string
		wantPaths []string // Path of each command, joined
		wantAfter string
		wantErr   bool
	}{
		{"print", []string{"disk"}, []string{"disk"}, "disk", false},
		{"..", []string{"system", "identity"}, nil, "system", false},
		{"../resource print", []string{"system", "identity"}, []string{"system resource"}, "system identity", false},
		{"/", []string{"disk"}, nil, "", false},
		{"/disk", nil, nil, "disk", false},
		{"/system/identity", []string{"disk"}, nil, "system identity", false},
		{"/file print", []string{"disk"}, []string{"file"}, "disk", false},
		{"..", nil, nil, "", false},
		{"print", nil, nil, "", true},
		{"/disk\nfrob", nil, nil, "", true},
		{"print", []string{"no", "such"}, nil, "no such", true}, // unknown menu: the root, where print is no command
	} {
		cmds, after, err := ParseIn(tc.script, nil, tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseIn(%q in %v): err %v, want error %v", tc.script, tc.in, err, tc.wantErr)
			continue
		}
		var paths []string
		for _, c := range cmds {
			paths = append(paths, strings.Join(c.Path, " "))
		}
		if strings.Join(paths, "|") != strings.Join(tc.wantPaths, "|") || strings.Join(after, " ") != tc.wantAfter {
			t.Errorf("ParseIn(%q in %v) = paths %q, menu %q; want %q, %q", tc.script, tc.in, paths, after, tc.wantPaths, tc.wantAfter)
		}
	}
}
