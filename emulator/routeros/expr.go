package routeros

import (
	"regexp"
	"strings"
)

// Props looks up a property of the entry being filtered (ok=false if the entry
// has no such property).
type Props func(name string) (value string, ok bool)

// Expr is a parsed `where`/`find` condition. Parse produces *Compare, *And,
// *Or and *Not; pointer receivers make a type switch on the value types a
// compile error instead of a silent miss.
type Expr interface {
	Match(p Props) bool
	// String is a canonical form that Parse accepts back after `where`, for
	// logs and round-trip tests.
	String() string
}

// Compare is `Prop Op Value`. It is exported so the interpreter can recognise
// `slot=X` and answer it from an index instead of scanning every entry.
type Compare struct {
	Prop  string
	Op    string // "=", "!=", "~"
	Value string
	Re    *regexp.Regexp // compiled at parse time for "~"
}

// And is `L and R` (also written as juxtaposition: `a=1 b=2`).
type And struct{ L, R Expr }

// Or is `L or R`.
type Or struct{ L, R Expr }

// Not is `!X` or `not X`.
type Not struct{ X Expr }

func lookup(p Props, name string) (string, bool) {
	if p == nil {
		return "", false
	}
	return p(name)
}

// Match compares as strings. A missing property fails `=` and `~` but
// satisfies `!=`: RouterOS treats an absent property as unequal to anything.
func (c *Compare) Match(p Props) bool {
	v, ok := lookup(p, c.Prop)
	switch c.Op {
	case "=":
		return ok && v == c.Value
	case "!=":
		return !ok || v != c.Value
	case "~":
		if !ok {
			return false
		}
		re := c.Re
		if re == nil { // hand-built Compare; Parse always sets Re
			var err error
			if re, err = regexp.Compile(c.Value); err != nil {
				return false
			}
		}
		return re.MatchString(v)
	}
	return false
}

func (a *And) Match(p Props) bool { return a.L != nil && a.R != nil && a.L.Match(p) && a.R.Match(p) }
func (o *Or) Match(p Props) bool {
	return o.L != nil && o.L.Match(p) || o.R != nil && o.R.Match(p)
}
func (n *Not) Match(p Props) bool { return n.X != nil && !n.X.Match(p) }

// writeExpr renders e into one builder. Building strings by concatenation at
// each node would be quadratic on a long `a=1 and a=2 and ...` chain, which a
// 1 MiB script can make 250k terms long.
func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
		b.WriteString("<nil>")
	case *Compare:
		if e == nil {
			b.WriteString("<nil>")
			return
		}
		b.WriteString(e.Prop)
		b.WriteString(e.Op)
		b.WriteString(Quote(e.Value))
	case *And:
		if e == nil {
			b.WriteString("<nil>")
			return
		}
		writeParen(b, e.L, isOr(e.L))
		b.WriteString(" and ")
		writeParen(b, e.R, isOr(e.R) || isAnd(e.R))
	case *Or:
		if e == nil {
			b.WriteString("<nil>")
			return
		}
		writeExpr(b, e.L)
		b.WriteString(" or ")
		writeParen(b, e.R, isOr(e.R))
	case *Not:
		if e == nil {
			b.WriteString("<nil>")
			return
		}
		b.WriteByte('!')
		writeParen(b, e.X, isOr(e.X) || isAnd(e.X))
	default: // an Expr from outside this package
		b.WriteString(e.String())
	}
}

func writeParen(b *strings.Builder, e Expr, need bool) {
	if need {
		b.WriteByte('(')
	}
	writeExpr(b, e)
	if need {
		b.WriteByte(')')
	}
}

func exprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

func isOr(e Expr) bool  { _, ok := e.(*Or); return ok }
func isAnd(e Expr) bool { _, ok := e.(*And); return ok }

// String methods add parentheses only where precedence (! > and > or, both
// left-associative) requires them. Besides readability, this keeps the
// printed nesting no deeper than the input's, so anything Parse accepted
// re-parses within maxDepth.
func (c *Compare) String() string { return exprString(c) }
func (a *And) String() string     { return exprString(a) }
func (o *Or) String() string      { return exprString(o) }
func (n *Not) String() string     { return exprString(n) }
