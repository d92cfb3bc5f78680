package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// Spec is a catalogued fault's entry: its name, documentation and
// parameters (package catalog holds them for chaos and the scenario format
// alike).
type Spec = catalog.Fault

// builders holds the constructor of every fault this package implements,
// keyed by catalogue name; each fault's file adds its own from init.
var builders = map[string]func(p params) (Fault, error){}

// register adds the implementation of the catalogued fault name.
func register(name string, build func(p params) (Fault, error)) {
	if _, ok := catalog.Lookup(name); !ok {
		panic("chaos: fault " + name + " is not in the catalogue")
	}
	if _, dup := builders[name]; dup {
		panic("chaos: fault registered twice: " + name)
	}
	builders[name] = build
}

// LookupSpec returns the catalogue entry of the fault called name.
func LookupSpec(name string) (Spec, bool) { return catalog.Lookup(name) }

// Lookup returns the catalogued fault called name, configured by values, as a
// scenario file names it: network.latency {latency: 250ms}. An unknown name,
// an unknown or missing parameter, a value that is not one of a parameter's
// choices and a malformed value are errors that say what would have been
// accepted.
func Lookup(name string, values map[string]string) (Fault, error) {
	s, ok := catalog.Lookup(name)
	build := builders[name]
	if !ok || build == nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFault, name, strings.Join(catalog.Names(), ", "))
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := s.Param(k); !ok {
			return nil, fmt.Errorf("%w: %s has no parameter %q (it takes %s)", ErrBadParam, name, k, s.ParamNames())
		}
	}
	p := params{fault: s, values: map[string]string{}, misread: new(error)}
	for _, sp := range s.Params {
		v, ok := values[sp.Name]
		if !ok {
			if sp.Required {
				return nil, fmt.Errorf("%w: %s needs parameter %q", ErrBadParam, name, sp.Name)
			}
			v = sp.Default
		}
		p.values[sp.Name] = v
		if sp.Kind == catalog.Choice && !slices.Contains(sp.Choices, v) {
			return nil, p.bad(sp.Name, "want "+orList(sp.Choices))
		}
	}
	f, err := build(p)
	if *p.misread != nil {
		return nil, *p.misread
	}
	return f, err
}

// orList joins choices as a sentence does: "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// params are a fault's parameter values after defaults were filled in.
type params struct {
	fault  catalog.Fault
	values map[string]string
	// misread is the first parameter a constructor read against its
	// catalogue entry: a programming error, which Lookup reports instead
	// of the fault (the mirror test makes every fault meet it).
	misread *error
}

func (p params) bad(name, why string) error {
	return fmt.Errorf("%w: %s: %s=%q: %s", ErrBadParam, p.fault.Name, name, p.values[name], why)
}

// value returns the parameter's value after checking that the catalogue
// entry has it with one of the kinds the reader expects: a constructor that
// reads a parameter its entry lacks, or reads it as another kind, is a
// programming error that every Lookup of the fault reports.
func (p params) value(name string, kinds ...catalog.Kind) string {
	sp, ok := p.fault.Param(name)
	if !ok || !slices.Contains(kinds, sp.Kind) {
		if *p.misread == nil {
			*p.misread = fmt.Errorf("chaos: internal error: %s reads parameter %q as %v; its catalogue entry has %+v", p.fault.Name, name, kinds, sp)
		}
		return ""
	}
	return p.values[name]
}

// string reads a parameter whose value is used as written.
func (p params) string(name string) string {
	return p.value(name, catalog.String, catalog.Choice, catalog.Node, catalog.VM)
}

// duration parses a non-negative Go duration; empty is 0.
func (p params) duration(name string) (time.Duration, error) {
	v := p.value(name, catalog.Duration)
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
	n, err := strconv.Atoi(p.value(name, catalog.Count))
	if err != nil || n < 1 {
		return 0, p.bad(name, "not a whole number of at least 1")
	}
	return n, nil
}

// seed parses an optional unsigned seed; ok is false when it is absent.
func (p params) seed(name string) (seed uint64, ok bool, err error) {
	v := p.value(name, catalog.Seed)
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
