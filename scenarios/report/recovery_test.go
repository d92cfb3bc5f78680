package report

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// outageUntil is the start of a trace: connected at 0 with pvc-0 attached,
// the connection lost at 10m, and the volumes given waiting to attach on
// node-2 from 20m. The first connect and pvc-0 (created and attached in one
// instant) are no recovery's business.
func outageUntil(tr *synth, waiting ...string) {
	tr.add(0, "rds.state", "state", "connecting", "previous", "disconnected", "failures", 0)
	tr.add(0, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
	tr.add(0, "va", "volume", "pvc-0", "node", "node-1", "op", "create")
	tr.add(0, "va", "volume", "pvc-0", "node", "node-1", "op", "attached")
	tr.add(10*time.Minute, "rds.state", "state", "disconnected", "previous", "connected", "failures", 1, "err", "unavailable")
	for _, v := range waiting {
		tr.add(20*time.Minute, "va", "volume", v, "node", "node-2", "op", "create")
		tr.add(21*time.Minute, "va", "volume", v, "node", "node-2", "op", "attach-failed", "code", "Unavailable")
	}
	tr.add(30*time.Minute, "rds.state", "state", "connecting", "previous", "disconnected", "failures", 1)
	tr.add(30*time.Minute, "rds.state", "state", "disconnected", "previous", "connecting", "failures", 2, "err", "unavailable")
}

// reconnect adds the connection coming back at t, as the manager reports it:
// two events of one instant.
func reconnect(tr *synth, t time.Duration) {
	tr.add(t, "rds.state", "state", "connecting", "previous", "disconnected", "failures", 0)
	tr.add(t, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
}

func completed(tr *synth, t time.Duration) {
	tr.add(t, "k8s.event", "type", "Normal", "reason", "RecoveryCompleted", "object", "Pod/kube-system/rds-csi-controller-0",
		"msg", "every VolumeAttachment of rds.csi.mikrotik.com is attached, 301ms after the RDS connection came back (1 failed attachments re-queued with the external-attacher)")
}

func attached(tr *synth, t time.Duration, vol string) {
	tr.add(t, "va", "volume", vol, "node", "node-2", "op", "attached")
}

func TestRecoveries(t *testing.T) {
	const back = 3*time.Hour + 10*time.Minute
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		build func(tr *synth)
		want  []Recovery
		lines []string
	}{
		{
			name: "one recovery",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1")
				tr.add(back, "fault.applied", "fault", "rds.restart")
				reconnect(tr, back+301*ms)
				// The event sorts before the attach it reports: one instant.
				completed(tr, back+602*ms)
				attached(tr, back+602*ms, "pvc-1")
				tr.add(back+time.Minute, "rds.health", "err", "")
			},
			want: []Recovery{{Start: back + 301*ms, End: back + 602*ms, Done: true, Event: true, Displaced: 1, Attached: 1,
				Restored: back, RestoredBy: "rds.restart", HasRestored: true}},
			lines: []string{"Recovery: RDS back at 3h10m00.301s → every volume attached 0.301 s later · 1 of 1 displaced volume attached · rds.restart 0.301 s before the reconnect"},
		},
		{
			name: "reconnect and completion in one instant",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1", "pvc-2")
				tr.add(back, "fault.ended", "fault", "rds.crash")
				reconnect(tr, back)
				completed(tr, back)
				attached(tr, back, "pvc-1")
				attached(tr, back, "pvc-2")
			},
			want: []Recovery{{Start: back, End: back, Done: true, Event: true, Displaced: 2, Attached: 2,
				Restored: back, RestoredBy: "rds.crash ended", HasRestored: true}},
			lines: []string{"Recovery: RDS back at 3h10m00.000s → every volume attached 0.000 s later · 2 of 2 displaced volumes attached · rds.crash ended 0.000 s before the reconnect"},
		},
		{
			name: "abandoned by a new loss",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1")
				reconnect(tr, time.Hour)
				tr.add(time.Hour+5*time.Second, "rds.state", "state", "disconnected", "previous", "connected", "failures", 1, "err", "unavailable")
				reconnect(tr, 2*time.Hour)
				attached(tr, 2*time.Hour+2*time.Second, "pvc-1")
				completed(tr, 2*time.Hour+2*time.Second)
			},
			want: []Recovery{
				{Start: time.Hour, End: time.Hour + 5*time.Second, Abandoned: true, Displaced: 1},
				{Start: 2 * time.Hour, End: 2*time.Hour + 2*time.Second, Done: true, Event: true, Displaced: 1, Attached: 1},
			},
			lines: []string{
				"Recovery: RDS back at 1h00m00.000s → abandoned: connection lost again 5.000 s later · 0 of 1 displaced volume attached",
				"Recovery: RDS back at 2h00m00.000s → every volume attached 2.000 s later · 1 of 1 displaced volume attached",
			},
		},
		{
			name: "no RecoveryCompleted: the last attach",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1", "pvc-2")
				reconnect(tr, time.Hour)
				attached(tr, time.Hour+3*time.Second, "pvc-1")
				attached(tr, time.Hour+8*time.Second, "pvc-2")
				// Attached after the recovery, not displaced by the outage.
				tr.add(time.Hour+time.Minute, "va", "volume", "pvc-new", "node", "node-2", "op", "create")
				attached(tr, time.Hour+time.Minute+time.Second, "pvc-new")
			},
			want:  []Recovery{{Start: time.Hour, End: time.Hour + 8*time.Second, Done: true, Displaced: 2, Attached: 2}},
			lines: []string{"Recovery: RDS back at 1h00m00.000s → every volume attached 8.000 s later (last attach; no RecoveryCompleted event) · 2 of 2 displaced volumes attached"},
		},
		{
			name: "not finished",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1", "pvc-2")
				reconnect(tr, time.Hour)
				attached(tr, time.Hour+3*time.Second, "pvc-1")
				tr.add(2*time.Hour, "rds.health", "err", "")
			},
			want:  []Recovery{{Start: time.Hour, End: 2 * time.Hour, Displaced: 2, Attached: 1}},
			lines: []string{"Recovery: RDS back at 1h00m00.000s → not finished at the end of the trace, 1h0m0s later · 1 of 2 displaced volumes attached"},
		},
		{
			name: "no reconnect",
			build: func(tr *synth) {
				outageUntil(tr, "pvc-1")
				tr.add(3*time.Hour, "rds.state", "state", "connecting", "previous", "disconnected", "failures", 2)
				tr.add(3*time.Hour, "rds.state", "state", "disconnected", "previous", "connecting", "failures", 3)
			},
		},
		{
			name: "a reconnect that displaced nothing",
			build: func(tr *synth) {
				outageUntil(tr)
				reconnect(tr, time.Hour)
				tr.add(time.Hour+time.Minute, "va", "volume", "pvc-new", "node", "node-2", "op", "create")
				attached(tr, time.Hour+time.Minute, "pvc-new")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr synth
			tc.build(&tr)
			ev := sortedEvents(tr.ev)
			got := Recoveries(ev)
			for i := range got {
				got[i].Msg = "" // checked below
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("Recoveries =\n %+v\nwant\n %+v", got, tc.want)
			}
			var lines []string
			for _, r := range Recoveries(ev) {
				lines = append(lines, r.String())
				if r.Event && !strings.Contains(r.Msg, "301ms after the RDS connection came back") {
					t.Errorf("Msg = %q", r.Msg)
				}
			}
			if strings.Join(lines, "\n") != strings.Join(tc.lines, "\n") {
				t.Errorf("lines:\n %q\nwant\n %q", lines, tc.lines)
			}
		})
	}
}

