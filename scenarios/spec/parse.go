package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxErrors bounds the problems one Parse reports.
const maxErrors = 50

// Load reads and parses the scenario file at path. Its errors carry path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	var list Errors
	if errors.As(err, &list) {
		for _, e := range list {
			e.File = path
		}
	}
	return s, err
}

// Parse reads a scenario file. It is strict: unknown keys, unknown actions,
// parameters, invariants and expectation subjects, references to nodes and
// volumes that do not exist, steps out of order and duplicate names are
// errors. The error is an Errors listing every problem with its line.
func Parse(data []byte) (*Scenario, error) {
	p := &parser{nodes: map[string]bool{}}
	s := p.parse(data)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return s, nil
}

type parser struct {
	errs  Errors
	s     *Scenario
	nodes map[string]bool // topology nodes and nodes created by node.create
	refs  []ref           // references checked once every name is known
}

// ref is a reference to a node or a volume, checked after the whole file is
// read, so that node.create anywhere in the timeline makes its node known.
type ref struct {
	kind ParamKind // NodeParam, VolumeParam or VMParam
	val  string
	n    *yaml.Node
	path string
}

// abort stops parsing once maxErrors problems are known.
type abort struct{}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
	if len(p.errs) >= maxErrors {
		panic(abort{})
	}
}

func (p *parser) parse(data []byte) (s *Scenario) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(abort); !ok {
				panic(r)
			}
			s = nil
		}
	}()
	root := p.document(data)
	if root == nil {
		return nil
	}
	p.s = &Scenario{}
	p.scenario(root)
	return p.s
}

// document decodes data into a YAML tree: exactly one document, without
// aliases.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			p.errorf(nil, "", "empty scenario")
		} else {
			p.syntaxError(err, data)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		p.syntaxError(err, data)
		return nil
	case !isNull(&next):
		p.errorf(&next, "", "a scenario file holds one YAML document; this is a second one")
		return nil
	}
	if len(doc.Content) != 1 || isNull(doc.Content[0]) {
		p.errorf(&doc, "", "empty scenario")
		return nil
	}
	if a := findAlias(doc.Content[0]); a != nil {
		p.errorf(a, "", "YAML aliases (*%s) are not supported: write the value out", a.Value)
		return nil
	}
	return doc.Content[0]
}

func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		return len(n.Content) == 0 || isNull(n.Content[0])
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func findAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError reports a YAML error, with a hint for the two mistakes the
// format invites: an unquoted action with parameters and an unquoted brace
// pattern inside a flow mapping.
func (p *parser) syntaxError(err error, data []byte) {
	e := &Error{Msg: strings.TrimPrefix(err.Error(), "yaml: "), Line: 1}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		// yaml.v3 counts lines from 0 in parser errors (not scanner errors).
		if isParserError(e.Msg) {
			e.Line++
		}
	} else if isReaderError(e.Msg) {
		// Reader errors carry no line: find the offending byte.
		e.Line = badByteLine(data)
	}
	switch {
	case strings.Contains(e.Msg, "mapping values are not allowed"):
		e.Msg += ` (an action with parameters must be quoted: do: "node.delete {node: node-a}"; ` +
			`or use the map form: do: {name: node.delete, node: node-a})`
	case strings.Contains(e.Msg, "did not find expected ',' or '}'"):
		e.Msg += ` (inside {...}, quote a name with braces: name: "db-{1..6}")`
	}
	p.errs = append(p.errs, e)
}

// field is one key of a mapping.
type field struct {
	key, val *yaml.Node
}

