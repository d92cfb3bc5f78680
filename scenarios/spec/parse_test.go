package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const incident = "testdata/rds-crash-2026-02-05.yaml"

// TestIncident parses the scenario sketch (adapted to the format) and checks
// every concrete value the runner will read.
func TestIncident(t *testing.T) {
	s, err := Load(incident)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "rds-crash-2026-02-05" || s.Seed != 20260205 || !strings.HasPrefix(s.Description, "RDS storage crashes") {
		t.Errorf("header: name %q seed %d description %q", s.Name, s.Seed, s.Description)
	}
	wantTopo := Topology{
		Nodes: []string{"node-a", "node-b", "node-c", "node-d"},
		RDS:   RDSSpec{Pool: "storage-pool", Size: 8 << 40},
		Controller: ControllerSpec{Replicas: 2, GracePeriod: 30 * time.Second,
			ReconcileInterval: 5 * time.Minute, MigrationWindow: DefaultMigrationWindow},
	}
	if !reflect.DeepEqual(s.Topology, wantTopo) {
		t.Errorf("topology = %+v, want %+v", s.Topology, wantTopo)
	}

	var want []Volume
	for i := 1; i <= 6; i++ {
		want = append(want, Volume{Name: fmt.Sprintf("db-%d", i), Size: 20 << 30, Access: RWO, Mode: Filesystem, AttachedTo: "node-a"})
	}
	for i := 1; i <= 4; i++ {
		want = append(want, Volume{Name: fmt.Sprintf("vm-%d", i), Size: 50 << 30, Access: RWX, Mode: Block, AttachedTo: "node-b"})
	}
	if got := s.AllVolumes(); !reflect.DeepEqual(got, want) {
		t.Errorf("volumes:\n got %+v\nwant %+v", got, want)
	}
	if len(s.Volumes) != 2 || s.Volumes[0].Pattern != "db-{1..6}" || s.Volumes[1].Pattern != "vm-{1..4}" {
		t.Errorf("volume sets = %+v", s.Volumes)
	}

	m := func(d string) time.Duration { dd, _ := time.ParseDuration(d); return dd }
	wantAt := []time.Duration{m("10m"), m("10m5s"), m("40m"), m("45m"), m("3h10m"), m("3h10m")}
	var gotAt []time.Duration
	for _, st := range s.Timeline {
		gotAt = append(gotAt, st.At)
	}
	if !slices.Equal(gotAt, wantAt) {
		t.Errorf("step times = %v, want %v", gotAt, wantAt)
	}

	wantDo := []*Action{
		{Name: "rds.crash", Params: map[string]string{}},
		nil,
		{Name: "node.not-ready", Params: map[string]string{"node": "node-a"}},
		{Name: "node.delete", Params: map[string]string{"node": "node-a"}},
		{Name: "rds.restart", Params: map[string]string{}},
		nil,
	}
	for i, st := range s.Timeline {
		got := st.Do
		if got != nil {
			c := *got
			c.Line = 0
			got = &c
		}
		if !reflect.DeepEqual(got, wantDo[i]) {
			t.Errorf("step %d do = %+v, want %+v", i, got, wantDo[i])
		}
	}

	wantExpect := [][]Expectation{
		nil,
		{{Kind: Eventually, Within: 10 * time.Second, Subject: ProbeState{Ready: false}}},
		nil, nil, nil,
		{
			{Kind: Eventually, Within: 17 * time.Second, Subject: RDSState{Connected: true}},
			{Kind: Eventually, Within: 2 * time.Minute, Subject: VolumeAttachments{Pattern: "db-*", AttachedTo: []string{"node-c"}}},
			{Kind: Eventually, Subject: EventCount{Reason: "StaleAttachmentCleared", Count: 6}},
		},
	}
	for i, st := range s.Timeline {
		var got []Expectation
		for _, e := range st.Expect {
			e.Line = 0
			got = append(got, e)
		}
		if !reflect.DeepEqual(got, wantExpect[i]) {
			t.Errorf("step %d expect = %+v, want %+v", i, got, wantExpect[i])
		}
	}
	if got := s.Timeline[5].Expect[0].Line; got != 33 {
		t.Errorf("line of the first expectation after the restart = %d, want 33", got)
	}
	if want := []string{"single-writer", "no-volume-lost", "rpc-deadlines", "no-restart-loop"}; !slices.Equal(s.Invariants, want) {
		t.Errorf("invariants = %v, want %v", s.Invariants, want)
	}
	if got, want := s.Duration(), m("3h12m"); got != want {
		t.Errorf("Duration = %v, want %v", got, want)
	}
	dbs, err := s.MatchVolumes(s.Timeline[5].Expect[1].Subject.(VolumeAttachments).Pattern)
	if err != nil || len(dbs) != 6 {
		t.Errorf("db-* matches %d volumes (%v), want 6", len(dbs), err)
	}
}

