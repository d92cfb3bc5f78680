package rds

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readSample(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func p(k, v string) Property  { return Property{Key: k, Value: v} }
func pq(k, v string) Property { return Property{Key: k, Value: v, Quoted: true} }

func TestParseDetailGolden(t *testing.T) {
	tests := []struct {
		file string
		want []Entry
	}{
		{"disk-print-detail-one.txt", []Entry{{Index: 0, Properties: []Property{
			p("type", "file"),
			pq("slot", "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"),
			pq("slot-default", ""),
			pq("parent", ""),
			p("fs", "-"),
			pq("model", "/storage-pool/k8s/pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11.img"), // wrapped inside the quotes
			p("size", "53 687 091 200"),
			p("mount-filesystem", "yes"),
			p("mount-read-only", "no"),
			p("compress", "no"),
			p("sector-size", "512"),
			p("raid-master", "none"),
			p("nvme-tcp-export", "yes"),
			p("nvme-tcp-server-port", "4420"),
			pq("nvme-tcp-server-nqn", "nqn.2000-02.com.mikrotik:pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"), // 81-column line
			pq("nvme-tcp-server-allow-host-name", ""),
			p("iscsi-export", "no"),
			p("nfs-sharing", "no"),
			p("smb-sharing", "no"),
			p("media-sharing", "no"),
			p("media-interface", "none"),
			p("swap", "no"), // 80-column line that ended on a property boundary
			p("file-path", "/storage-pool/k8s/pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11.img"),
			p("file-size", "50.0GiB"),
			p("file-offset", "0"),
		}}}},
		{"disk-print-detail-two.txt", []Entry{
			{Index: 0, Properties: []Property{
				p("type", "file"), pq("slot", "pvc-a1"), p("size", "10 737 418 240"),
				p("file-path", "/storage-pool/k8s/pvc-a1.img"), p("file-size", "10.0GiB"),
				p("nvme-tcp-export", "yes"), p("nvme-tcp-server-port", "4420"),
				pq("nvme-tcp-server-nqn", "nqn.2000-02.com.mikrotik:pvc-a1"),
			}},
			{Index: 1, Properties: []Property{
				p("type", "file"), pq("slot", "pvc-b2"), p("size", "1 649 267 441 664"),
				p("file-path", "/storage-pool/k8s/pvc-b2.img"), p("file-size", "1.5TiB"),
				p("nvme-tcp-export", "yes"), p("nvme-tcp-server-port", "4420"),
				pq("nvme-tcp-server-nqn", "nqn.2000-02.com.mikrotik:pvc-b2"),
			}},
		}},
		{"disk-print-empty.txt", nil},
		{"pool-capacity.txt", []Entry{{Index: 0, Properties: []Property{
			p("type", "partition"), pq("slot", "storage-pool"), pq("mount-point", "storage-pool"),
			p("file-system", "btrfs"), p("size", "7 681 574 174 720"), p("free", "5 632 440 000 000"), p("use", "27%"),
		}}}},
		{"file-print-detail.txt", []Entry{
			{Index: 0, Properties: []Property{p("name", "storage-pool/k8s"), p("type", "directory"), p("last-modified", "2025-11-12 00:30:02")}},
			{Index: 1, Properties: []Property{p("name", "storage-pool/k8s/pvc-a1.img"), p("type", ".img file"), p("size", "10.0GiB"), p("last-modified", "2025-11-12 00:36:13")}},
			{Index: 2, Properties: []Property{p("name", "storage-pool/k8s/pvc-b2.img"), p("type", ".img file"), p("size", "1.5TiB"), p("last-modified", "2025-11-12 00:41:50")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := readSample(t, tt.file)
			for _, variant := range []struct {
				name string
				in   string
			}{
				{"as-is", in},
				{"crlf", strings.ReplaceAll(in, "\n", "\r\n")},
				{"no-final-newline", strings.TrimRight(in, "\n")},
			} {
				got, err := ParseDetail(variant.in, ParseOptions{})
				if err != nil {
					t.Fatalf("%s: %v", variant.name, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s:\n got %#v\nwant %#v", variant.name, got, tt.want)
				}
			}
		})
	}
}

func TestSampleDisks(t *testing.T) {
	es, err := ParseDetail(readSample(t, "disk-print-detail-one.txt"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := diskFromEntry(es[0])
	if err != nil {
		t.Fatal(err)
	}
	want := Disk{
		Slot: "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11", Type: "file",
		FilePath: "/storage-pool/k8s/pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11.img",
		Size:     53687091200, FileSize: "50.0GiB", Export: true, Port: 4420,
		NQN: "nqn.2000-02.com.mikrotik:pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11",
	}
	d.Properties = nil
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v\nwant %+v", d, want)
	}

	es, err = ParseDetail(readSample(t, "pool-capacity.txt"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := capacityFromEntry(es[0])
	if err != nil || c != (Capacity{Size: 7681574174720, Free: 5632440000000}) {
		t.Errorf("capacity = %+v, %v", c, err)
	}

	es, err = ParseDetail(readSample(t, "file-print-detail.txt"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fileFromEntry(es[1])
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "storage-pool/k8s/pvc-a1.img" || f.Type != ".img file" || f.Size != 10<<30 || f.IsDir() ||
		!f.Modified.Equal(time.Date(2025, 11, 12, 0, 36, 13, 0, time.UTC)) {
		t.Errorf("file = %+v", f)
	}
}

// TestWrapJoinRule pins down the joining rule on both sides of each
// ambiguity. Lines are built at exactly the width where the rule says the
// cut was hard.
func TestWrapJoinRule(t *testing.T) {
	tests := []struct {
		name  string
		width int
		in    string
		want  []Property
	}{
		{
			name: "short line: the break replaced a space", width: 40,
			in:   " 0   a=1 b=2\n     c=3\n",
			want: []Property{p("a", "1"), p("b", "2"), p("c", "3")},
		},
		{
			name: "short line inside a multi-word value", width: 40,
			in:   " 0   last-modified=2025-11-12\n     00:36:13\n",
			want: []Property{p("last-modified", "2025-11-12 00:36:13")},
		},
		{
			name: "full line, cut inside a quoted value", width: 20,
			in:   " 0   model=\"/a/b/c-d\n     e.img\" x=1\n",
			want: []Property{pq("model", "/a/b/c-de.img"), p("x", "1")},
		},
		{
			name: "full line, cut inside an unquoted value", width: 24,
			in:   " 0   file-path=/pool/pvc\n     -77c1.img size=1\n",
			want: []Property{p("file-path", "/pool/pvc-77c1.img"), p("size", "1")},
		},
		{
			name: "full line, cut on the space between properties (sample swap=no)", width: 20,
			in:   " 0   a=1 swap=nooooo\n     file-path=/x\n",
			want: []Property{p("a", "1"), p("swap", "nooooo"), p("file-path", "/x")},
		},
		{
			name: "full line, cut inside a key", width: 20,
			in:   " 0   a=123 nvme-tcp-\n     server-port=4420\n",
			want: []Property{p("a", "123"), p("nvme-tcp-server-port", "4420")},
		},
		{
			name: "full line, cut inside a key whose tail is itself a known key", width: 20,
			in:   " 0   aaaaaaa=1 file-\n     size=10.0GiB\n",
			want: []Property{p("aaaaaaa", "1"), p("file-size", "10.0GiB")},
		},
		{
			name: "full line, cut after a multi-word value before a known key", width: 19,
			in:   " 0   type=.img file\n     size=1.5TiB\n",
			want: []Property{p("type", ".img file"), p("size", "1.5TiB")},
		},
		{
			name: "full line, cut inside an unknown key", width: 20,
			in:   " 0   a=1 frobnicate-\n     level=3\n",
			want: []Property{p("a", "1"), p("frobnicate-level", "3")},
		},
		{
			name: "full line, bare word that cannot start a key", width: 18,
			in:   " 0   type=.img x.y\n     zzz=3\n",
			want: []Property{p("type", ".img x.y"), p("zzz", "3")},
		},
		{
			name: "full line, continuation keeps the value's own leading space", width: 14,
			in:   " 0   type=.img\n      file size=1\n",
			want: []Property{p("type", ".img file"), p("size", "1")},
		},
		{
			name: "one column past the width counts as full (sample nqn line)", width: 20,
			in:   " 0   nqn=\"nqn.2000-02\n     .com:x\"\n",
			want: []Property{pq("nqn", "nqn.2000-02.com:x")},
		},
		{
			name: "spaced number cut at a digit", width: 20,
			in:   " 0   aaa=1 size=53 6\n     87 091 200\n",
			want: []Property{p("aaa", "1"), p("size", "53 687 091 200")},
		},
		// RouterOS also cuts short of the width: what is cut decides, not
		// the column.
		{
			name: "short line ending inside a quoted NQN", width: 80,
			in:   " 0   nvme-tcp-server-nqn=\"nqn.20\n     00-02.com.mikrotik:pvc-a\" x=1\n",
			want: []Property{pq("nvme-tcp-server-nqn", "nqn.2000-02.com.mikrotik:pvc-a"), p("x", "1")},
		},
		{
			name: "short line ending inside an unquoted path", width: 80,
			in:   " 0   file-path=/storage-pool/k8s/pvc-3f2a\n     -77c1.img file-size=1.0GiB\n",
			want: []Property{p("file-path", "/storage-pool/k8s/pvc-3f2a-77c1.img"), p("file-size", "1.0GiB")},
		},
		{
			name: "short line ending inside a port number", width: 80,
			in:   " 0   nvme-tcp-server-port=44\n     20 nvme-tcp-export=yes\n",
			want: []Property{p("nvme-tcp-server-port", "4420"), p("nvme-tcp-export", "yes")},
		},
		{
			name: "short line ending inside a key", width: 80,
			in:   " 0   a=1 nvme-tcp-\n     server-port=4420\n",
			want: []Property{p("a", "1"), p("nvme-tcp-server-port", "4420")},
		},
		{
			name: "short line ending right after key=", width: 80,
			in:   " 0   a=1 slot-default=\n     \"\" parent=\"\"\n",
			want: []Property{p("a", "1"), pq("slot-default", ""), pq("parent", "")},
		},
		{
			name: "short line inside a byte count", width: 80,
			in:   " 0   size=53 68\n     7 091 200 a=1\n",
			want: []Property{p("size", "53 687 091 200"), p("a", "1")},
		},
		{
			name: "full line cut on the space of a timestamp", width: 29,
			in:   " 0   last-modified=2025-11-12\n     00:36:13\n",
			want: []Property{p("last-modified", "2025-11-12 00:36:13")},
		},
		{
			name: "full line cut on the space of a file type", width: 14,
			in:   " 0   type=.img\n     file size=1.5TiB\n",
			want: []Property{p("type", ".img file"), p("size", "1.5TiB")},
		},
		{
			name: "short line inside free text keeps the space", width: 80,
			in:   " 0   model=Samsung SSD\n     990 PRO x=1\n",
			want: []Property{p("model", "Samsung SSD 990 PRO"), p("x", "1")},
		},
		{
			name: "escaped quote at the cut", width: 13,
			in:   " 0   m=\"a\\\"b\\\n     \"c\" n=1\n",
			want: []Property{pq("m", "a\"b\"c"), p("n", "1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDetail(tt.in, ParseOptions{Width: tt.width})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0].Properties, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseDetailLayout(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Entry
		wantErr bool
	}{
		{name: "empty output", in: "", want: nil},
		{name: "legend only, other version", in: "Flags: X - disabled, I - inactive\n", want: nil},
		{name: "wrapped legend", in: "Flags: X - disabled; B - blocked; D - dynamic; I - invalid;\n  R - running\n", want: nil},
		{
			name: "flags, comment, two-digit index in column 0, no blank lines",
			in: "Flags: X - disabled\n 9 X type=file slot=\"a\"\n10   ;;; made by hand\n     type=file slot=\"b\"\n" +
				"11 XB type=file\n     slot=\"c\"\n",
			want: []Entry{
				{Index: 9, Flags: "X", Properties: []Property{p("type", "file"), pq("slot", "a")}},
				{Index: 10, Comment: "made by hand", Properties: []Property{p("type", "file"), pq("slot", "b")}},
				{Index: 11, Flags: "XB", Properties: []Property{p("type", "file"), pq("slot", "c")}},
			},
		},
		{
			name: "continuation that starts with digits is not a new entry",
			in:   " 0   size=53\n     687 091 200 x=1\n",
			want: []Entry{{Index: 0, Properties: []Property{p("size", "53 687 091 200"), p("x", "1")}}},
		},
		{
			name: "escapes in quoted values",
			in:   " 0   a=\"q\\\"uote\\\\ \\$x \\3B\\_\" b=\"\"\n",
			want: []Entry{{Index: 0, Properties: []Property{pq("a", "q\"uote\\ $x ; "), pq("b", "")}}},
		},
		{name: "duplicate key is refused", in: " 0   a=1 a=2\n", wantErr: true},
		{name: "unterminated quote", in: " 0   a=\"x\n", wantErr: true},
		{name: "text that is not key=value", in: " 0   hello world\n", wantErr: true},
		{name: "stray column-0 text after entries", in: " 0   a=1\n\nsomething else\n", wantErr: true},
		{name: "garbage after closing quote", in: " 0   a=\"x\"y\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDetail(tt.in, ParseOptions{})
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrFailed) {
					t.Fatalf("want ErrFailed, got %v (%#v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseKeyValue(t *testing.T) {
	tests := []struct {
		in   string
		key  string
		want string
	}{
		{"  name: rds-prod\n", "name", "rds-prod"},
		{"\x1b[m  name: rds\r\n", "name", "rds"},
		{"                   uptime: 3w2d\n                  version: 7.16 (stable)\n               build-time: 2024-10-22 11:13:41\n", "version", "7.16 (stable)"},
		{"               build-time: 2024-10-22 11:13:41\n", "build-time", "2024-10-22 11:13:41"},
	}
	for _, tt := range tests {
		kv, err := ParseKeyValue(tt.in)
		if err != nil || kv[tt.key] != tt.want {
			t.Errorf("ParseKeyValue(%q)[%s] = %q, %v; want %q", tt.in, tt.key, kv[tt.key], err, tt.want)
		}
	}
	if _, err := ParseKeyValue("bad command name frob (line 1 column 2)"); err == nil {
		t.Error("want error for non key-value output")
	}
}

func TestParseNumbersAndTimes(t *testing.T) {
	bytesTests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"53 687 091 200", 53687091200, true},
		{"0", 0, true},
		{"1 649 267 441 664", 1649267441664, true},
		{"9 223 372 036 854 775 808", 0, false},
		{"12a", 0, false},
		{"-1", 0, false},
		{"", 0, false},
	}
	for _, tt := range bytesTests {
		got, err := ParseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v", tt.in, got, err)
		}
	}
	humanTests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"50.0GiB", 50 << 30, true},
		{"1.5TiB", 3 << 39, true},
		{"0", 0, true},
		{"512MiB", 512 << 20, true},
		{"10.0XiB", 0, false},
		{"GiB", 0, false},
	}
	for _, tt := range humanTests {
		got, err := ParseHumanSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseHumanSize(%q) = %d, %v", tt.in, got, err)
		}
	}
	timeTests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"jan/02/2025 10:30:45", time.Date(2025, 1, 2, 10, 30, 45, 0, time.UTC), true},
		{"Dec/31/2024 23:59:59", time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"2025-11-12 00:36:13", time.Date(2025, 11, 12, 0, 36, 13, 0, time.UTC), true},
		{"2025-11-1200:36:13", time.Date(2025, 11, 12, 0, 36, 13, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"2025-13-12 00:36:13", time.Time{}, false},
	}
	for _, tt := range timeTests {
		got, err := ParseTime(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestIsGroupedMatchesGroupDigits(t *testing.T) {
	for _, n := range []string{"0", "7", "12", "123", "1234", "12345", "123456", "1234567", "53687091200", "1649267441664"} {
		if g := groupDigits(n); !isGrouped(g) {
			t.Errorf("isGrouped(%q) = false", g)
		}
	}
	for _, v := range []string{"", " ", "1 ", " 1", "1234", "12 34", "1 2345", "1  234", "a", "1 23a", "123 456 78"} {
		if isGrouped(v) {
			t.Errorf("isGrouped(%q) = true", v)
		}
	}
}

func TestEntryStartMatchesItsRegexp(t *testing.T) {
	re := regexp.MustCompile(`^( *)([0-9]{1,9})([ A-Z*]|$)`)
	for _, l := range []string{"", " ", "0", " 0", " 0 ", "12  type=file", "123456789 x", "1234567890 x", "  7X", "7x", "7*", " a", "07;", "3\t"} {
		m := re.FindStringSubmatchIndex(l)
		ds, de, ok := entryStart(l)
		if ok != (m != nil) || ok && (ds != m[4] || de != m[5]) {
			t.Errorf("entryStart(%q) = %d, %d, %v; regexp says %v", l, ds, de, ok, m)
		}
	}
}
