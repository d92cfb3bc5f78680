package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// String is the scenario in canonical form: a scenario file that Parse reads
// back to the same scenario. Defaults are written out, volumes are expanded
// one per line, every step has an absolute at, parameters and invariants are
// sorted, durations and sizes have one spelling each. Comments and the
// original layout are gone.
func (s *Scenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", quote(s.Name))
	if s.Description != "" {
		fmt.Fprintf(&b, "description: %s\n", strconv.Quote(s.Description))
	}
	fmt.Fprintf(&b, "seed: %d\n", s.Seed)
	s.body(&b)
	return b.String()
}

// Fingerprint identifies what the scenario does: a SHA-256, in hex, of its
// canonical form without name, description and seed. Two files that differ
// only in layout, comments, spelling (at against after, db-{1..2} against two
// entries, 8T against 8TiB) or wording have the same fingerprint. A trace
// records it beside the seed: the pair reproduces a run.
func (s *Scenario) Fingerprint() string {
	var b strings.Builder
	s.body(&b)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func (s *Scenario) body(b *strings.Builder) {
	t := s.Topology
	c := t.Controller
	b.WriteString("topology:\n")
	fmt.Fprintf(b, "  nodes: %s\n", flowList(t.Nodes))
	fmt.Fprintf(b, "  rds: {pool: %s, size: %s}\n", quote(t.RDS.Pool), FormatSize(t.RDS.Size))
	// restrictHosts only when on: every scenario written before it keeps
	// its canonical form, and so its hash.
	restrict := ""
	if c.RestrictHosts {
		restrict = ", restrictHosts: true"
	}
	fmt.Fprintf(b, "  controller: {replicas: %d, gracePeriod: %s, reconcileInterval: %s, migrationWindow: %s%s}\n",
		c.Replicas, FormatDuration(c.GracePeriod), FormatDuration(c.ReconcileInterval), FormatDuration(c.MigrationWindow), restrict)
	if vols := s.AllVolumes(); len(vols) > 0 {
		b.WriteString("volumes:\n")
		for _, v := range vols {
			fmt.Fprintf(b, "  - {name: %s, size: %s, access: %s, mode: %s", quote(v.Name), FormatSize(v.Size),
				quote(string(v.Access)), quote(string(v.Mode)))
			if v.AttachedTo != "" {
				fmt.Fprintf(b, ", attachedTo: %s", quote(v.AttachedTo))
			}
			b.WriteString("}\n")
		}
	}
	b.WriteString("timeline:\n")
	for _, st := range s.Timeline {
		fmt.Fprintf(b, "  - at: %s\n", FormatDuration(st.At))
		if st.Do != nil {
			fmt.Fprintf(b, "    do: %s\n", st.Do.String())
		}
		if st.For != 0 {
			fmt.Fprintf(b, "    for: %s\n", FormatDuration(st.For))
		}
		if len(st.Expect) > 0 {
			b.WriteString("    expect:\n")
			for _, e := range st.Expect {
				fmt.Fprintf(b, "      - %s\n", e.String())
			}
		}
	}
	if len(s.Invariants) > 0 {
		inv := slices.Clone(s.Invariants)
		slices.Sort(inv)
		fmt.Fprintf(b, "invariants: %s\n", flowList(inv))
	}
}

// String is the action as a do: value, parameters sorted, quoted when it has
// any: "node.delete {node: node-a}".
func (a *Action) String() string {
	if len(a.Params) == 0 {
		return quote(a.Name)
	}
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = quote(k) + ": " + quote(a.Params[k])
	}
	return strconv.Quote(a.Name + " {" + strings.Join(parts, ", ") + "}")
}

// String is the expectation as one flow mapping: {rds: connected, within: 17s}.
func (e Expectation) String() string {
	var w string
	switch e.Kind {
	case Eventually:
		if e.Within != 0 {
			w = ", within: " + FormatDuration(e.Within)
		}
	case Always:
		w = ", always: " + FormatDuration(e.For)
	case Never:
		w = ", never: " + FormatDuration(e.For)
	}
	subj := "?"
	if e.Subject != nil {
		subj = e.Subject.String()
	}
	return "{" + subj + w + "}"
}

var (
	plainWord    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)
	plainNumber  = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	plainMeasure = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[a-zA-Z]+([0-9]+(\.[0-9]+)?[a-zA-Z]+)*$`)
)

// quote writes s as a YAML scalar that reads back as s in any context: plain
// when it is a word, a decimal number or a measure such as 250ms or 20GiB,
// double-quoted otherwise. Go's escapes are a subset of YAML's double-quoted
// escapes.
func quote(s string) string {
	switch {
	case plainWord.MatchString(s):
		switch strings.ToLower(s) {
		case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
			return strconv.Quote(s)
		}
		return s
	case plainNumber.MatchString(s):
		return s
	case plainMeasure.MatchString(s):
		if l := strings.ToLower(s); !strings.HasPrefix(l, "0x") && !strings.HasPrefix(l, "0o") && !strings.HasPrefix(l, "0b") {
			return s
		}
	}
	return strconv.Quote(s)
}