// TestFingerprintPinned fails when the canonical form changes: that breaks
// the link between recorded traces and their scenario, so it must be a
// deliberate decision (update the constant).
func TestFingerprintPinned(t *testing.T) {
	s, err := Load(incident)
	if err != nil {
		t.Fatal(err)
	}
	const want = "22906eebff3822626c98d67dd5eac0c8cc92ffb27d17007608b25b68849ca233"
	if got := s.Fingerprint(); got != want {
		t.Errorf("Fingerprint = %s, want %s\ncanonical form:\n%s", got, want, s)
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse([]byte("name: min\ntopology: {nodes: [n1]}\nvolumes: [{name: v, size: 1}]\ntimeline: [{at: 0s, do: rds.crash}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Topology{
		Nodes: []string{"n1"},
		RDS:   RDSSpec{Pool: "storage-pool", Size: 8 << 40},
		Controller: ControllerSpec{Replicas: 1, GracePeriod: 30 * time.Second,
			ReconcileInterval: 5 * time.Minute, MigrationWindow: 5 * time.Minute},
	}
	if !reflect.DeepEqual(s.Topology, want) {
		t.Errorf("topology = %+v, want %+v", s.Topology, want)
	}
	if v := s.AllVolumes(); len(v) != 1 || v[0] != (Volume{Name: "v", Size: 1, Access: RWO, Mode: Filesystem}) {
		t.Errorf("volume = %+v", v)
	}
	if s.Seed != 0 || s.Description != "" || s.Invariants != nil {
		t.Errorf("seed %d description %q invariants %v", s.Seed, s.Description, s.Invariants)
	}
}

const head = "name: t\ntopology: {nodes: [node-a, node-b]}\nvolumes: [{name: \"db-{1..3}\", size: 1GiB}]\ntimeline:\n"

// TestEquivalentSpellings: files that say the same thing differently parse
// to the same canonical form and fingerprint; the name, description and
// seed change String but not Fingerprint.
func TestEquivalentSpellings(t *testing.T) {
	groups := [][]string{
		{ // action forms
			head + "  - {at: 1m, do: \"node.delete {node: node-a}\"}\n",
			head + "  - {at: 1m, do: {name: node.delete, node: node-a}}\n",
			head + "  - at: 1m\n    do:\n      node: node-a\n      name: node.delete\n",
			head + "  - {at: 1m, do: \"  node.delete{node: node-a}  \"}\n",
		},
		{ // at and after; expect as one mapping or a list
			head + "  - {at: 1m, do: rds.crash}\n  - {at: 90s, expect: {probe: not-ready, within: 1m}}\n",
			head + "  - {after: 60s, do: rds.crash}\n  - {after: 30s, expect: [{within: 1m, probe: not-ready}]}\n",
			head + "  - {at: 1m0s, do: rds.crash}\n  - {after: 0.5m, expect: {probe: not-ready, within: 60s}}\n",
		},
		{ // volume spellings, sizes, node lists, invariant order, comments
			"name: a\ntopology: {nodes: [node-a], rds: {size: 8T}}\nvolumes: [{name: \"db-{1,2}\", size: 1G}]\n" +
				"timeline: [{at: 0s, expect: {volumes: db-1, attachedTo: [node-a]}}]\ninvariants: [single-writer, no-volume-lost]\n",
			"name: b # other name\ndescription: other words\nseed: 99\ntopology: {nodes: [node-a], rds: {size: 8TiB, pool: storage-pool}}\n" +
				"volumes:\n  - {name: db-1, size: 1Gi, access: RWO, mode: filesystem}\n  - {name: db-2, size: 1073741824}\n" +
				"timeline: [{at: 0, expect: {volumes: db-1, attachedTo: node-a, within: 0s}}]\ninvariants: [no-volume-lost, single-writer]\n",
		},
	}
	for gi, g := range groups {
		var fp string
		var canon string
		for i, doc := range g {
			s, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("group %d doc %d: %v", gi, i, err)
			}
			if i == 0 {
				fp, canon = s.Fingerprint(), s.body0()
				continue
			}
			if s.Fingerprint() != fp {
				t.Errorf("group %d doc %d: fingerprint differs:\n%s\nvs\n%s", gi, i, s.body0(), canon)
			}
		}
	}
}

func (s *Scenario) body0() string {
	var b strings.Builder
	s.body(&b)
	return b.String()
}

// TestFingerprintSensitive: every change to what a scenario does changes
// the fingerprint.
func TestFingerprintSensitive(t *testing.T) {
	base := head + "  - {at: 1m, do: \"node.delete {node: node-a}\", expect: {probe: ready, within: 1m}}\n"
	variants := []string{
		strings.Replace(base, "at: 1m", "at: 2m", 1),
		strings.Replace(base, "node-a}\"", "node-b}\"", 1),
		strings.Replace(base, "within", "always", 1),
		strings.Replace(base, "within", "never", 1),
		strings.Replace(base, "ready", "not-ready", 1),
		strings.Replace(base, "size: 1GiB", "size: 2GiB", 1),
		strings.Replace(base, "{1..3}", "{1..4}", 1),
		strings.Replace(base, "[node-a, node-b]", "[node-a, node-b, node-c]", 1),
		base + "invariants: [single-writer]\n",
		strings.Replace(base, "topology: {nodes: [node-a, node-b]}", "topology: {nodes: [node-a, node-b], controller: {replicas: 2}}", 1),
		strings.Replace(base, "topology: {nodes: [node-a, node-b]}", "topology: {nodes: [node-a, node-b], controller: {restrictHosts: true}}", 1),
	}
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{s.Fingerprint(): -1}
	for i, v := range variants {
		vs, err := Parse([]byte(v))
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if j, dup := seen[vs.Fingerprint()]; dup {
			t.Errorf("variant %d has the fingerprint of %d", i, j)
		}
		seen[vs.Fingerprint()] = i
	}
}

// TestRestrictHostsRoundTrip: restrictHosts survives the canonical form,
// and "false" is the default spelled out (same fingerprint as leaving it out,
// so every file written before the key keeps its fingerprint).
func TestRestrictHostsRoundTrip(t *testing.T) {
	base := head + "  - {at: 1m, do: rds.crash}\n"
	on, err := Parse([]byte(strings.Replace(base, "topology: {nodes: [node-a, node-b]}", "topology: {nodes: [node-a, node-b], controller: {restrictHosts: true}}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !on.Topology.Controller.RestrictHosts {
		t.Fatal("restrictHosts: true parsed as false")
	}
	checkRoundTrip(t, on)
	off, err := Parse([]byte(strings.Replace(base, "topology: {nodes: [node-a, node-b]}", "topology: {nodes: [node-a, node-b], controller: {restrictHosts: false}}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if off.Fingerprint() != plain.Fingerprint() || off.Topology.Controller.RestrictHosts {
		t.Fatal("restrictHosts: false differs from the default")
	}
}

// TestRoundTrip: String is a scenario file that parses back to itself.
func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 2 {
		t.Fatalf("testdata holds %d scenarios", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, s)
		})
	}
}

func checkRoundTrip(t *testing.T, s *Scenario) {
	t.Helper()
	text := s.String()
	again, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("canonical form does not parse: %v\n%s", err, text)
	}
	if again.String() != text {
		t.Fatalf("canonical form changes on a second round:\n%s\n---\n%s", text, again.String())
	}
	if again.Fingerprint() != s.Fingerprint() || again.Duration() != s.Duration() {
		t.Fatalf("round trip changes fingerprint or duration")
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		steps string
		want  time.Duration
	}{
		{"  - {at: 5m, do: rds.crash}\n", 5 * time.Minute},
		{"  - {at: 5m, do: rds.crash, for: 1h}\n", time.Hour + 5*time.Minute},
		{"  - {at: 5m, expect: {probe: ready, within: 10s}}\n", 5*time.Minute + 10*time.Second},
		{"  - {at: 5m, expect: [{probe: ready, within: 10s}, {rds: connected, always: 1m}]}\n", 6 * time.Minute},
		// An earlier step's window can outlast the last step.
		{"  - {at: 1m, expect: {probe: ready, never: 1h}}\n  - {at: 2m, do: rds.crash}\n", time.Hour + time.Minute},
		{"  - {at: 5m, expect: [{rds: connected, always: 1m}, {probe: ready, within: 10s}]}\n", 6 * time.Minute},
		{"  - {at: 1m, expect: {probe: ready, never: 1h}}\n  - {at: 2m, expect: {probe: ready, within: 1s}}\n", time.Hour + time.Minute},
		{"  - {at: 1m, do: rds.crash, for: 1h}\n  - {at: 2m, do: rds.restart}\n", time.Hour + time.Minute},
		{"  - {at: 0s, do: rds.crash}\n", 0},
	} {
		s, err := Parse([]byte(head + tc.steps))
		if err != nil {
			t.Fatalf("%q: %v", tc.steps, err)
		}
		if got := s.Duration(); got != tc.want {
			t.Errorf("%q: Duration = %v, want %v", tc.steps, got, tc.want)
		}
	}
}

func TestMatchVolumes(t *testing.T) {
	s, err := Parse([]byte("name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: \"db-{1..3}\", size: 1}\n" +
		"  - {name: \"vm-{a,b}\", size: 1}\ntimeline: [{at: 0s, do: rds.crash}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pattern string
		want    string // names joined by spaces; "error" for an error
	}{
		{"db-1", "db-1"},
		{"db-*", "db-1 db-2 db-3"},
		{"*", "db-1 db-2 db-3 vm-a vm-b"},
		{"{vm,db}-*", "db-1 db-2 db-3 vm-a vm-b"}, // file order, not pattern order
		{"db-{3,1}", "db-1 db-3"},
		{"db-[12]", "db-1 db-2"},
		{"db-{1..4}", "error"}, // db-4 matches nothing
		{"db-9", "error"},
		{"db-[", "error"},
		{"db-{1", "error"},
	} {
		vols, err := s.MatchVolumes(tc.pattern)
		var names []string
		for _, v := range vols {
			names = append(names, v.Name)
		}
		got := strings.Join(names, " ")
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("MatchVolumes(%q) = %q (%v), want %q", tc.pattern, got, err, tc.want)
		}
	}
}

func TestCatalogue(t *testing.T) {
	acts := KnownActions()
	if !slices.IsSortedFunc(acts, func(a, b ActionSpec) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("KnownActions is not sorted")
	}
	issue := []string{"rds.crash", "rds.restart", "rds.hang", "rds.latency", "rds.fail-next", "rds.refuse",
		"rds.slow-reconnect", "network.timeout", "network.reset_peer", "network.latency", "node.not-ready",
		"node.ready", "node.delete", "node.create", "node.out-of-service", "controller.crash",
		"controller.restart", "leader.loss", "kubevirt.migrate", "volume.attach", "volume.detach"}
	for _, name := range issue {
		if _, ok := LookupAction(name); !ok {
			t.Errorf("%s is missing from KnownActions", name)
		}
	}
	if len(acts) != len(issue) {
		t.Errorf("KnownActions has %d actions, want %d", len(acts), len(issue))
	}
	for _, a := range acts {
		if a.Doc == "" {
			t.Errorf("%s has no Doc", a.Name)
		}
		for _, p := range a.Params {
			if p.Name == "name" {
				t.Errorf("%s has a parameter called name, which the map form reserves", a.Name)
			}
			if (p.Kind == EnumParam) != (len(p.Enum) > 0) {
				t.Errorf("%s.%s: kind %v with enum %v", a.Name, p.Name, p.Kind, p.Enum)
			}
		}
	}
	// The result is a copy.
	acts[0].Params = append(acts[0].Params, ParamSpec{Name: "x"})
	acts[0].Name = "changed"
	if again := KnownActions(); again[0].Name == "changed" || len(again[0].Params) == len(acts[0].Params) {
		t.Error("KnownActions shares its storage with callers")
	}
	inv := KnownInvariants()
	var names []string
	for _, i := range inv {
		names = append(names, i.Name)
	}
	if want := []string{"attached-has-claim", "data-plane-single-writer", "no-restart-loop", "no-stale-claim", "no-volume-lost", "probe-follows-rds", "rpc-deadlines", "single-writer", "survivors-keep-volumes"}; !slices.Equal(names, want) {
		t.Errorf("KnownInvariants = %v, want %v", names, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// TestRoundTripQuoting: text that YAML would read as something else, or
// cannot hold plain, survives String and Parse.
func TestRoundTripQuoting(t *testing.T) {
	for _, text := range []string{
		"yes", "No", "null", "~", "true", "3", "007", "1e3", "0x1f", "1.5", ".inf", "-1",
		"a: b", "a, b", "[x]", "{x}", "#x", "x #y", "&a", "*a", "!t", "%x", "@x", "`x`", "'x'", `"x"`,
		"", " lead", "trail ", "two\nlines", "tab\there", "back\\slash", "caf\u00e9", "\u2028", "\u0085", "\x7f", "emoji \U0001F600",
	} {
		doc := head + "  - at: 1m\n    do: {name: rds.fail-next, text: " + strconv.Quote(text) + "}\n" +
			"    expect: {events: {reason: " + strconv.Quote(text+"R") + "}}\n"
		s, err := Parse([]byte(doc))
		if err != nil {
			t.Errorf("%q: %v", text, err)
			continue
		}
		if got := s.Timeline[0].Do.Params["text"]; got != text {
			t.Errorf("%q read as %q", text, got)
		}
		s.Description = text
		s.Name = text + "N"
		checkRoundTrip(t, s)
		again, _ := Parse([]byte(s.String()))
		if again.Description != text || again.Name != text+"N" || again.Timeline[0].Do.Params["text"] != text ||
			again.Timeline[0].Expect[0].Subject.(EventCount).Reason != text+"R" {
			t.Errorf("%q changed in the round trip:\n%s", text, s)
		}
	}
}

// TestExpansionBounds: the bounds that keep a hostile file cheap hold, and
// a file at the bounds parses.
func TestExpansionBounds(t *testing.T) {
	doc := "name: t\ntopology: {nodes: [n]}\nvolumes: [{name: \"v-{0..9999}\", size: 1}]\ntimeline:\n"
	for range 20 {
		doc += "  - {at: 1m, do: \"volume.attach {volume: \\\"v-{0..9999}\\\", node: n}\"}\n"
		doc += "  - {at: 1m, do: \"volume.detach {volume: \\\"v-{0..99}*\\\"}\"}\n"
	}
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.AllVolumes()) != MaxExpansion {
		t.Errorf("%d volumes", len(s.AllVolumes()))
	}
	for _, tc := range []struct{ from, to, msg string }{
		{"v-{0..99}*", "v-{0..100}*", "more than 100 globs"},
		{"v-{0..9999}\", size", "v-{0..9999}\", size}, {name: w, size", "more than 10000 volumes"},
		{"v-{0..9999}\", size", "v-{0..10000}\", size", "more than 10000 names"},
	} {
		_, err = Parse([]byte(strings.Replace(doc, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.to, err)
		}
	}
}

// TestDocExample: the example in the package comment is a valid scenario.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if y, ok := strings.CutPrefix(l, "//\t"); ok {
			lines = append(lines, y)
		}
	}
	if len(lines) < 20 {
		t.Fatalf("found %d example lines in doc.go", len(lines))
	}
	s, err := Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
	}
	if s.Timeline[3].For != 2*time.Minute || s.Timeline[3].Do.Name != "network.latency" {
		t.Errorf("step 3 = %+v", s.Timeline[3])
	}
}
