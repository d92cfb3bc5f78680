package chaos

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// samples are parameter values by kind: the first is the base value every
// test uses, the others are alternatives to it, in order of preference (an
// alternative may be refused by a fault's own checks: network.latency wants
// its jitter below its latency).
var samples = map[catalog.Kind][]string{
	catalog.String:   {"failure: first", "failure: second"},
	catalog.Duration: {"2s", "3s", "1s"},
	catalog.Count:    {"2", "3"},
	catalog.Seed:     {"5", "6"},
	catalog.Node:     {"node-a", "node-b"},
	catalog.VM:       {"vm-1", "vm-2"},
}

// sampleOf returns the base value of p followed by its alternatives.
func sampleOf(t *testing.T, s Spec, p catalog.Param) []string {
	t.Helper()
	if p.Kind == catalog.Choice {
		return p.Choices
	}
	v, ok := samples[p.Kind]
	if !ok {
		t.Fatalf("%s.%s: no sample values of kind %v", s.Name, p.Name, p.Kind)
	}
	return v
}

// sample gives every required parameter its base value.
func sample(t *testing.T, s Spec) map[string]string {
	t.Helper()
	p := map[string]string{}
	for _, sp := range s.Params {
		if sp.Required {
			p[sp.Name] = sampleOf(t, s, sp)[0]
		}
	}
	return p
}

func TestCatalogue(t *testing.T) {
	want := []string{
		"controller.crash", "controller.restart", "kubevirt.migrate", "leader.loss",
		"network.latency", "network.reset_peer", "network.timeout",
		"node.delete", "node.not-ready", "node.out-of-service",
		"rds.crash", "rds.fail-next", "rds.hang", "rds.latency", "rds.refuse", "rds.restart", "rds.slow-reconnect",
	}
	var got []string
	for _, s := range catalog.All() {
		got = append(got, s.Name)
		if s.Doc == "" {
			t.Errorf("%s has no documentation", s.Name)
		}
		f, err := Lookup(s.Name, sample(t, s))
		if err != nil {
			t.Errorf("Lookup(%s): %v", s.Name, err)
			continue
		}
		if f.Name() != s.Name {
			t.Errorf("Lookup(%s) returned a fault named %s", s.Name, f.Name())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("catalogue %v, want %v", got, want)
	}
}

func TestLookupParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   Fault
	}{
		{"network.latency", map[string]string{"latency": "250ms", "jitter": "10ms", "seed": "42"},
			NetworkLatency{Latency: 250 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 42}},
		{"network.latency", map[string]string{"latency": "1s"}, NetworkLatency{Latency: time.Second}},
		{"network.timeout", nil, NetworkTimeout{}},
		{"network.timeout", map[string]string{"timeout": "30s"}, NetworkTimeout{Timeout: 30 * time.Second}},
		{"network.reset_peer", map[string]string{"timeout": "5s"}, NetworkResetPeer{Timeout: 5 * time.Second}},
		{"rds.fail-next", nil, RDSFailNext{Count: 1, Text: DefaultFailText}},
		{"rds.fail-next", map[string]string{"count": "3", "text": "failure: not enough space"},
			RDSFailNext{Count: 3, Text: "failure: not enough space"}},
		{"rds.latency", map[string]string{"latency": "2s"}, RDSLatency{Latency: 2 * time.Second}},
		{"rds.slow-reconnect", map[string]string{"delay": "90s"}, RDSSlowReconnect{Delay: 90 * time.Second}},
		{"node.not-ready", map[string]string{"node": "node-a"}, NodeNotReady{Node: "node-a", Status: corev1.ConditionUnknown}},
		{"node.not-ready", map[string]string{"node": "node-a", "status": "False"}, NodeNotReady{Node: "node-a", Status: corev1.ConditionFalse}},
		{"node.delete", map[string]string{"node": "node-b"}, NodeDelete{Node: "node-b"}},
		{"node.out-of-service", map[string]string{"node": "node-c"}, NodeOutOfService{Node: "node-c"}},
		{"rds.crash", map[string]string{}, RDSCrash{}},
	} {
		got, err := Lookup(tc.name, tc.params)
		if err != nil {
			t.Errorf("Lookup(%s, %v): %v", tc.name, tc.params, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%s, %v) = %#v, want %#v", tc.name, tc.params, got, tc.want)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  map[string]string
		is      error
		mention []string // the message must say these
	}{
		{"rds.crsh", nil, ErrUnknownFault, []string{`"rds.crsh"`, "rds.crash", "network.latency"}},
		{"network.latency", map[string]string{"latncy": "1s"}, ErrBadParam, []string{`"latncy"`, "latency, jitter, seed"}},
		{"rds.crash", map[string]string{"delay": "1s"}, ErrBadParam, []string{`"delay"`, "none"}},
		{"network.latency", nil, ErrBadParam, []string{"needs", `"latency"`}},
		{"network.latency", map[string]string{"latency": "250"}, ErrBadParam, []string{`latency="250"`, "duration"}},
		{"network.latency", map[string]string{"latency": "-1s"}, ErrBadParam, []string{"negative"}},
		{"network.latency", map[string]string{"latency": "0s"}, ErrBadParam, []string{"positive"}},
		{"network.latency", map[string]string{"latency": "100ms", "jitter": "200ms"}, ErrBadParam, []string{"jitter"}},
		{"network.latency", map[string]string{"latency": "1s", "seed": "-3"}, ErrBadParam, []string{"seed"}},
		{"network.timeout", map[string]string{"timeout": "soon"}, ErrBadParam, []string{"timeout"}},
		{"rds.fail-next", map[string]string{"count": "0"}, ErrBadParam, []string{"count"}},
		{"rds.fail-next", map[string]string{"text": "a\nb"}, ErrBadParam, []string{"one line"}},
		{"rds.slow-reconnect", map[string]string{"delay": "0s"}, ErrBadParam, []string{"delay"}},
		{"node.not-ready", map[string]string{"node": ""}, ErrBadParam, []string{"node"}},
		{"node.not-ready", map[string]string{"node": "a", "status": "True"}, ErrBadParam, []string{"Unknown or False"}},
	} {
		_, err := Lookup(tc.name, tc.params)
		if !errors.Is(err, tc.is) {
			t.Errorf("Lookup(%s, %v) = %v, want %v", tc.name, tc.params, err, tc.is)
			continue
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("Lookup(%s, %v): %q does not mention %s", tc.name, tc.params, err, m)
			}
		}
	}
}

