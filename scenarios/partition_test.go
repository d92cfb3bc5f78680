package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/bubble"

	"github.com/rds-csi/rds-csi/scenarios/runner"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// TestPartitionFencing reads the data plane of partition-fencing.yaml from
// its trace: with restrictHosts the partitioned node's paths are cut (its
// host revoked) before the volumes mount on node-b and never come back;
// without it they are never cut, which is the two-writer hazard the flag
// exists for. It also reports how long the volumes took to move.
func TestPartitionFencing(t *testing.T) {
	bubble.Host(t)
	for _, restrict := range []bool{true, false} {
		sc, err := spec.Load("partition-fencing.yaml")
		if err != nil {
			t.Fatal(err)
		}
		sc.Topology.Controller.RestrictHosts = restrict
		res, err := runner.Run(sc, runner.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Summary.Pass {
			t.Fatalf("restrictHosts %v: %v", restrict, res.Summary.Failures)
		}
		var gone time.Duration
		revoked := map[string]time.Duration{} // volume → when node-a's path was cut
		mounted := map[string]time.Duration{} // volume → when node-b mounted it
		relive := map[string]bool{}           // volume → node-a's path live again after the cut
		sc2 := bufio.NewScanner(bytes.NewReader(res.Trace))
		sc2.Buffer(nil, 1<<20)
		for sc2.Scan() {
			var e struct {
				T    time.Duration  `json:"t"`
				Kind string         `json:"kind"`
				F    map[string]any `json:"f"`
			}
			if err := json.Unmarshal(sc2.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			str := func(k string) string { s, _ := e.F[k].(string); return s }
			switch {
			case e.Kind == "fault.applied" && str("fault") == "node.delete":
				gone = e.T
			case e.Kind == "nvme" && str("node") == "node-a" && str("state") == "revoked":
				revoked[str("volume")] = e.T
			case e.Kind == "nvme" && str("node") == "node-a" && str("state") == "live":
				relive[str("volume")] = true
			case e.Kind == "kubelet" && str("node") == "node-b" && str("op") == "mounted":
				mounted[str("volume")] = e.T
			}
		}
		for _, vol := range []string{"db-1", "db-2"} {
			m, ok := mounted[vol]
			if !ok || gone == 0 {
				t.Fatalf("restrictHosts %v: %s never mounted on node-b after the node was deleted (at %v)", restrict, vol, gone)
			}
			r, cut := revoked[vol]
			switch {
			case restrict && (!cut || r > m):
				t.Errorf("%s: node-a's path cut at %v (cut %v), node-b mounted at %v: want it cut first", vol, r, cut, m)
			case restrict && relive[vol]:
				t.Errorf("%s: node-a's revoked path came back", vol)
			case !restrict && cut:
				t.Errorf("%s: without restrictHosts node-a's path was cut at %v: nothing should revoke it", vol, r)
			}
			t.Logf("restrictHosts %v: %s usable on node-b %v after node-a was deleted", restrict, vol, m-gone)
		}
	}
}
