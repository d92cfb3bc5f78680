package rds

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

type tokKind int

const (
	tokWord    tokKind = iota // bare text and quoted strings, concatenated
	tokSep                    // ';' or newline: ends a command
	tokSpecial                // [ ] { } ( ) or a $variable outside an escape
)

type lexTok struct {
	kind tokKind
	text string
}

func (t lexTok) String() string { return fmt.Sprintf("%d:%q", t.kind, t.text) }

// lexRouterOS is a model of the RouterOS CLI lexer, strict enough to catch
// any way a value could end its string, start a new command, substitute a
// variable or a command, or trigger interactive help.
func lexRouterOS(s string) ([]lexTok, error) {
	var toks []lexTok
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			toks = append(toks, lexTok{kind: tokWord, text: cur.String()})
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == ';' || c == '\n' || c == '\r':
			flush()
			toks = append(toks, lexTok{kind: tokSep, text: string(c)})
		case strings.IndexByte("[]{}()$?", c) >= 0:
			flush()
			toks = append(toks, lexTok{kind: tokSpecial, text: string(c)})
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$', '?':
					toks = append(toks, lexTok{kind: tokSpecial, text: string(s[i])})
				case '\n', '\r':
					return nil, fmt.Errorf("raw line break inside string")
				case '\\':
					if i+1 >= len(s) {
						return nil, fmt.Errorf("dangling backslash")
					}
					if i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
						v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
						cur.WriteByte(byte(v))
						i += 2
						continue
					}
					i++
					cur.WriteByte(s[i])
				default:
					cur.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	flush()
	return toks, nil
}

func injectionStrings() []string {
	return []string{
		"", "a", "pvc-1", `"`, `\`, `\"`, `"; /system reboot; "`, `x"] ; /file remove [find] ; [:put "`,
		"a;b", "a]b", "a[b", "a\nb", "a\r\n/system reboot", "$(reboot)", "$x", "a?b", "a b", "a\tb",
		"ünïcødé", "\x00", "\x7f", "\xff\xfe", "slot=\"x\" file-size=1", "a\\41", strings.Repeat("A", 10<<10),
		"../../../etc", "/storage-pool/k8s/../../x", "nqn.2000-02.com.mikrotik:a;b",
	}
}

func TestQuoteInjection(t *testing.T) {
	for _, s := range injectionStrings() {
		t.Run(truncate(strconv.Quote(s), 40), func(t *testing.T) {
			checkQuoted(t, s)
			// Builders: a hostile value must produce exactly the token
			// structure of a harmless one.
			builders := map[string]func(string) string{
				"get":    func(v string) string { return provenScript("", diskListing(whereSlot(v))) },
				"list":   func(v string) string { return provenScript("", diskListing(whereSlotLike(v))) },
				"remove": func(v string) string { return cmdDiskRemove(v, v) },
				"view": func(v string) string {
					return provenScript(cmdDiskRemove(v, v), diskListing(whereView(v, v, v)), fileListing(whereFile(v)))
				},
				"file":   func(v string) string { return provenScript(cmdFileRemove(v), fileListing(whereFile(v))) },
				"flist":  func(v string) string { return provenScript("", fileListing(whereFileLike(v))) },
				"resize": func(v string) string { return cmdDiskResize(v, 1048576) },
				"fileRm": cmdFileRemove,
				"add":    func(v string) string { return cmdDiskAdd(v, v, 1048576, true, 4420, v, "h"+v) },
				"copy":   func(v string) string { return cmdDiskCopy(v, v, v, true, 4420, v, "h"+v) },
				"pool":   func(v string) string { return provenScript("", diskListing(wherePool(v))) },
			}
			for name, b := range builders {
				good, err1 := lexRouterOS(b("X"))
				bad, err2 := lexRouterOS(b(s))
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: lex errors %v %v", name, err1, err2)
				}
				if len(good) != len(bad) {
					t.Fatalf("%s: %q changed the command structure:\n%v\n%v", name, s, good, bad)
				}
				for i := range good {
					if good[i].kind != bad[i].kind || (good[i].kind != tokWord && good[i].text != bad[i].text) {
						t.Fatalf("%s: token %d differs: %v vs %v", name, i, good[i], bad[i])
					}
				}
			}
		})
	}
}

