package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec describes a catalogued fault: what a scenario file may name and which
// parameters it takes.
type Spec struct {
	Name   string
	Doc    string
	Params []Param

	build func(p params) (Fault, error)
}

// Param is one parameter of a catalogued fault. Values are strings, as a
// scenario file gives them: durations in Go syntax ("250ms", "3h"), counts in
// decimal.
type Param struct {
	Name     string
	Doc      string
	Required bool
	// Default is used when the parameter is absent; empty means "none".
	Default string
}

var catalogue = map[string]Spec{}

// register adds a fault to the catalogue; each fault's file calls it from init.
func register(s Spec) {
	if _, dup := catalogue[s.Name]; dup {
		panic("chaos: fault registered twice: " + s.Name)
	}
	catalogue[s.Name] = s
}

// Catalogue lists every fault Lookup knows, sorted by name.
func Catalogue() []Spec {
	out := make([]Spec, 0, len(catalogue))
	for _, s := range catalogue {
		s.Params = slices.Clone(s.Params)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupSpec returns the catalogue entry of the fault called name.
func LookupSpec(name string) (Spec, bool) {
	s, ok := catalogue[name]
	s.Params = slices.Clone(s.Params)
	return s, ok
}

// Lookup returns the catalogued fault called name, configured by values, as a
// scenario file names it: network.latency {latency: 250ms}. An unknown name,
// an unknown or missing parameter and a malformed value are errors that say
// what would have been accepted.
func Lookup(name string, values map[string]string) (Fault, error) {
	s, ok := catalogue[name]
	if !ok {
		names := make([]string, 0, len(catalogue))
		for n := range catalogue {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFault, name, strings.Join(names, ", "))
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.ContainsFunc(s.Params, func(p Param) bool { return p.Name == k }) {
			return nil, fmt.Errorf("%w: %s has no parameter %q (it takes %s)", ErrBadParam, name, k, paramList(s))
		}
	}
	p := params{fault: name, values: map[string]string{}}
	for _, sp := range s.Params {
		v, ok := values[sp.Name]
		if !ok {
			if sp.Required {
				return nil, fmt.Errorf("%w: %s needs parameter %q", ErrBadParam, name, sp.Name)
			}
			v = sp.Default
		}
		p.values[sp.Name] = v
	}
	return s.build(p)
}

func paramList(s Spec) string {
	if len(s.Params) == 0 {
		return "none"
	}
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// params are a fault's parameter values after defaults were filled in.
type params struct {
	fault  string
	values map[string]string
}

func (p params) bad(name, why string) error {
	return fmt.Errorf("%w: %s: %s=%q: %s", ErrBadParam, p.fault, name, p.values[name], why)
}

func (p params) string(name string) string { return p.values[name] }

// duration parses a non-negative Go duration; empty is 0.
func (p params) duration(name string) (time.Duration, error) {
	v := p.values[name]
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, p.bad(name, "not a duration such as 250ms")
	}
	if d < 0 {
		return 0, p.bad(name, "must not be negative")
	}
	return d, nil
}

// count parses a positive decimal integer.
func (p params) count(name string) (int, error) {
	n, err := strconv.Atoi(p.values[name])
	if err != nil || n < 1 {
		return 0, p.bad(name, "not a whole number of at least 1")
	}
	return n, nil
}

// seed parses an optional unsigned seed; ok is false when it is absent.
func (p params) seed(name string) (seed uint64, ok bool, err error) {
	v := p.values[name]
	if v == "" {
		return 0, false, nil
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, p.bad(name, "not an unsigned decimal integer")
	}
	return s, true, nil
}

// validated returns f if its own checks pass, so that Lookup and Apply agree
// on what a valid fault is.
func validated(f interface {
	Fault
	validate() error
}) (Fault, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func invalid(f Fault, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadParam, f.Name(), fmt.Sprintf(format, args...))
}
