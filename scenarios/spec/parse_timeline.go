package spec

import (
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// action reads do: in either form, the name followed by a flow mapping of
// parameters in one string, or a mapping with the name under name:.
func (p *parser) action(n *yaml.Node, path string) (*Action, *ActionSpec) {
	a := &Action{Line: n.Line, Params: map[string]string{}}
	var params []field // in file order; keys are scalars
	switch n.Kind {
	case yaml.ScalarNode:
		text := strings.TrimSpace(n.Value)
		cut := strings.IndexAny(text, " \t\n{")
		if cut < 0 {
			cut = len(text)
		}
		a.Name = text[:cut]
		if rest := strings.TrimSpace(text[cut:]); rest != "" {
			if !strings.HasPrefix(rest, "{") {
				p.errorf(n, path, "parameters go in braces after the action's name: %s {key: value}", a.Name)
				return nil, nil
			}
			var doc yaml.Node
			dec := yaml.NewDecoder(strings.NewReader(rest))
			err := dec.Decode(&doc)
			if err == nil && (len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode) {
				err = errors.New("not a mapping")
			}
			var extra yaml.Node
			if err == nil && dec.Decode(&extra) != io.EOF {
				err = errors.New("text after the closing brace")
			}
			if err == nil && findAlias(&doc) != nil {
				err = errors.New("aliases are not supported")
			}
			if err != nil {
				p.errorf(n, path, "parameters of %s: %s (write e.g. %s {key: value, key: value})",
					a.Name, strings.TrimPrefix(err.Error(), "yaml: "), a.Name)
				return nil, nil
			}
			pm := doc.Content[0]
			// Lines inside the string count from its start; report the do line.
			for _, c := range pm.Content {
				c.Line, c.Column = n.Line, n.Column
			}
			if m := p.mapping(pm, path, nil); m == nil {
				return nil, nil
			}
			for i := 0; i+1 < len(pm.Content); i += 2 {
				params = append(params, field{pm.Content[i], pm.Content[i+1]})
			}
		}
	case yaml.MappingNode:
		m := p.mapping(n, path, nil)
		if m == nil {
			return nil, nil
		}
		name, _, ok := p.required(m, n, path, "name")
		if !ok {
			return nil, nil
		}
		a.Name = name
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value != "name" {
				params = append(params, field{k, n.Content[i+1]})
			}
		}
	default:
		p.errorf(n, path, "want an action, such as rds.crash or \"node.delete {node: node-a}\", got %s", describe(n))
		return nil, nil
	}
	if a.Name == "" {
		p.errorf(n, path, "empty action")
		return nil, nil
	}
	spec := lookupAction(a.Name)
	if spec == nil {
		p.errorf(n, path, "unknown action %q (%s)", a.Name, actionHint(a.Name))
		return nil, nil
	}
	seen := map[string]bool{}
	for _, f := range params {
		k := f.key.Value
		if seen[k] {
			continue // reported by mapping
		}
		seen[k] = true
		ppath := join(path, k)
		ps := spec.param(k)
		if ps == nil {
			p.errorf(f.key, path, "%s has no parameter %q (it takes %s)", a.Name, k, spec.paramNames())
			continue
		}
		v, ok := p.scalar(f.val, ppath)
		if !ok {
			continue
		}
		if p.checkParam(ps, v, f.val, ppath) {
			a.Params[k] = v
		}
	}
	for _, ps := range spec.Params {
		if ps.Required && !seen[ps.Name] {
			p.errorf(n, path, "%s needs parameter %q", a.Name, ps.Name)
		}
	}
	return a, spec
}

// checkParam checks what can be checked at once and queues references.
func (p *parser) checkParam(ps *ParamSpec, v string, n *yaml.Node, path string) bool {
	bad := func(format string, args ...any) bool {
		p.errorf(n, path, format, args...)
		return false
	}
	switch ps.Kind {
	case DurationParam:
		if _, err := ParseDuration(v); err != nil {
			return bad("%v", err)
		}
	case CountParam:
		if c, err := strconv.Atoi(v); err != nil || c < 1 {
			return bad("%s %q is not a whole number of at least 1", ps.Name, v)
		}
	case SeedParam:
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return bad("%s %q is not an unsigned whole number", ps.Name, v)
		}
	case EnumParam:
		if !slices.Contains(ps.Enum, v) {
			return bad("%s %q is not one of %s", ps.Name, v, strings.Join(ps.Enum, ", "))
		}
	case NewNodeParam:
		if err := checkName(v); err != nil {
			return bad("%v", err)
		}
		p.nodes[v] = true
	case NodeParam, VolumeParam, VMParam:
		if v == "" {
			return bad("empty %s", ps.Name)
		}
		p.refs = append(p.refs, ref{ps.Kind, v, n, path})
	}
	return true
}