// mapping returns n's keys, or nil after reporting that n is not a mapping.
// Duplicate keys and, when known is not nil, unknown keys are reported.
func (p *parser) mapping(n *yaml.Node, path string, known []string) map[string]field {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping {key: value, ...}, got %s", describe(n))
		return nil
	}
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, path, "keys must be plain words, got %s", describe(k))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, path, "duplicate key %q", k.Value)
			continue
		}
		if known != nil && !slices.Contains(known, k.Value) {
			p.errorf(k, path, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		out[k.Value] = field{k, v}
	}
	return out
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		if len(n.Value) > 40 {
			return fmt.Sprintf("%q...", n.Value[:40])
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// scalar returns n's text; null is "". ok is false after reporting that n is
// a list or a mapping.
func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "want a single value, got %s", describe(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	return n.Value, true
}

// required returns the non-empty text of m[key], or reports it missing.
func (p *parser) required(m map[string]field, parent *yaml.Node, path, key string) (string, *yaml.Node, bool) {
	f, ok := m[key]
	if !ok {
		p.errorf(parent, path, "missing %s", key)
		return "", nil, false
	}
	v, ok := p.scalar(f.val, join(path, key))
	if ok && v == "" {
		p.errorf(f.val, join(path, key), "empty %s", key)
		ok = false
	}
	return v, f.val, ok
}

func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	v, ok := p.scalar(n, path)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(v)
	if err != nil {
		p.errorf(n, path, "%v", err)
		return 0, false
	}
	return d, true
}

// list returns n's items; anything but a list stands for a list of one,
// and nothing for none.
func list(n *yaml.Node) []*yaml.Node {
	switch {
	case n.Kind == yaml.SequenceNode:
		return n.Content
	case isNull(n):
		return nil
	}
	return []*yaml.Node{n}
}

var topKeys = []string{"name", "description", "seed", "topology", "volumes", "timeline", "invariants"}

func (p *parser) scenario(root *yaml.Node) {
	m := p.mapping(root, "", topKeys)
	if m == nil {
		return
	}
	s := p.s
	s.Name, _, _ = p.required(m, root, "", "name")
	if f, ok := m["description"]; ok {
		s.Description, _ = p.scalar(f.val, "description")
	}
	if f, ok := m["seed"]; ok {
		if v, ok := p.scalar(f.val, "seed"); ok {
			seed, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				p.errorf(f.val, "seed", "seed %q is not a whole number that fits in 64 bits", v)
			}
			s.Seed = seed
		}
	}
	if f, ok := m["topology"]; ok {
		p.topology(f.val)
	} else {
		p.errorf(root, "", "missing topology")
	}
	if f, ok := m["volumes"]; ok {
		p.volumes(f.val)
	}
	if f, ok := m["timeline"]; ok {
		p.timeline(f.val)
	} else {
		p.errorf(root, "", "missing timeline")
	}
	if f, ok := m["invariants"]; ok {
		p.invariants(f.val)
	}
	p.checkRefs()
}

func (p *parser) topology(n *yaml.Node) {
	t := &p.s.Topology
	t.RDS = RDSSpec{Pool: DefaultPool, Size: DefaultPoolSize}
	t.Controller = ControllerSpec{
		Replicas:          DefaultReplicas,
		GracePeriod:       DefaultGracePeriod,
		ReconcileInterval: DefaultReconcileInterval,
		MigrationWindow:   DefaultMigrationWindow,
	}
	m := p.mapping(n, "topology", []string{"nodes", "rds", "controller"})
	if m == nil {
		return
	}
	given := 0
	if f, ok := m["nodes"]; ok {
		given = len(list(f.val))
		for i, it := range list(f.val) {
			v, ok := p.scalar(it, index("topology.nodes", i))
			if !ok {
				continue
			}
			switch err := checkName(v); {
			case err != nil:
				p.errorf(it, index("topology.nodes", i), "%v", err)
			case p.nodes[v]:
				p.errorf(it, index("topology.nodes", i), "duplicate node %q", v)
			default:
				p.nodes[v] = true
				t.Nodes = append(t.Nodes, v)
			}
		}
	}
	if given == 0 {
		p.errorf(n, "topology.nodes", "the topology needs at least one node")
	}
	if f, ok := m["rds"]; ok {
		if rm := p.mapping(f.val, "topology.rds", []string{"pool", "size"}); rm != nil {
			if pf, ok := rm["pool"]; ok {
				if v, ok := p.scalar(pf.val, "topology.rds.pool"); ok {
					if !poolName.MatchString(v) {
						p.errorf(pf.val, "topology.rds.pool", "%q is not a pool name (letters, digits, '.', '_', '-', '/')", v)
					}
					t.RDS.Pool = v
				}
			}
			if sf, ok := rm["size"]; ok {
				if v, ok := p.scalar(sf.val, "topology.rds.size"); ok {
					size, err := ParseSize(v)
					switch {
					case err != nil:
						p.errorf(sf.val, "topology.rds.size", "%v", err)
					case size == 0:
						p.errorf(sf.val, "topology.rds.size", "the pool needs a size above zero")
					}
					t.RDS.Size = size
				}
			}
		}
	}
	if f, ok := m["controller"]; ok {
		p.controller(f.val, &t.Controller)
	}
}

