package control

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/faults"
)

type fakeTarget struct {
	serving  bool
	restarts int
	inj      *faults.Injector
}

func (f *fakeTarget) Crash()                   { f.serving = false }
func (f *fakeTarget) Restart() error           { f.serving = true; f.restarts++; return nil }
func (f *fakeTarget) Serving() bool            { return f.serving }
func (f *fakeTarget) Faults() *faults.Injector { return f.inj }

func TestControlAPI(t *testing.T) {
	tgt := &fakeTarget{serving: true, inj: faults.New(clock.FromLibrary(libclock.NewMock()))}
	srv := httptest.NewServer(Handler(tgt))
	defer srv.Close()

	steps := []struct {
		method, path string
		code         int
		check        func(Status) bool
	}{
		{"POST", "/crash", 200, func(s Status) bool { return !s.Serving }},
		{"POST", "/restart", 200, func(s Status) bool { return s.Serving }},
		{"POST", "/restart", 200, func(s Status) bool { return s.Serving && tgt.restarts == 1 }},
		{"POST", "/faults/latency?duration=250ms", 200, func(s Status) bool { return s.Faults.Latency == 250*time.Millisecond }},
		{"POST", "/faults/latency?duration=soon", 400, nil},
		{"POST", "/faults/fail-next?count=3&text=failure:%20not%20enough%20space", 200, func(s Status) bool {
			return s.Faults.FailNext == 3 && s.Faults.FailText == "failure: not enough space"
		}},
		{"POST", "/faults/fail-next?count=-1", 400, nil},
		{"POST", "/faults/hang?count=2", 200, func(s Status) bool { return s.Faults.HangNext == 2 }},
		{"POST", "/faults/hang", 200, func(s Status) bool { return s.Faults.HangAll }},
		{"POST", "/faults/release", 200, func(s Status) bool { return !s.Faults.HangAll && s.Faults.HangNext == 0 }},
		{"POST", "/faults/reject?enabled=true", 200, func(s Status) bool { return s.Faults.RejectConnections }},
		{"POST", "/faults/reject?enabled=maybe", 400, nil},
		{"POST", "/faults/reply?mode=truncate&match=print&count=2&seed=7", 200, func(s Status) bool {
			return len(s.Faults.Replies) == 1 && s.Faults.Replies[0].Mode == faults.ReplyTruncate && s.Faults.Replies[0].Count == 2
		}},
		{"POST", "/faults/reply?mode=melt", 400, nil},
		{"POST", "/faults/reply?mode=empty&match=(", 400, nil},
		{"POST", "/faults/reply?mode=empty&count=-1", 400, nil},
		{"POST", "/faults/clear", 200, func(s Status) bool { return reflect.DeepEqual(s.Faults, faults.State{}) }},
		{"GET", "/status", 200, func(s Status) bool { return s.Serving }},
		{"GET", "/crash", 405, nil},
	}
	for _, st := range steps {
		req, _ := http.NewRequest(st.method, srv.URL+st.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", st.method, st.path, err)
		}
		var s Status
		if st.code == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatalf("%s %s: decode: %v", st.method, st.path, err)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != st.code {
			t.Fatalf("%s %s: status %d, want %d", st.method, st.path, resp.StatusCode, st.code)
		}
		if st.check != nil && !st.check(s) {
			t.Fatalf("%s %s: unexpected status %+v", st.method, st.path, s)
		}
	}
}