func TestValidation(t *testing.T) {
	const base = "/storage-pool/k8s"
	okSlots := []string{"pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11", "a", "0", "snap.1_x-y", strings.Repeat("a", 128)}
	for _, s := range okSlots {
		if err := ValidateSlot(s); err != nil {
			t.Errorf("ValidateSlot(%q) = %v", s, err)
		}
	}
	badSlots := append(injectionStrings(), "-a", ".a", "A", strings.Repeat("a", 129), "a/b")
	for _, s := range badSlots {
		if s == "a" || s == "pvc-1" {
			continue
		}
		if err := ValidateSlot(s); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidateSlot(%q) = %v, want ErrInvalidArgument", truncate(s, 40), err)
		}
	}

	okPaths := []string{base + "/pvc-1.img", base + "/snap/x.img", base + "/A_b.c-d"}
	for _, p := range okPaths {
		if err := ValidatePathUnder(base, p); err != nil {
			t.Errorf("ValidatePathUnder(%q) = %v", p, err)
		}
	}
	badPaths := []string{"", base, base + "/", base + "/../x.img", base + "/./x.img", base + "//x.img", "/storage-pool/k8sx/a.img",
		"storage-pool/k8s/a.img", "/storage-pool/other/a.img", base + "/a b.img", base + "/a;b.img", base + "/a\"b", base + "/a\nb",
		base + "/.hidden", base + "/" + strings.Repeat("a", 600), base + "/ü.img", base + "/$(x).img", base + "/a]b"}
	for _, p := range badPaths {
		if err := ValidatePathUnder(base, p); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidatePathUnder(%q) = %v, want ErrInvalidArgument", truncate(p, 40), err)
		}
	}

	okNQNs := []string{"nqn.2000-02.com.mikrotik:pvc-a1", "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}
	for _, n := range okNQNs {
		if err := ValidateNQN(n); err != nil {
			t.Errorf("ValidateNQN(%q) = %v", n, err)
		}
	}
	badNQNs := []string{"", "nqn.2000-13.com.x:a", "iqn.2000-02.com.x:a", "nqn.2000-02.com.mikrotik", "nqn.2000-02.com.mikrotik:a b",
		"nqn.2000-02.com.mikrotik:a\"b", "nqn.2000-02.com.mikrotik:" + strings.Repeat("a", 200), "nqn.2000-02..com:a", "nqn.2000-02.com.mikrotik:a;b"}
	for _, n := range badNQNs {
		if err := ValidateNQN(n); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidateNQN(%q) = %v, want ErrInvalidArgument", truncate(n, 40), err)
		}
	}

	for _, re := range []string{"", "^pvc-", "^pvc-[0-9a-f]+$", `\.img$`, "a|b"} {
		if err := ValidateRegex(re); err != nil {
			t.Errorf("ValidateRegex(%q) = %v", re, err)
		}
	}
	for _, re := range []string{"(", "[a", "a\nb", "ü", strings.Repeat("a", 300), "\x00"} {
		if err := ValidateRegex(re); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidateRegex(%q) = %v, want ErrInvalidArgument", truncate(re, 40), err)
		}
	}

	for _, port := range []int{0, -1, 65536} {
		if err := ValidatePort(port); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidatePort(%d) = %v", port, err)
		}
	}
}