var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

func (p *parser) controller(n *yaml.Node, c *ControllerSpec) {
	const path = "topology.controller"
	m := p.mapping(n, path, []string{"replicas", "gracePeriod", "reconcileInterval", "migrationWindow", "restrictHosts"})
	if m == nil {
		return
	}
	if f, ok := m["restrictHosts"]; ok {
		if v, ok := p.scalar(f.val, join(path, "restrictHosts")); ok {
			switch v {
			case "true":
				c.RestrictHosts = true
			case "false":
			default:
				p.errorf(f.val, join(path, "restrictHosts"), "restrictHosts %q: want true or false", v)
			}
		}
	}
	if f, ok := m["replicas"]; ok {
		if v, ok := p.scalar(f.val, join(path, "replicas")); ok {
			r, err := strconv.Atoi(v)
			if err != nil || r < 1 || r > 100 {
				p.errorf(f.val, join(path, "replicas"), "replicas %q is not a whole number from 1 to 100", v)
			} else {
				c.Replicas = r
			}
		}
	}
	for _, d := range []struct {
		key      string
		dst      *time.Duration
		positive bool
	}{
		{"gracePeriod", &c.GracePeriod, false},
		{"reconcileInterval", &c.ReconcileInterval, true},
		{"migrationWindow", &c.MigrationWindow, false},
	} {
		f, ok := m[d.key]
		if !ok {
			continue
		}
		v, ok := p.duration(f.val, join(path, d.key))
		if !ok {
			continue
		}
		if d.positive && v == 0 {
			p.errorf(f.val, join(path, d.key), "%s must be above zero", d.key)
			continue
		}
		*d.dst = v
	}
}

var volumeKeys = []string{"name", "size", "access", "mode", "attachedTo"}

func (p *parser) volumes(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "volumes", "want a list of volumes, got %s", describe(n))
		return
	}
	seen := map[string]int{} // name -> line
	total := 0
	for i, it := range n.Content {
		path := index("volumes", i)
		m := p.mapping(it, path, volumeKeys)
		if m == nil {
			continue
		}
		tmpl := Volume{Access: DefaultAccess, Mode: DefaultMode}
		pattern, pn, ok := p.required(m, it, path, "name")
		var names []string
		if ok {
			var err error
			if names, err = Expand(pattern); err != nil {
				p.errorf(pn, join(path, "name"), "%v", err)
			}
		}
		if v, sn, ok := p.required(m, it, path, "size"); ok {
			size, err := ParseSize(v)
			switch {
			case err != nil:
				p.errorf(sn, join(path, "size"), "%v", err)
			case size == 0:
				p.errorf(sn, join(path, "size"), "a volume needs a size above zero")
			}
			tmpl.Size = size
		}
		if f, ok := m["access"]; ok {
			if v, ok := p.scalar(f.val, join(path, "access")); ok {
				if a := Access(v); a == RWO || a == RWX {
					tmpl.Access = a
				} else {
					p.errorf(f.val, join(path, "access"), "access %q is neither RWO nor RWX", v)
				}
			}
		}
		if f, ok := m["mode"]; ok {
			if v, ok := p.scalar(f.val, join(path, "mode")); ok {
				if md := Mode(v); md == Filesystem || md == Block {
					tmpl.Mode = md
				} else {
					p.errorf(f.val, join(path, "mode"), "mode %q is neither filesystem nor block", v)
				}
			}
		}
		if f, ok := m["attachedTo"]; ok {
			if v, ok := p.scalar(f.val, join(path, "attachedTo")); ok && v != "" {
				if !p.nodes[v] {
					p.errorf(f.val, join(path, "attachedTo"), "node %q is not in the topology (nodes: %s)",
						v, strings.Join(p.s.Topology.Nodes, ", "))
				}
				tmpl.AttachedTo = v
			}
		}
		set := VolumeSet{Pattern: pattern, Line: it.Line}
		for _, name := range names {
			if err := checkName(name); err != nil {
				if name != pattern {
					err = fmt.Errorf("%v (from %q)", err, pattern)
				}
				p.errorf(pn, join(path, "name"), "%v", err)
				continue
			}
			if line, dup := seen[name]; dup {
				p.errorf(pn, join(path, "name"), "duplicate volume %q (first declared on line %d)", name, line)
				continue
			}
			if total++; total > MaxExpansion {
				p.errorf(pn, join(path, "name"), "more than %d volumes", MaxExpansion)
				return
			}
			seen[name] = pn.Line
			v := tmpl
			v.Name = name
			set.Volumes = append(set.Volumes, v)
		}
		p.s.Volumes = append(p.s.Volumes, set)
	}
}

