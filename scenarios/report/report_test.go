package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseRoundTrip(t *testing.T) {
	in := []Event{
		{T: 0, Kind: "rds.state", Fields: map[string]any{"state": "connected", "failures": 0}},
		{T: 10 * time.Minute, Kind: "rds.command", Fields: map[string]any{"cmd": `/disk print where slot~"pvc-" && x<1`, "err": "", "out": "a1b2"}},
		{T: 10*time.Minute + 1, Kind: "probe", Fields: map[string]any{"ready": false}},
		{T: 3 * time.Hour, Kind: "step"},
		{T: 3 * time.Hour, Kind: "rds.state", Fields: map[string]any{"retryInNs": int64(1<<62 + 1)}},
	}
	var want bytes.Buffer
	for _, e := range in {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want.Write(b)
		want.WriteByte('\n')
	}
	got, err := Parse(bytes.NewReader(want.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("parsed %d events, want %d", len(got), len(in))
	}
	var again bytes.Buffer
	for _, e := range got {
		b, _ := json.Marshal(e)
		again.Write(b)
		again.WriteByte('\n')
	}
	if again.String() != want.String() {
		t.Errorf("round trip changed the trace:\n got %s\nwant %s", again.String(), want.String())
	}
	if got[1].Text("cmd") != in[1].Fields["cmd"] || got[1].T != 10*time.Minute {
		t.Errorf("event 1 = %+v", got[1])
	}
	if ready, ok := got[2].Flag("ready"); !ok || ready {
		t.Errorf("ready = %v, %v; want false, true", ready, ok)
	}
}

func TestParseErrorNamesLine(t *testing.T) {
	for name, tc := range map[string]struct {
		trace string
		line  string
	}{
		"bad json":      {"{\"t\":0,\"kind\":\"step\"}\n\n{\"t\":1,\"kind\":\n{\"t\":2,\"kind\":\"step\"}\n", "line 3"},
		"no kind":       {"{\"t\":0,\"kind\":\"step\"}\n{\"t\":1}\n", "line 2"},
		"two on a line": {"{\"t\":0,\"kind\":\"step\"} {\"t\":1,\"kind\":\"step\"}\n", "line 1"},
		"bad time":      {"{\"t\":0,\"kind\":\"a\"}\n{\"t\":0,\"kind\":\"a\"}\n{\"t\":0,\"kind\":\"a\"}\n{\"t\":\"1s\",\"kind\":\"a\"}", "line 4"},
	} {
		_, err := Parse(strings.NewReader(tc.trace))
		if err == nil || !strings.Contains(err.Error(), tc.line+":") {
			t.Errorf("%s: error %v, want one naming %s", name, err, tc.line)
		}
	}
	ev, err := Parse(strings.NewReader("\n{\"t\":5,\"kind\":\"step\"}")) // no final newline
	if err != nil || len(ev) != 1 || ev[0].T != 5 {
		t.Errorf("Parse = %v, %v", ev, err)
	}
}

func TestLine(t *testing.T) {
	s := Summary{Scenario: "rds-crash-2026-02-05", Seed: 20260205, Pass: true,
		Virtual: 3*time.Hour + 15*time.Minute, Wall: 1420 * time.Millisecond}
	if got, want := s.Line(), "rds-crash-2026-02-05 PASS virtual 3h15m0s wall 1.42s compression 8239x seed 20260205"; got != want {
		t.Errorf("pass:\n got %q\nwant %q", got, want)
	}
	s.Pass, s.Failures = false, []string{"expectation x not met"}
	s.Wall = 1423817362 // measured: three significant digits are shown
	if got, want := s.Line(), "rds-crash-2026-02-05 FAIL virtual 3h15m0s wall 1.42s compression 8217x seed 20260205"; got != want {
		t.Errorf("fail:\n got %q\nwant %q", got, want)
	}
	s = Summary{Scenario: "short", Seed: -1, Pass: true, Virtual: 10 * time.Second, Wall: 0}
	if got, want := s.Line(), "short PASS virtual 10s wall 0s compression n/a seed -1"; got != want {
		t.Errorf("no wall time:\n got %q\nwant %q", got, want)
	}
	s.Wall = 4 * time.Second
	if got, want := s.Line(), "short PASS virtual 10s wall 4s compression 2.5x seed -1"; got != want {
		t.Errorf("slow run:\n got %q\nwant %q", got, want)
	}
	s.Scenario = "evil\x1b[2J\nname"
	if got := s.Line(); strings.ContainsAny(got, "\x1b\n") {
		t.Errorf("control characters reach the terminal: %q", got)
	}
}

func TestCompression(t *testing.T) {
	for _, tc := range []struct {
		virtual, wall time.Duration
		want          float64
	}{
		{3*time.Hour + 15*time.Minute, 1420 * time.Millisecond, 11700 / 1.42},
		{time.Hour, time.Second, 3600},
		{time.Second, 2 * time.Second, 0.5},
		{time.Hour, 0, 0},
		{0, time.Second, 0},
	} {
		got := Summary{Virtual: tc.virtual, Wall: tc.wall}.Compression()
		if diff := got - tc.want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("Compression(%v / %v) = %v, want %v", tc.virtual, tc.wall, got, tc.want)
		}
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "  0h00m00.000s",
		3*time.Hour + 10*time.Minute + 5*time.Second: "  3h10m05.000s",
		10*time.Minute + 1090*time.Millisecond:       "  0h10m01.090s",
		125 * time.Hour:                              "125h00m00.000s",
		-time.Second:                                 " -0h00m01.000s",
	} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
}