func (p *parser) checkRefs() {
	matched := map[string]error{} // pattern -> MatchVolumes' verdict
	for _, r := range p.refs {
		switch r.kind {
		case NodeParam:
			if !p.nodes[r.val] {
				p.errorf(r.n, r.path, "node %q is neither in the topology nor created by node.create", r.val)
			}
		case VolumeParam:
			err, done := matched[r.val]
			if !done {
				_, err = p.s.MatchVolumes(r.val)
				matched[r.val] = err
			}
			if err != nil {
				p.errorf(r.n, r.path, "%v", err)
			}
		case VMParam:
			if _, ok := p.s.Volume(r.val); !ok {
				p.errorf(r.n, r.path, "vm %q names no volume (a VM is named by its disk volume)", r.val)
			}
		}
	}
}

var (
	subjectKeys = []string{"probe", "rds", "volumes", "events", "claims"}
	windowKeys  = []string{"within", "always", "never"}
	expectKeys  = slices.Concat(subjectKeys, []string{"attachedTo"}, windowKeys)
)

// expectation reads one flat mapping: one subject key, its companions
// (attachedTo for volumes) and at most one window key naming the kind.
func (p *parser) expectation(n *yaml.Node, path string, at time.Duration) (Expectation, bool) {
	e := Expectation{Kind: Eventually, Line: n.Line}
	m := p.mapping(n, path, nil)
	if m == nil {
		return e, false
	}
	unknown := false
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && !slices.Contains(expectKeys, k.Value) {
			p.errorf(k, path, "unknown expectation subject or key %q (subjects: %s; with volumes: attachedTo; windows: %s)",
				k.Value, strings.Join(subjectKeys, ", "), strings.Join(windowKeys, ", "))
			unknown = true
		}
	}
	if unknown {
		return e, false
	}
	var window *field
	for _, k := range windowKeys {
		f, ok := m[k]
		if !ok {
			continue
		}
		if window != nil {
			p.errorf(f.key, path, "an expectation has one of within (eventually), always or never; this one has %s and %s",
				window.key.Value, k)
			return e, false
		}
		window = &f
	}
	if window != nil {
		d, ok := p.duration(window.val, join(path, window.key.Value))
		if !ok {
			return e, false
		}
		if d > math.MaxInt64-at {
			p.errorf(window.val, join(path, window.key.Value), "the expectation's end overflows")
			return e, false
		}
		switch window.key.Value {
		case "within":
			e.Within = d
		case "always":
			e.Kind, e.For = Always, d
		case "never":
			e.Kind, e.For = Never, d
		}
	}
	var subject *field
	for _, k := range subjectKeys {
		f, ok := m[k]
		if !ok {
			continue
		}
		if subject != nil {
			p.errorf(f.key, path, "an expectation checks one subject; this one has %s and %s (write two expectations)",
				subject.key.Value, k)
			return e, false
		}
		subject = &f
	}
	if subject == nil {
		p.errorf(n, path, "an expectation needs a subject: one of %s", strings.Join(subjectKeys, ", "))
		return e, false
	}
	if f, ok := m["attachedTo"]; ok && subject.key.Value != "volumes" {
		p.errorf(f.key, path, "attachedTo goes with volumes, not %s", subject.key.Value)
		return e, false
	}
	spath := join(path, subject.key.Value)
	sv := subject.val
	switch subject.key.Value {
	case "probe":
		v, ok := p.scalar(sv, spath)
		if !ok {
			return e, false
		}
		switch v {
		case probeReady, probeNotReady:
			e.Subject = ProbeState{Ready: v == probeReady}
		default:
			p.errorf(sv, spath, "probe %q is neither %s nor %s", v, probeReady, probeNotReady)
			return e, false
		}
	case "rds":
		v, ok := p.scalar(sv, spath)
		if !ok {
			return e, false
		}
		switch v {
		case rdsConnected, rdsDisconnected:
			e.Subject = RDSState{Connected: v == rdsConnected}
		default:
			p.errorf(sv, spath, "rds %q is neither %s nor %s", v, rdsConnected, rdsDisconnected)
			return e, false
		}
	case "volumes":
		v, ok := p.scalar(sv, spath)
		if !ok {
			return e, false
		}
		if v == "" {
			p.errorf(sv, spath, "empty volume pattern")
			return e, false
		}
		f, ok := m["attachedTo"]
		if !ok {
			p.errorf(subject.key, path, "volumes needs attachedTo: the nodes they are attached to ([] for none)")
			return e, false
		}
		p.refs = append(p.refs, ref{VolumeParam, v, sv, spath})
		nodes := p.nodeRefs(f.val, join(path, "attachedTo"))
		e.Subject = VolumeAttachments{Pattern: v, AttachedTo: nodes}
	case "events":
		em := p.mapping(sv, spath, []string{"reason", "count", "atLeast"})
		if em == nil {
			return e, false
		}
		reason, _, ok := p.required(em, sv, spath, "reason")
		if !ok {
			return e, false
		}
		ev := EventCount{Reason: reason, Count: 1, AtLeast: true}
		c, hasCount := em["count"]
		l, hasAtLeast := em["atLeast"]
		switch {
		case hasCount && hasAtLeast:
			p.errorf(l.key, spath, "events take count (exactly) or atLeast, not both")
			return e, false
		case hasCount:
			ev.AtLeast = false
			if ev.Count, ok = p.count(c.val, join(spath, "count"), 0); !ok {
				return e, false
			}
		case hasAtLeast:
			if ev.Count, ok = p.count(l.val, join(spath, "atLeast"), 1); !ok {
				return e, false
			}
		}
		e.Subject = ev
	case "claims":
		cm := p.mapping(sv, spath, []string{"volume", "nodes"})
		if cm == nil {
			return e, false
		}
		vol, vn, ok := p.required(cm, sv, spath, "volume")
		if !ok {
			return e, false
		}
		nf, ok := cm["nodes"]
		if !ok {
			p.errorf(sv, spath, "claims needs nodes: the nodes holding the claim ([] for none)")
			return e, false
		}
		p.refs = append(p.refs, ref{VolumeParam, vol, vn, join(spath, "volume")})
		e.Subject = ClaimState{Volume: vol, Nodes: p.nodeRefs(nf.val, join(spath, "nodes"))}
	}
	return e, true
}