var stepKeys = []string{"at", "after", "do", "for", "expect"}

func (p *parser) timeline(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "timeline", "want a list of steps, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		p.errorf(n, "timeline", "the timeline is empty")
		return
	}
	var prev time.Duration
	for i, it := range n.Content {
		path := index("timeline", i)
		m := p.mapping(it, path, stepKeys)
		if m == nil {
			continue
		}
		st := Step{Line: it.Line, At: prev}
		at, hasAt := m["at"]
		after, hasAfter := m["after"]
		switch {
		case hasAt && hasAfter:
			p.errorf(after.key, path, "a step has at or after, not both")
		case hasAt:
			if d, ok := p.duration(at.val, join(path, "at")); ok {
				if d < prev {
					p.errorf(at.val, join(path, "at"), "at %s is earlier than the previous step (%s); steps must be in time order",
						FormatDuration(d), FormatDuration(prev))
				} else {
					st.At = d
				}
			}
		case hasAfter:
			if d, ok := p.duration(after.val, join(path, "after")); ok {
				if d > math.MaxInt64-prev {
					p.errorf(after.val, join(path, "after"), "the step's time overflows")
				} else {
					st.At = prev + d
				}
			}
		default:
			p.errorf(it, path, "a step needs at (time since the start) or after (time since the previous step)")
		}
		prev = st.At
		do, hasDo := m["do"]
		ex, hasExpect := m["expect"]
		if !hasDo && !hasExpect {
			p.errorf(it, path, "a step needs do, expect or both")
		}
		var spec *ActionSpec
		if hasDo {
			st.Do, spec = p.action(do.val, join(path, "do"))
		}
		if f, ok := m["for"]; ok {
			switch d, ok := p.duration(f.val, join(path, "for")); {
			case !ok:
			case !hasDo:
				p.errorf(f.key, join(path, "for"), "for says how long the step's action lasts; this step has no do")
			case spec != nil && !spec.Undoable:
				p.errorf(f.key, join(path, "for"), "%s cannot be undone, so it takes no for", spec.Name)
			case d > math.MaxInt64-st.At:
				p.errorf(f.val, join(path, "for"), "the step's end overflows")
			default:
				st.For = d
			}
		}
		if hasExpect {
			items := list(ex.val)
			if len(items) == 0 && (isNull(ex.val) || ex.val.Kind == yaml.SequenceNode) {
				p.errorf(ex.val, join(path, "expect"), "empty expect")
			}
			for j, en := range items {
				epath := join(path, "expect")
				if ex.val.Kind == yaml.SequenceNode {
					epath = index(epath, j)
				}
				if e, ok := p.expectation(en, epath, st.At); ok {
					st.Expect = append(st.Expect, e)
				}
			}
		}
		p.s.Timeline = append(p.s.Timeline, st)
	}
}

// isParserError tells yaml.v3's parser errors (parserc.go) from its scanner
// errors by their text.
func isParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected", "found undefined tag handle",
		"found duplicate %", "found incompatible YAML document"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

func isReaderError(msg string) bool {
	return strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters")
}

// badByteLine is the line of the first byte YAML refuses to read: invalid
// UTF-8 or a control character; 0 when there is none.
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		switch {
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff ||
			(r >= 0xd800 && r <= 0xdfff):
			return line
		}
		i += size
	}
	return 0
}