// TestRecoveryShown: the line of each recovery is in the header of the page
// and after the terminal timeline, and the picture has a lane and a band for
// it; a run without a recovery gets neither.
func TestRecoveryShown(t *testing.T) {
	const want = "RDS back at 3h10m12.000s → every volume attached 8.000 s later (last attach; no RecoveryCompleted event) · 1 of 1 displaced volume attached · rds.crash ended 12.000 s before the reconnect"
	s, ev := outage()
	page := render(t, s, ev)
	svg := svgOf(t, page)
	if !strings.Contains(page, `<ul class="recoveries">`+"\n"+`<li class="done"><b>Recovery:</b> `+esc(want)+"</li>") {
		t.Errorf("page lacks the recovery line %q", want)
	}
	for _, w := range []string{`data-lane="recovery"`, `<rect class="recovery" x=`, `<rect class="recovery-shade" x=`, `class="sw recovery"`} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if i, j := strings.Index(svg, `data-lane="rds"`), strings.Index(svg, `data-lane="recovery"`); i < 0 || j < i {
		t.Error("recovery lane not under the RDS connection")
	}
	var b strings.Builder
	if err := Timeline(&b, ev, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "\nRecovery: "+want+"\n") {
		t.Errorf("timeline does not end with the recovery line:\n%s", b.String()[max(b.Len()-400, 0):])
	}

	page = render(t, Summary{Scenario: "crash"}, crash())
	for _, w := range []string{`<ul class="recoveries">`, `data-lane="recovery"`, `class="recovery-shade"`, `class="sw recovery"`} {
		if strings.Contains(page, w) {
			t.Errorf("run without a recovery has %q", w)
		}
	}
}
