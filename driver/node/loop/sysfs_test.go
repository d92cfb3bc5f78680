package loop

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseMountInfo(t *testing.T) {
	in := `22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
100 22 7:3 / /var/lib/kubelet/plugins/x/globalmount rw,relatime shared:50 master:2 - ext4 /dev/loop3 rw
101 22 0:6 /loop4 /var/lib/kubelet/pods/p/volumeDevices/with\040space rw,nosuid - devtmpfs devtmpfs rw,size=100k
102 22 0:50 / /mnt/back\134slash\011tab rw - tmpfs tmpfs rw

`
	got, err := parseMountInfo(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
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
		if _, err := parseMountInfo(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("parseMountInfo(%q) succeeded", bad)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
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
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoopNum(t *testing.T) {
	for in, want := range map[string]int{"loop0": 0, "loop12": 12, "loop007": 7} {
		if got, ok := loopNum(in); !ok || got != want {
			t.Errorf("loopNum(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"loop", "loop-control", "loop1p2", "vda", "zram0", "loopx"} {
		if _, ok := loopNum(in); ok {
			t.Errorf("loopNum(%q) accepted", in)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	if d := retryDelay(1); d != 0 {
		t.Errorf("first retry waits %v, want 0", d)
	}
	prev := time.Duration(0)
	for a := 2; a < 100; a++ {
		d := retryDelay(a)
		if d < prev || d > maxRetryDelay || d <= 0 {
			t.Fatalf("retryDelay(%d) = %v after %v", a, d, prev)
		}
		prev = d
	}
	if prev != maxRetryDelay {
		t.Fatalf("delays top out at %v, want %v", prev, maxRetryDelay)
	}
}

func TestKeyedLock(t *testing.T) {
	var k keyedLock
	unlockA, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is independent.
	unlockB, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	// The same key waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held key: %v", err)
	}
	got := make(chan struct{})
	go func() {
		u, err := k.lock(context.Background(), "a")
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("lock of a held key did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-got
	if n := k.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
