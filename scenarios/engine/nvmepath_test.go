package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

type fakeBox struct {
	serving bool
	crashes uint64
	denied  map[string]bool // host NQN → the export refuses it
}

func (b *fakeBox) Serving() bool                 { return b.serving }
func (b *fakeBox) Crashes() uint64               { return b.crashes }
func (b *fakeBox) Admits(_, hostNQN string) bool { return !b.denied[hostNQN] }

// TestNVMePathRevoked: the modelled target cuts a live path whose host the
// allow-list drops, refuses its reconnect tries while it stays dropped, and
// takes it back at the first try after the host is allowed again; a host
// never allowed back is deleted at ctrl_loss_tmo like any lost path.
func TestNVMePathRevoked(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tc := range []struct {
		name    string
		allowAt time.Duration // 0: never allowed again
		want    []string
	}{
		{"never allowed again", 0, []string{"revoked@1s", "deleted@1m1s"}},
		{"allowed again", 25 * time.Second, []string{"revoked@1s", "live@31s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := &fakeBox{serving: true, denied: map[string]bool{}}
			p, err := newPath(dataplane.Target{VolumeID: "v", HostNQN: "h", CtrlLossTmo: "60", ReconnectDelay: "10"}, "n", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			record := func(now time.Time) {
				for _, s := range p.step(now, box) {
					got = append(got, s+"@"+now.Sub(t0).String())
				}
			}
			record(t0)
			if !p.working() {
				t.Fatal("an allowed live path does not carry I/O")
			}
			box.denied["h"] = true
			now := t0.Add(time.Second)
			record(now)
			if p.working() {
				t.Fatal("a revoked path still carries I/O")
			}
			for i := 0; i < 20; i++ {
				next, ok := p.due(now)
				if !ok {
					break
				}
				if tc.allowAt > 0 && !next.Before(t0.Add(tc.allowAt)) {
					box.denied["h"] = false
				}
				now = next
				record(now)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("transitions %v, want %v", got, tc.want)
			}
		})
	}
}

// The kernel's timing: tries every reconnect_delay from the loss, deletion
// after ceil(ctrl_loss_tmo/reconnect_delay) failed tries, fail-fast at its
// own timeout, live at the first try that finds RDS serving.
func TestNVMePathReconnectTiming(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name     string
		target   dataplane.Target
		backAt   time.Duration // RDS serves again; 0: never
		until    time.Duration
		want     []string // "state@offset"
		deadline bool
	}{
		{name: "kernel defaults give up after ten minutes", target: dataplane.Target{}, until: time.Hour,
			want: []string{"connecting@0s", "deleted@10m0s"}},
		{name: "reconnect forever", target: dataplane.Target{CtrlLossTmo: "-1", ReconnectDelay: "5"}, backAt: 3 * time.Hour, until: 4 * time.Hour,
			want: []string{"connecting@0s", "live@3h0m0s"}},
		{name: "back between tries waits for the next", target: dataplane.Target{CtrlLossTmo: "-1", ReconnectDelay: "10"}, backAt: 61 * time.Second,
			until: time.Hour, want: []string{"connecting@0s", "live@1m10s"}},
		{name: "rounding up the tries", target: dataplane.Target{CtrlLossTmo: "25", ReconnectDelay: "10"}, until: time.Hour,
			want: []string{"connecting@0s", "deleted@30s"}},
		{name: "fail fast, then live", target: dataplane.Target{CtrlLossTmo: "-1", ReconnectDelay: "10", FastIOFailTmo: "15"}, backAt: 40 * time.Second,
			until: time.Hour, want: []string{"connecting@0s", "fail-fast@15s", "live@40s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := &fakeBox{serving: true}
			p, err := newPath(tc.target, "n", box.Crashes())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			record := func(now time.Time) {
				for _, s := range p.step(now, box) {
					got = append(got, s+"@"+now.Sub(t0).String())
				}
			}
			box.serving, box.crashes = false, 1
			record(t0)
			// Step as the engine does: from one due instant to the next,
			// with RDS's return as an instant of its own.
			now := t0
			for now.Before(at(tc.until)) {
				next, ok := p.due(now)
				back := at(tc.backAt)
				if tc.backAt > 0 && !box.serving && (!ok || !next.Before(back)) {
					now, box.serving = back, true
				} else if !ok {
					break
				} else {
					now = next
				}
				record(now)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("transitions %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNVMePathRejectsBadOptions(t *testing.T) {
	_, err := newPath(dataplane.Target{CtrlLossTmo: "ten"}, "n", 0)
	if err == nil || !strings.Contains(err.Error(), "ctrl-loss-tmo") {
		t.Fatalf("bad ctrl-loss-tmo: %v", err)
	}
}

// A surviving node keeps its mounted volume through a long outage with the
// driver's defaults; with ctrlLossTmo 600 (nvme-cli's default) the kernel
// drops it and survivors-keep-volumes names the volume and node.
func TestSurvivorsKeepVolumes(t *testing.T) {
	{
		for _, tc := range []struct {
			name   string
			params map[string]string
			broken bool
		}{
			{"driver default", nil, false},
			{"ctrl-loss-tmo 600", map[string]string{"ctrlLossTmo": "600"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w, err := NewWorld(Options{Seed: 7})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(w.Close)
					if err := w.CreateVolume(Volume{Name: "web", Size: 1 << 30, Params: tc.params}, "node-1"); err != nil {
						t.Fatal(err)
					}
					err = w.Run([]Step{Fault(time.Minute, "rds.crash", nil), End(time.Minute+30*time.Minute, "rds.crash"),
						{At: 40 * time.Minute, Name: "end", Do: func(*World) error { return nil }}})
					if err != nil {
						t.Fatal(err)
					}
					var kept []Violation
					for _, v := range w.Violations() {
						if v.Invariant == InvSurvivorsKeep {
							kept = append(kept, v)
						}
					}
					if tc.broken != (len(kept) == 1) || len(kept) > 1 {
						t.Fatalf("violations %v, want broken=%v", kept, tc.broken)
					}
					if tc.broken && !strings.Contains(kept[0].Msg, "volume web") || tc.broken && !strings.Contains(kept[0].Msg, "node-1") {
						t.Fatalf("violation does not name the volume and node: %v", kept[0])
					}
					var states []string
					for _, e := range w.Trace().Events() {
						if e.Kind == "nvme" {
							states = append(states, e.Fields["state"].(string))
						}
					}
					want := []string{"connecting", "live"}
					if tc.broken {
						want = []string{"connecting", "deleted"}
					}
					if !slices.Equal(states, want) {
						t.Fatalf("path states %v, want %v", states, want)
					}
				})
			})
		}
	}
}

// TestSimTargetRefusesHostNotAllowed: with RestrictHosts the simulated
// target reads the allow-list the controller wrote to the emulator and
// refuses a connect from any other node's host NQN, while the node holding
// the claim connects; without it any host connects, as before.
func TestSimTargetRefusesHostNotAllowed(t *testing.T) {
	for _, restrict := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			w, err := NewWorld(Options{Seed: 3, RestrictHosts: restrict})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Close)
			if err := w.CreateVolume(Volume{Name: "db", Size: 1 << 30}, "node-1"); err != nil {
				t.Fatal(err)
			}
			if err := w.Run([]Step{{At: time.Minute, Name: "end", Do: func(*World) error { return nil }}}); err != nil {
				t.Fatal(err)
			}
			v := w.kube.vols["db"]
			d, ok := w.Emulator.Store().DiskBySlot(v.ID)
			if !ok {
				t.Fatal("no disk")
			}
			for _, node := range []string{"node-1", "node-2"} {
				host := ""
				if restrict {
					host = "nqn.2026-12.io.rds-csi:node:" + node
				}
				_, err := w.nodes[node].plane.Attach(w.ctx, dataplane.Target{VolumeID: v.ID, NQN: "nqn.x:" + v.ID, HostNQN: host})
				refused := errors.Is(err, dataplane.ErrHostNotAllowed)
				if want := restrict && node == "node-2"; refused != want || (!want && err != nil) {
					t.Errorf("restrict %v: attach on %s (export allows %q): %v, want refused=%v", restrict, node, d.NVMeTCPServerAllowHostName, err, want)
				}
			}
		})
	}
}
