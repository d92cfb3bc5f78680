package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// crash is a short synthetic trace: RDS crashes at 10m and comes back after
// a dozen failed reconnects; node-2 goes not-ready; volumes attach and
// detach; one expectation fails. Routine events are counted exactly.
func crash() []Event {
	var tr synth
	tr.add(0, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
	tr.add(time.Second, "probe", "ready", true)
	tr.add(2*time.Second, "node", "node", "node-2", "state", "ready")
	for i := range 37 {
		tr.add(5*time.Second+time.Duration(i)*10*time.Second, "rds.command", "cmd", "/disk print detail", "err", "", "out", "ab12")
	}
	for i := range 12 {
		tr.add(6*time.Second+time.Duration(i)*time.Second, "rpc", "method", "NodeGetInfo", "key", "", "code", "OK")
	}
	tr.add(9*time.Minute, "va", "volume", "pvc-1", "node", "node-2", "op", "create")
	tr.add(9*time.Minute+time.Second, "va", "volume", "pvc-1", "node", "node-2", "op", "attached")
	tr.add(10*time.Minute, "fault.applied", "fault", "rds.crash")
	tr.add(10*time.Minute, "rds.state", "state", "disconnected", "previous", "connected", "failures", 1, "retryIn", "1.02s", "err", "unavailable")
	at := 10 * time.Minute
	for n := 1; n <= 12; n++ {
		at += time.Duration(n) * time.Second
		tr.add(at, "rds.state", "state", "connecting", "previous", "disconnected", "failures", n)
		tr.add(at, "rds.command", "cmd", "/interface print", "err", "unavailable", "out", "")
		tr.add(at, "rds.state", "state", "disconnected", "previous", "connecting", "failures", n+1, "retryIn", fmt.Sprintf("%ds", n+1), "err", "unavailable")
	}
	tr.add(15*time.Minute, "node", "node", "node-2", "state", "not-ready")
	tr.add(16*time.Minute, "va", "volume", "pvc-1", "node", "node-2", "op", "detach")
	tr.add(17*time.Minute, "expect", "name", "pvc-1 moved to node-3", "ok", false, "within", "1m0s", "msg", "no <node-3> & no retry")
	tr.add(20*time.Minute, "fault.ended", "fault", "rds.crash")
	tr.add(20*time.Minute+3*time.Second, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
	tr.add(20*time.Minute+3*time.Second, "invariant", "name", "single-attach", "ok", false, "msg", "pvc-1 on 2 nodes")
	return tr.ev
}

func TestTimeline(t *testing.T) {
	var b strings.Builder
	if err := Timeline(&b, crash(), false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, want := range []string{
		"  0h00m00.000s  RDS       connected",
		"  0h00m01.000s  PROBE     ready",
		"                … 37 RouterOS commands, 12 RPCs",
		"  0h09m00.000s  VA        pvc-1 attach requested on node-2",
		"  0h09m01.000s  VA        pvc-1 attached to node-2",
		"  0h10m00.000s  FAULT     rds.crash applied",
		"  0h10m00.000s  RDS       connection lost · unavailable · 1 failure · retry in 1.02s",
		"  0h10m01.000s  RDS       connecting · 1 failure",
		"  0h10m01.000s  RDS       attempt failed · unavailable · 2 failures · retry in 2s",
		"                … 9 more failed reconnect attempts (last retry in 13s), 10 RouterOS commands (10 failed)",
		"  0h15m00.000s  NODE      node-2 not-ready",
		"  0h16m00.000s  VA        pvc-1 detached from node-2",
		"  0h17m00.000s  EXPECT    FAIL pvc-1 moved to node-3 (not within 1m0s): no <node-3> & no retry",
		"  0h20m00.000s  FAULT     rds.crash ended",
		"  0h20m03.000s  RDS       connected again after 10m3s (13 failures)",
		"  0h20m03.000s  INVARIANT FAIL single-attach: pvc-1 on 2 nodes",
	} {
		if !contains(lines, want) {
			t.Errorf("no line %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "/disk") || strings.Contains(out, "/interface") || strings.Contains(out, "rds.command") {
		t.Errorf("RouterOS commands listed one by one:\n%s", out)
	}
	if n := strings.Count(out, "RDS       "); n != 9 {
		t.Errorf("%d RDS rows, want 9 (loss, 3 attempts shown as 2 rows each, the reconnect): outage not folded\n%s", n, out)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestTimelineColor(t *testing.T) {
	var plain, color strings.Builder
	if err := Timeline(&plain, crash(), false); err != nil {
		t.Fatal(err)
	}
	if err := Timeline(&color, crash(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("colour without asking")
	}
	c := color.String()
	for _, want := range []string{
		"\x1b[1;31m  0h17m00.000s  EXPECT    FAIL", // failure: red
		"\x1b[33m  0h10m00.000s  FAULT     rds.crash applied\x1b[0m",
		"\x1b[32m  0h20m03.000s  RDS       connected again",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("no %q in\n%s", want, c)
		}
	}
}

// TestTimelineFolds checks that bursts stay readable: 500 VolumeAttachments
// attached at once are three rows and a count, and a hostile message cannot
// break a row or send escapes to the terminal.
func TestTimelineFolds(t *testing.T) {
	var tr synth
	for i := range 500 {
		tr.add(time.Minute, "va", "volume", fmt.Sprintf("pvc-%03d", i), "node", "node-1", "op", "attached")
	}
	tr.add(2*time.Minute, "k8s.event", "type", "Warning", "reason", "Evil", "msg", "line\nbreak\x1b[2J")
	tr.add(3*time.Minute, "mystery.kind", "x", 1)
	var b strings.Builder
	if err := Timeline(&b, tr.ev, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("%d lines, want 6:\n%s", n, out)
	}
	if !strings.Contains(out, "… 497 more VolumeAttachments attached\n") {
		t.Errorf("burst not folded:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, "line break\uFFFD[2J") {
		t.Errorf("message not cleaned:\n%q", out)
	}
	if !strings.Contains(out, "… 1 other event") {
		t.Errorf("unknown kind not counted:\n%s", out)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTimelineWriteError(t *testing.T) {
	if err := Timeline(failWriter{}, crash(), false); err == nil {
		t.Error("write error lost")
	}
	s, ev := outage()
	if err := HTML(failWriter{}, s, ev); err == nil {
		t.Error("HTML write error lost")
	}
}
