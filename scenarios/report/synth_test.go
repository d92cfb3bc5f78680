package report

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// synth builds synthetic traces for the tests, in time order as the engine
// writes them.
type synth struct{ ev []Event }

// add appends an event; kv alternates field names and values.
func (tr *synth) add(t time.Duration, kind trace.Kind, kv ...any) {
	f := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	if len(f) == 0 {
		f = nil
	}
	tr.ev = append(tr.ev, Event{T: t, Kind: kind, Fields: f})
}

// outage is a three-hour RDS crash with the things a real one brings: the
// backoff of reconnect attempts, a node dying and its volume moving, a
// controller failover, Warning events, a failed expectation and a run of
// routine commands and RPCs throughout.
func outage() (Summary, []Event) {
	rng := rand.New(rand.NewPCG(20260205, 1))
	var tr synth
	const (
		crash   = 10 * time.Minute
		recover = 3*time.Hour + 10*time.Minute
		end     = 3*time.Hour + 15*time.Minute
	)
	tr.add(0, "engine.note", "msg", "world built with 3 nodes")
	tr.add(0, "controller", "replica", "ctrl-0", "state", "started")
	tr.add(0, "controller", "replica", "ctrl-1", "state", "started")
	tr.add(0, "rds.state", "state", "connecting", "previous", "disconnected", "failures", 0)
	tr.add(0, "rds.connect", "err", "")
	tr.add(0, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		tr.add(0, "node", "node", n, "state", "created")
		tr.add(0, "node", "node", n, "state", "ready")
	}
	tr.add(2*time.Second, "controller", "replica", "ctrl-0", "state", "leader")
	tr.add(2*time.Second, "controller", "replica", "ctrl-1", "state", "standby")
	tr.add(3*time.Second, "probe", "ready", true)
	for i, v := range []string{"pvc-a", "pvc-b", "pvc-c"} {
		at := 20*time.Second + time.Duration(i)*5*time.Second
		node := fmt.Sprintf("node-%d", i+1)
		tr.add(at, "rpc", "method", "CreateVolume", "key", v, "code", "OK")
		tr.add(at, "rds.command", "cmd", `/disk add type=file file-path="/nvme/`+v+`.img" file-size=1G slot=`+v, "err", "", "out", "a1b2c3")
		tr.add(at+time.Second, "va", "volume", v, "node", node, "op", "create")
		tr.add(at+time.Second, "rpc", "method", "ControllerPublishVolume", "key", v+"@"+node, "code", "OK")
		tr.add(at+2*time.Second, "va", "volume", v, "node", node, "op", "attached")
		tr.add(at+2*time.Second, "k8s.event", "type", "Normal", "reason", "Attached", "object", "PersistentVolume//"+v, "msg", v+" attached to "+node)
	}
	for t := time.Minute; t < end; t += 15 * time.Minute {
		tr.add(t, "invariant", "name", "no-double-attach", "ok", true)
	}
	routine := func(from, to time.Duration, up bool) {
		for t := from; t < to; t += 10 * time.Second {
			if up {
				tr.add(t, "rds.health", "err", "")
				tr.add(t+time.Second, "rds.command", "cmd", `/disk print detail where slot~"pvc-" && type=file`, "err", "", "out", "ffee00")
			} else {
				tr.add(t+time.Second, "rpc", "method", "Probe", "key", "", "code", "OK")
				tr.add(t+time.Second, "probe", "ready", false)
			}
		}
	}
	routine(10*time.Second, crash, true)

	tr.add(crash, "step", "name", "fault rds.crash")
	tr.add(crash, "fault.applied", "fault", "rds.crash", "param.mode", "hard")
	tr.add(crash, "rds.state", "state", "disconnected", "previous", "connected", "failures", 1, "retryIn", "1.02s", "err", "unavailable")
	tr.add(crash+5*time.Second, "probe", "ready", false)
	tr.add(crash+5*time.Second, "expect", "name", "probe not ready within one health interval", "ok", true, "after", "5s")
	tr.add(crash+5*time.Second, "k8s.event", "type", "Warning", "reason", "RDSUnavailable", "object", "Pod/kube-system/rds-csi-controller-0", "msg", "connection to RDS lost")
	// Backoff 1, 2, 4, 8, 16, 16, ... s with ±10% jitter until the crash ends.
	t, failures := crash, 1
	for {
		d := time.Second << min(failures-1, 4)
		d = time.Duration(float64(d) * (0.9 + 0.2*rng.Float64())).Round(10 * time.Millisecond)
		t += d
		if t >= recover {
			break
		}
		tr.add(t, "rds.state", "state", "connecting", "previous", "disconnected", "failures", failures)
		tr.add(t, "rds.connect", "err", "unavailable")
		failures++
		next := time.Duration(float64(time.Second<<min(failures-1, 4)) * 1.0)
		tr.add(t, "rds.state", "state", "disconnected", "previous", "connecting", "failures", failures, "retryIn", next.String(), "err", "unavailable")
	}
	routine(crash+10*time.Second, recover, false)
	tr.add(crash+30*time.Second, "rpc", "method", "CreateVolume", "key", "pvc-during", "code", "Unavailable")
	tr.add(crash+30*time.Second, "expect", "name", "CreateVolume UNAVAILABLE during outage", "ok", true)

	// node-2 dies; its volume is moved to node-3, which cannot attach while RDS is down.
	nd := time.Hour
	tr.add(nd, "node", "node", "node-2", "state", "not-ready")
	tr.add(nd, "k8s.event", "type", "Warning", "reason", "NodeNotReady", "object", "Node//node-2", "msg", `node "node-2" status is now: NodeNotReady & unreachable`)
	tr.add(nd+5*time.Minute, "node", "node", "node-2", "state", "out-of-service")
	tr.add(nd+6*time.Minute, "va", "volume", "pvc-b", "node", "node-2", "op", "detach")
	tr.add(nd+6*time.Minute, "va", "volume", "pvc-b", "node", "node-2", "op", "deleted")
	tr.add(nd+6*time.Minute, "va", "volume", "pvc-b", "node", "node-3", "op", "create")
	for a := nd + 7*time.Minute; a < recover; a += 20 * time.Minute {
		tr.add(a, "va", "volume", "pvc-b", "node", "node-3", "op", "attach-failed", "code", "Unavailable", "msg", "RDS <unavailable>")
		tr.add(a, "k8s.event", "type", "Warning", "reason", "FailedAttachVolume", "object", "VolumeAttachment//csi-pvc-b-node-3", "msg", "rpc error: code = Unavailable")
	}
	tr.add(nd+36*time.Minute, "expect", "name", "pvc-b attached to node-3 within 30m", "ok", false, "within", "30m0s",
		"msg", `still attaching: RDS <unavailable> & retrying`)
	tr.add(2*time.Hour+30*time.Minute, "controller", "replica", "ctrl-0", "state", "crashed")
	tr.add(2*time.Hour+30*time.Minute+15*time.Second, "controller", "replica", "ctrl-1", "state", "leader")
	tr.add(2*time.Hour+31*time.Minute, "controller", "replica", "ctrl-0", "state", "started")
	tr.add(2*time.Hour+31*time.Minute+2*time.Second, "controller", "replica", "ctrl-0", "state", "standby")

	tr.add(recover, "step", "name", "end rds.crash")
	tr.add(recover, "fault.ended", "fault", "rds.crash")
	tr.add(recover+12*time.Second, "rds.state", "state", "connecting", "previous", "disconnected", "failures", failures)
	tr.add(recover+12*time.Second, "rds.connect", "err", "")
	tr.add(recover+12*time.Second, "rds.state", "state", "connected", "previous", "connecting", "failures", 0)
	tr.add(recover+12*time.Second, "expect", "name", "RDS connected within one backoff step", "ok", true, "after", "12s")
	tr.add(recover+15*time.Second, "probe", "ready", true)
	tr.add(recover+20*time.Second, "va", "volume", "pvc-b", "node", "node-3", "op", "attached")
	tr.add(recover+20*time.Second, "attachment.event", "type", "Attached", "volume", "pvc-b", "node", "node-3")
	tr.add(recover+2*time.Minute, "node", "node", "node-2", "state", "ready")
	tr.add(recover+2*time.Minute, "node", "node", "node-2", "state", "in-service")
	routine(recover+30*time.Second, end, true)
	tr.add(end-time.Minute, "expect", "name", "every volume attached exactly once", "ok", true)

	ev := sortedEvents(tr.ev)
	s := Summary{
		Scenario: "rds-crash-2026-02-05", File: "scenarios/testdata/rds-crash-2026-02-05.yaml",
		Seed: 20260205, Pass: false,
		Failures: []string{`expectation "pvc-b attached to node-3 within 30m" not met within 30m0s`},
		Virtual:  end, Wall: 1420 * time.Millisecond, Steps: 5120,
		TraceHash: "9f2c4e0b7a1d3c5e8f60718293a4b5c6d7e8f9011223344556677889900aabbc",
		Events:    len(ev),
		Reproduce: "go run ./cmd/rds-csi-scenario -seed 20260205 scenarios/testdata/rds-crash-2026-02-05.yaml",
	}
	return s, ev
}