// nodeRefs reads a list of node names that must exist by the end of parsing.
func (p *parser) nodeRefs(n *yaml.Node, path string) []string {
	nodes := []string{}
	seen := map[string]bool{}
	for i, it := range list(n) {
		v, ok := p.scalar(it, index(path, i))
		if !ok {
			continue
		}
		if seen[v] {
			p.errorf(it, index(path, i), "node %q is listed twice", v)
			continue
		}
		seen[v] = true
		p.refs = append(p.refs, ref{NodeParam, v, it, index(path, i)})
		nodes = append(nodes, v)
	}
	slices.Sort(nodes)
	return nodes
}

func (p *parser) count(n *yaml.Node, path string, least int) (int, bool) {
	v, ok := p.scalar(n, path)
	if !ok {
		return 0, false
	}
	c, err := strconv.Atoi(v)
	if err != nil || c < least || c > math.MaxInt32 {
		p.errorf(n, path, "%q is not a whole number of at least %d", v, least)
		return 0, false
	}
	return c, true
}

func (p *parser) invariants(n *yaml.Node) {
	seen := map[string]bool{}
	for i, it := range list(n) {
		path := index("invariants", i)
		v, ok := p.scalar(it, path)
		if !ok {
			continue
		}
		switch {
		case !knownInvariant(v):
			p.errorf(it, path, "unknown invariant %q (known: %s)", v, invariantNames())
		case seen[v]:
			p.errorf(it, path, "invariant %q is listed twice", v)
		default:
			seen[v] = true
			p.s.Invariants = append(p.s.Invariants, v)
		}
	}
}
