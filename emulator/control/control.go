package control

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/rds-csi/rds-csi/emulator/faults"
)

// Target is what the control API drives; *emulator.Emulator implements it.
type Target interface {
	Crash()
	Restart() error
	Serving() bool
	Faults() *faults.Injector
}

// Status is the answer to every request: whether SSH is being served and which
// faults are active.
type Status struct {
	Serving bool         `json:"serving"`
	Faults  faults.State `json:"faults"`
}

// Handler returns the control API:
//
//	GET  /status                          current Status
//	POST /crash                           drop connections, stop listening
//	POST /restart                         listen again
//	POST /faults/latency?duration=250ms   delay every command (0 turns off)
//	POST /faults/fail-next?count=3&text=failure:%20not%20enough%20space
//	POST /faults/hang?count=N             hang the next N commands (no count: all)
//	POST /faults/release                  release hung commands
//	POST /faults/reject?enabled=true      refuse new connections
//	POST /faults/reply?mode=truncate&match=print&count=1&width=60&seed=7
//	                                      mangle replies of matching commands
//	                                      (modes: faults.ReplyModes)
//	POST /faults/clear                    turn every fault off
//
// The endpoint is an unauthenticated switchboard for tests: anyone who can
// reach it can crash the emulator. Bind it to loopback only.
func Handler(t Target) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Status{Serving: t.Serving(), Faults: t.Faults().Snapshot()})
	}
	bad := func(w http.ResponseWriter, msg string) { http.Error(w, msg, http.StatusBadRequest) }

	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { reply(w) })
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) {
		t.Crash()
		reply(w)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		if !t.Serving() {
			if err := t.Restart(); err != nil {
				http.Error(w, "restart: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		reply(w)
	})
	mux.HandleFunc("POST /faults/latency", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("duration"))
		if err != nil || d < 0 {
			bad(w, "duration: want a Go duration such as 250ms")
			return
		}
		t.Faults().SetLatency(d)
		reply(w)
	})
	mux.HandleFunc("POST /faults/fail-next", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("count"))
		if err != nil || n < 0 {
			bad(w, "count: want a non-negative integer")
			return
		}
		t.Faults().FailNext(n, r.URL.Query().Get("text"))
		reply(w)
	})
	mux.HandleFunc("POST /faults/hang", func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("count")
		if c == "" {
			t.Faults().HangAll()
			reply(w)
			return
		}
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			bad(w, "count: want a non-negative integer")
			return
		}
		t.Faults().HangNext(n)
		reply(w)
	})
	mux.HandleFunc("POST /faults/release", func(w http.ResponseWriter, r *http.Request) {
		t.Faults().Release()
		reply(w)
	})
	mux.HandleFunc("POST /faults/reject", func(w http.ResponseWriter, r *http.Request) {
		on, err := strconv.ParseBool(r.URL.Query().Get("enabled"))
		if err != nil {
			bad(w, "enabled: want true or false")
			return
		}
		t.Faults().RejectConnections(on)
		reply(w)
	})
	mux.HandleFunc("POST /faults/reply", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := faults.ReplyFault{Match: q.Get("match"), Mode: faults.ReplyMode(q.Get("mode"))}
		for _, p := range []struct {
			name string
			dst  *int
		}{{"count", &f.Count}, {"width", &f.Width}} {
			if v := q.Get(p.name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					bad(w, p.name+": want a non-negative integer")
					return
				}
				*p.dst = n
			}
		}
		if v := q.Get("seed"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				bad(w, "seed: want a non-negative integer")
				return
			}
			f.Seed = n
		}
		if err := t.Faults().AddReplyFault(f); err != nil {
			bad(w, err.Error())
			return
		}
		reply(w)
	})
	mux.HandleFunc("POST /faults/clear", func(w http.ResponseWriter, r *http.Request) {
		t.Faults().Clear()
		reply(w)
	})
	return mux
}
