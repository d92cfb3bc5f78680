package deploytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// codeMetrics collects the metric names the Go code registers (Name: "..."
// in prometheus.*Opts under driver/ and emulator/).
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	re := regexp.MustCompile(`Name:\s+"(rds_[a-z0-9_]+)"`)
	root := repoRoot(t)
	for _, dir := range []string{"driver", "emulator"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				out[m[1]] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, must := range []string{"rds_csi_rds_connection_state", "rds_csi_operations_total", "rds_emulator_disks"} {
		if !out[must] {
			t.Fatalf("metric %s not found in the code: the pattern is stale", must)
		}
	}
	return out
}

var metricRE = regexp.MustCompile(`\brds_(?:csi|emulator)_[a-z0-9_]+`)

// referenced returns the metric names in a text, with histogram series
// suffixes mapped to the histogram.
func referenced(text string, known map[string]bool) []string {
	var out []string
	for _, m := range metricRE.FindAllString(text, -1) {
		if !known[m] {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(m, suf); ok && known[base] {
					m = base
				}
			}
		}
		out = append(out, m)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// promQL returns every PromQL expression of the dashboard and the alerts.
func promQL(t *testing.T) map[string][]string {
	t.Helper()
	exprs := map[string][]string{}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(readFile(t, "deploy/kubernetes/components/monitoring/dashboard.json"))))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs["dashboard"] = append(exprs["dashboard"], tg.Expr)
		}
	}
	for _, o := range splitYAML(t, "prometheusrule", readFile(t, "deploy/kubernetes/components/monitoring/prometheusrule.yaml")) {
		v, err := decodeStrict(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range v.(*prometheusRule).Spec.Groups {
			for _, r := range g.Rules {
				exprs["alerts"] = append(exprs["alerts"], r.Expr.String())
			}
		}
	}
	return exprs
}

func TestMonitoringMetricsExist(t *testing.T) {
	known := codeMetrics(t)
	used := map[string]bool{}
	for where, list := range promQL(t) {
		if len(list) < 5 {
			t.Errorf("%s: only %d expressions", where, len(list))
		}
		for _, e := range list {
			names := referenced(e, known)
			if len(names) == 0 {
				t.Errorf("%s: %q uses none of the driver's metrics", where, e)
			}
			for _, n := range names {
				used[n] = true
				if !known[n] {
					t.Errorf("%s: %q uses %s, which the code does not export", where, e, n)
				}
			}
		}
	}
	// The outage the issue describes must be visible.
	for _, must := range []string{"rds_csi_rds_connection_state", "rds_csi_attachment_conflicts_total",
		"rds_csi_attachment_reconcile_total", "rds_csi_attachment_stale_cleared_total", "rds_csi_operations_total"} {
		if !used[must] {
			t.Errorf("neither the dashboard nor the alerts use %s", must)
		}
	}
}

func TestReferencedCatchesUnknownMetric(t *testing.T) {
	known := map[string]bool{"rds_csi_operation_duration_seconds": true}
	got := referenced(`histogram_quantile(0.9, rate(rds_csi_operation_duration_seconds_bucket[5m])) + rds_csi_typo_total`, known)
	if !slices.Equal(got, []string{"rds_csi_operation_duration_seconds", "rds_csi_typo_total"}) {
		t.Fatalf("referenced = %v", got)
	}
}