func TestApplyWithoutTarget(t *testing.T) {
	for _, s := range catalog.All() {
		f, err := Lookup(s.Name, sample(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Apply(context.Background(), Targets{}); !errors.Is(err, ErrNoTarget) {
			t.Errorf("%s without targets: %v, want ErrNoTarget", s.Name, err)
		}
	}
}

func TestApplyValidates(t *testing.T) {
	// Faults built in Go, not through Lookup, are checked by Apply.
	for _, f := range []Fault{
		RDSLatency{}, RDSFailNext{}, RDSSlowReconnect{}, NetworkLatency{},
		NetworkTimeout{Timeout: -time.Second}, NetworkResetPeer{Timeout: -time.Second},
		NodeNotReady{}, NodeDelete{}, NodeOutOfService{},
	} {
		if _, err := f.Apply(context.Background(), Targets{}); !errors.Is(err, ErrBadParam) {
			t.Errorf("%#v: %v, want ErrBadParam", f, err)
		}
	}
}

func TestREADMEListsTheCatalogue(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			rows[name] = line
		}
	}
	for _, s := range catalog.All() {
		row, ok := rows[s.Name]
		if !ok {
			t.Errorf("README.md's table has no row for %s", s.Name)
			continue
		}
		for _, p := range s.Params {
			if !strings.Contains(row, "`"+p.Name+"`") {
				t.Errorf("README.md's row for %s does not mention its parameter %s", s.Name, p.Name)
			}
		}
		delete(rows, s.Name)
	}
	for name := range rows {
		t.Errorf("README.md lists %s, which is not in the catalogue", name)
	}
}

// TestMisreadParameterIsAnError: a constructor that reads a parameter
// against its catalogue entry makes Lookup fail with an error (never a
// panic), so the mirror tests report it and a scenario run cannot crash.
func TestMisreadParameterIsAnError(t *testing.T) {
	s, ok := catalog.Lookup(catalog.RDSLatency)
	if !ok {
		t.Fatal("rds.latency is not catalogued")
	}
	p := params{fault: s, values: map[string]string{}, misread: new(error)}
	if v := p.value("no-such-parameter", catalog.Duration); v != "" {
		t.Fatalf("misread value %q, want empty", v)
	}
	if *p.misread == nil || !strings.Contains((*p.misread).Error(), "no-such-parameter") {
		t.Fatalf("misread recorded %v, want an error naming the parameter", *p.misread)
	}
}