func TestRoundUpSize(t *testing.T) {
	tests := []struct {
		in, want int64
		ok       bool
	}{
		{1, 1 << 20, true},
		{1 << 20, 1 << 20, true},
		{1<<20 + 1, 2 << 20, true},
		{10_000_000_000, 10_000_269_312, true}, // 9537 MiB
		{MaxDiskSize, MaxDiskSize, true},
		{0, 0, false},
		{-5, 0, false},
		{MaxDiskSize + 1, 0, false},
	}
	for _, tt := range tests {
		got, err := RoundUpSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("RoundUpSize(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestCommandShapes(t *testing.T) {
	tests := []struct{ got, want string }{
		{cmdDiskAdd("pvc-a1", "/storage-pool/k8s/pvc-a1.img", 10737418240, true, 4420, "nqn.2000-02.com.mikrotik:pvc-a1", ""),
			`/disk add type=file file-path="/storage-pool/k8s/pvc-a1.img" file-size=10737418240 slot="pvc-a1" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-a1"`},
		{cmdDiskAdd("pvc-a1", "/storage-pool/k8s/pvc-a1.img", 10737418240, true, 4420, "nqn.2000-02.com.mikrotik:pvc-a1", "nqn.2026-12.io.rds-csi:nobody"),
			`/disk add type=file file-path="/storage-pool/k8s/pvc-a1.img" file-size=10737418240 slot="pvc-a1" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-a1" nvme-tcp-server-allow-host-name="nqn.2026-12.io.rds-csi:nobody"`},
		{cmdDiskCopy("pvc-a1", "snap-1", "/storage-pool/k8s/snap-1.img", false, 0, "", ""),
			`/disk add type=file copy-from=[find slot="pvc-a1"] file-path="/storage-pool/k8s/snap-1.img" slot="snap-1" nvme-tcp-export=no`},
		{provenScript("", diskListing(whereSlot("pvc-a1"))),
			`/disk print detail where slot="pvc-a1"; /disk print count-only where slot="pvc-a1"`},
		{provenScript("", diskListing(whereSlotLike("^pvc-.*$"))),
			`/disk print detail where slot~"^pvc-.*\$"; /disk print count-only where slot~"^pvc-.*\$"`},
		{whereSlotLike("^a?b\\.c"), `slot~"^a\3Fb\\.c"`},
		{cmdDiskResize("pvc-a1", 2<<30), `/disk set [find slot="pvc-a1"] file-size=2147483648`},
		{cmdDiskRemove("pvc-a1", "/storage-pool/k8s/pvc-a1.img"), `/disk remove [find slot="pvc-a1" and file-path="/storage-pool/k8s/pvc-a1.img"]`},
		{provenScript(cmdDiskRemove("pvc-a1", "/storage-pool/k8s/pvc-a1.img"),
			diskListing(whereView("pvc-a1", "/storage-pool/k8s/pvc-a1.img", "storage-pool")), fileListing(whereFile("/storage-pool/k8s/pvc-a1.img"))),
			`/disk remove [find slot="pvc-a1" and file-path="/storage-pool/k8s/pvc-a1.img"]; ` +
				`/disk print detail where slot="pvc-a1" or file-path="/storage-pool/k8s/pvc-a1.img" or mount-point="storage-pool"; ` +
				`/disk print count-only where slot="pvc-a1" or file-path="/storage-pool/k8s/pvc-a1.img" or mount-point="storage-pool"; ` +
				`/file print detail where name="storage-pool/k8s/pvc-a1.img"; /file print count-only where name="storage-pool/k8s/pvc-a1.img"`},
		{cmdFileRemove("/storage-pool/k8s/pvc-a1.img"), `/file remove [find name="storage-pool/k8s/pvc-a1.img"]`},
		{wherePool("storage-pool"), `mount-point="storage-pool"`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
	verbs := map[string]string{
		"/disk add type=file": VerbAdd, "/disk set [find]": VerbSet, "/file remove [find]": VerbRemove,
		"/system identity print": VerbPrint, "/disk print detail where slot=\"add\"": VerbPrint, "/system reboot": VerbOther, "": VerbOther,
	}
	for cmd, want := range verbs {
		if got := verbOf(cmd); got != want {
			t.Errorf("verbOf(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// TestClientRejectsInjection: no hostile argument reaches the transport.
func TestClientRejectsInjection(t *testing.T) {
	f := newFakeRDS()
	c, err := NewClient(f, ClientOptions{BasePath: "/storage-pool/k8s"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const okPath = "/storage-pool/k8s/x.img"
	const okNQN = "nqn.2000-02.com.mikrotik:x"
	for _, s := range injectionStrings() {
		if s == "a" || s == "pvc-1" {
			continue
		}
		calls := map[string]func() error{
			"GetDisk": func() error { _, err := c.GetDisk(ctx, s); return err },
			"CreateSlot": func() error {
				_, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: s, FilePath: okPath, Size: 1, Export: true, Port: 4420, NQN: okNQN})
				return err
			},
			"CreatePath": func() error {
				_, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: "x", FilePath: s, Size: 1})
				return err
			},
			"CreatePathBase": func() error {
				_, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: "x", FilePath: okPath[:18] + s, Size: 1})
				return err
			},
			"CreateNQN": func() error {
				_, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: "x", FilePath: okPath, Size: 1, Export: true, Port: 4420, NQN: s})
				return err
			},
			"Resize":     func() error { _, err := c.ResizeDisk(ctx, s, 1); return err },
			"Delete":     func() error { return c.DeleteDisk(ctx, s, "") },
			"DeletePath": func() error { return c.DeleteDisk(ctx, "x", s) },
			"CopySrc": func() error {
				_, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: s, Slot: "y", FilePath: okPath})
				return err
			},
			"Pool": func() error { _, err := c.PoolCapacity(ctx, s); return err },
		}
		if s == "" {
			delete(calls, "DeletePath") // no path given: derived from the disk
		}
		if ValidateRegex(s) != nil {
			// Printable regexes are legal (quoted, not rejected); the rest
			// must not reach RDS.
			calls["ListDisks"] = func() error { _, err := c.ListDisks(ctx, s); return err }
			calls["ListFiles"] = func() error { _, err := c.ListFiles(ctx, s); return err }
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s(%q) = %v, want ErrInvalidArgument", name, truncate(s, 30), err)
			}
		}
	}
	if n := len(f.commands()); n != 0 {
		t.Fatalf("%d commands reached the transport: %q", n, f.commands())
	}
}
