package mountinfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
100 22 7:3 / /var/lib/kubelet/plugins/x/globalmount rw,relatime shared:50 master:2 - ext4 /dev/loop3 rw
101 22 0:6 /loop4 /var/lib/kubelet/pods/p/volumeDevices/with\040space rw,nosuid - devtmpfs devtmpfs rw,size=100k
102 22 0:50 / /mnt/back\134slash\011tab rw - tmpfs tmpfs rw

`
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{"252:1", "/", "/", "ext4", "/dev/vda1"},
		{"7:3", "/", "/var/lib/kubelet/plugins/x/globalmount", "ext4", "/dev/loop3"},
		{"0:6", "/loop4", "/var/lib/kubelet/pods/p/volumeDevices/with space", "devtmpfs", "devtmpfs"},
		{"0:50", "/", "/mnt/back\\slash\ttab", "tmpfs", "tmpfs"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mounts, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"1 2 3", "1 2 7:0 / /x rw - ext4"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        "plain",
		`a\040b`:       "a b",
		`\134`:         `\`,
		`end\04`:       `end\04`,
		`\999`:         `\999`,
		`x\012y\011z`:  "x\ny\tz",
		`trailing\`:    `trailing\`,
		`\040\040\040`: "   ",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
