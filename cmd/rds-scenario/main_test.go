package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/internal/bubble"

	"github.com/rds-csi/rds-csi/scenarios/report"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bubble.Host(t)
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

var summaryLine = regexp.MustCompile(`^\S+ (PASS|FAIL) virtual \S+ wall \S+ compression \S+ seed -?\d+$`)

func TestRunPassingScenarioWritesEveryOutput(t *testing.T) {
	dir := t.TempDir()
	htmlOut, traceOut, sumOut := filepath.Join(dir, "r.html"), filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "s.json")
	code, out, errs := runCLI(t, "run", "testdata/passes.yaml", "--report", htmlOut, "--trace", traceOut, "--summary", sumOut,
		"--check-determinism")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	last := lastLine(out)
	if !summaryLine.MatchString(last) || !strings.HasPrefix(last, "short-crash PASS") {
		t.Fatalf("last line %q", last)
	}
	if !strings.Contains(out, "determinism: two runs, one trace hash") || !strings.Contains(out, "rds.crash") {
		t.Fatalf("output lacks the timeline or the determinism check:\n%s", out)
	}
	f, err := os.Open(traceOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := report.Parse(f)
	if err != nil || len(events) == 0 {
		t.Fatalf("trace: %d events, %v", len(events), err)
	}
	var sum report.Summary
	b, _ := os.ReadFile(sumOut)
	if err := json.Unmarshal(b, &sum); err != nil || !sum.Pass || sum.Seed != 12 || sum.TraceHash == "" {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if h, _ := os.ReadFile(htmlOut); !bytes.Contains(h, []byte("short-crash")) {
		t.Fatal("report does not name the scenario")
	}
}

func TestRunFailingScenarioPrintsSeedAndReproduction(t *testing.T) {
	code, out, _ := runCLI(t, "run", "--quiet", "--seed", "99", "testdata/fails.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "FAIL: ") || !strings.Contains(out, "reproduce: rds-scenario run testdata/fails.yaml --seed 99") {
		t.Fatalf("no failure or reproduction command:\n%s", out)
	}
	if last := lastLine(out); !summaryLine.MatchString(last) || !strings.Contains(last, "FAIL") || !strings.HasSuffix(last, "seed 99") {
		t.Fatalf("last line %q", last)
	}
}

func TestBadInvocations(t *testing.T) {
	for _, args := range [][]string{{}, {"fly"}, {"run"}, {"run", "testdata/missing.yaml"}, {"swarm", "--seeds", "5..1"}} {
		if code, out, errs := runCLI(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errs, out)
		}
	}
}

func TestSwarmAndList(t *testing.T) {
	code, out, errs := runCLI(t, "swarm", "--seeds", "3..4")
	if code != 0 || !strings.Contains(lastLine(out), "swarm 3..4: 2 seeds, 0 failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "list", "testdata")
	if code != 0 || !strings.Contains(out, "short-crash") || !strings.Contains(out, "expects-the-impossible") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
}
