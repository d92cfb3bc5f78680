package routeros

import (
	"regexp"
	"strconv"
)

// Command is one parsed console command.
type Command struct {
	Pos   Pos
	Path  []string // absolute menu path, e.g. {"disk"}, {"system", "identity"}
	Verb  string   // "add", "set", "remove", "print"
	Items *Items   // positional item selector for set/remove; nil if absent
	Args  []Arg    // name=value arguments in input order (duplicates kept)
	Words []string // bare flag words, e.g. "detail"
	Where Expr     // `where <expr>` clause; nil if absent
}

// Items is a positional item selector: exactly one of Find or Indices is set.
type Items struct {
	Find    *Find
	Indices []int // literal list such as `0` or `0,3,5`
}

// Find is `[find]`, `[find <expr>]` or `[find where <expr>]`; Where nil
// selects every entry.
type Find struct{ Where Expr }

// Arg is one name=value argument; Pos is the position of the name.
type Arg struct {
	Pos   Pos
	Name  string
	Value Value
}

// Value is an argument value. For a sub-expression such as
// copy-from=[find slot=x], Find is set and Text is empty.
type Value struct {
	Text   string // unquoted/unescaped text
	Quoted bool
	Find   *Find
}

type parser struct {
	*lexer
	root  *node
	cwd   *node // current menu, changed by a path-only command as in export files
	depth int
}

// Parse parses a whole script. Either every command parses and is returned, or
// nothing is: RouterOS checks a script before running any of it. The error, if
// any, is an *Error. A nil schema means DefaultSchema.
func Parse(script string, s *Schema) ([]Command, error) {
	cmds, _, err := ParseIn(script, s, nil)
	return cmds, err
}

// ParseIn parses a script typed in the menu at path menu (nil for the root),
// as at an interactive prompt that has entered it: words without a leading
// '/' are relative to it, ".." goes up one level, and a line holding only a
// path ("/disk", "..", "/") moves there. It returns the menu the script ends
// in, which is menu itself when the script fails to parse. A menu path that
// is not in the schema starts from the root.
func ParseIn(script string, s *Schema, menu []string) ([]Command, []string, error) {
	if s == nil {
		s = DefaultSchema()
	}
	if len(script) > maxScript {
		return nil, menu, &Error{Msg: msgSyntax, Pos: Pos{Line: 1, Col: 1}}
	}
	root := buildTree(s)
	p := &parser{lexer: newLexer(script), root: root, cwd: root.at(menu)}
	cmds, err := p.script()
	if err != nil {
		return nil, menu, err // not returned directly: a nil *Error is a non-nil error
	}
	return cmds, append([]string(nil), p.cwd.path...), nil
}

func (p *parser) script() ([]Command, *Error) {
	var cmds []Command
	for {
		p.skipSpace()
		switch c := p.peek(); {
		case c < 0:
			return cmds, nil
		case c == '\n' || c == ';':
			p.off++
			continue
		case c == '#':
			for c := p.peek(); c >= 0 && c != '\n'; c = p.peek() {
				p.off++
			}
			continue
		}
		cmd, ok, err := p.command()
		if err != nil {
			return nil, err
		}
		if ok {
			cmds = append(cmds, cmd)
		}
	}
}

// command parses one command up to (not including) its terminator. ok is false
// for a path-only command, which just changes the current menu.
func (p *parser) command() (Command, bool, *Error) {
	start := p.off
	n := p.cwd
	if p.peek() == '/' {
		p.off++
		n = p.root
	}
	var verb *Verb
	var verbName string
	for verb == nil {
		p.skipSpace()
		if p.atEOC() {
			p.cwd = n
			return Command{}, false, nil
		}
		wstart := p.off
		w := p.pathWord()
		if w == "" {
			return Command{}, false, p.errAt(p.off, msgSyntax)
		}
		if w == ".." {
			n = p.root.at(n.path[:max(len(n.path)-1, 0)])
			if p.peek() == '/' {
				p.off++
			}
			continue
		}
		if c := n.children[w]; c != nil {
			n = c
			if p.peek() == '/' { // slash form: /system/identity
				p.off++
			}
			continue
		}
		if n.menu != nil {
			verb, verbName = n.menu.Verbs[w], w
		}
		if verb == nil {
			return Command{}, false, p.errAt(wstart, msgBadCommand+w)
		}
	}
	cmd := Command{Pos: p.pos(start), Path: append([]string(nil), n.path...), Verb: verbName}
	return cmd, true, p.arguments(&cmd, verb)
}

// arguments parses everything after the verb.
func (p *parser) arguments(cmd *Command, verb *Verb) *Error {
	for {
		p.skipSpace()
		if p.atEOC() {
			return nil
		}
		tstart := p.off
		c := p.peek()
		switch {
		case c == '[':
			if !verb.Items || cmd.Items != nil {
				return p.errAt(tstart, msgExpectedEnd)
			}
			f, err := p.find()
			if err != nil {
				return err
			}
			if err := p.valueEnd(); err != nil {
				return err
			}
			cmd.Items = &Items{Find: f}
		case c == '=':
			return p.errAt(tstart, msgSyntax) // `=` with no name
		case isNameChar(c):
			name := p.name()
			if p.peek() == '=' {
				if !verb.Args[name] {
					return p.errAt(tstart, msgExpectedEnd)
				}
				p.off++
				v, err := p.value()
				if err != nil {
					return err
				}
				cmd.Args = append(cmd.Args, Arg{Pos: p.pos(tstart), Name: name, Value: v})
				continue
			}
			// Not an argument: rescan as a whole bare token (`0,1,2`).
			p.off = tstart
			tok, err := p.unquoted()
			if err != nil {
				return err
			}
			if err := p.valueEnd(); err != nil {
				return err
			}
			switch {
			case verb.Items && cmd.Items == nil && indexList(tok) != nil:
				cmd.Items = &Items{Indices: indexList(tok)}
			case tok == name && verb.Words[tok]:
				cmd.Words = append(cmd.Words, tok)
			case tok == "where" && verb.Where:
				e, err := p.expr()
				if err != nil {
					return err
				}
				cmd.Where = e
				// where takes the rest of the command.
				p.skipSpace()
				if p.atEOC() {
					return nil
				}
				return p.stray()
			default:
				return p.errAt(tstart, msgExpectedEnd)
			}
		default:
			return p.stray()
		}
	}
}

// indexList parses `0` or `0,3,5`; nil if tok is not such a list. Indices are
// capped at nine digits so conversion cannot overflow.
func indexList(tok string) []int {
	var out []int
	start := 0
	for i := 0; i <= len(tok); i++ {
		if i < len(tok) && tok[i] != ',' {
			if tok[i] < '0' || tok[i] > '9' {
				return nil
			}
			continue
		}
		if i == start || i-start > 9 {
			return nil
		}
		n, _ := strconv.Atoi(tok[start:i])
		out = append(out, n)
		start = i + 1
	}
	return out
}

// stray reports the token at l.off, which cannot appear where it is. Malformed
// or unbalanced tokens are syntax errors; well-formed but unexpected ones are
// "expected end of command", which is how RouterOS distinguishes the two.
func (p *parser) stray() *Error {
	start := p.off
	c := p.peek()
	switch {
	case c == ']' || c == ')' || c == '(' || c == '{' || c == '}' || isForbidden(c):
		return p.errAt(start, msgSyntax)
	case c == '"':
		if _, err := p.quoted(); err != nil {
			return err
		}
	case c == '[':
	default:
		if _, err := p.unquoted(); err != nil {
			return err
		}
	}
	return p.errAt(start, msgExpectedEnd)
}

// value parses an argument value after `=`.
func (p *parser) value() (Value, *Error) {
	var v Value
	var err *Error
	switch p.peek() {
	case '"':
		v.Quoted = true
		v.Text, err = p.quoted()
	case '[':
		v.Find, err = p.find()
	default:
		v.Text, err = p.unquoted()
	}
	if err == nil {
		err = p.valueEnd()
	}
	return v, err
}

// enter bumps the nesting depth for the construct at off.
func (p *parser) enter(off int) *Error {
	if p.depth >= maxDepth {
		return p.errAt(off, msgSyntax)
	}
	p.depth++
	return nil
}

// find parses `[find ...]` at l.off. An unclosed bracket is reported at the
// `[`, the token that is unbalanced.
func (p *parser) find() (*Find, *Error) {
	open := p.off
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.off++
	p.skipSpace()
	if p.atEOC() {
		return nil, p.errAt(open, msgSyntax)
	}
	wstart := p.off
	w := p.pathWord()
	if w == "" {
		return nil, p.errAt(p.off, msgSyntax)
	}
	if w != "find" {
		return nil, p.errAt(wstart, msgBadCommand+w)
	}
	f := &Find{}
	p.skipSpace()
	if p.peek() != ']' {
		if p.atEOC() {
			return nil, p.errAt(open, msgSyntax)
		}
		if p.keywordAt("where") {
			p.off += len("where")
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		f.Where = e
		p.skipSpace()
	}
	switch c := p.peek(); {
	case c == ']':
		p.off++
		return f, nil
	case p.atEOC():
		return nil, p.errAt(open, msgSyntax)
	default:
		return nil, p.stray()
	}
}

// expr parses `or` chains: the lowest precedence.
func (p *parser) expr() (Expr, *Error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		if !p.keywordAt("or") {
			return l, nil
		}
		p.off += len("or")
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Or{L: l, R: r}
	}
}

// and parses `and` chains. Juxtaposed conditions (`[find slot=a type=file]`)
// are also a conjunction, as in RouterOS find arguments.
func (p *parser) and() (Expr, *Error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		switch {
		case p.keywordAt("and"):
			p.off += len("and")
		case p.startsOperand():
		default:
			return l, nil
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &And{L: l, R: r}
	}
}

// startsOperand reports whether an implicit-and operand starts here. It must
// not claim words like `detail` that belong to the command, hence the
// requirement that a property be directly followed by an operator.
func (p *parser) startsOperand() bool {
	c := p.peek()
	if c == '(' || c == '!' && p.at(p.off+1) != '=' || p.keywordAt("not") {
		return true
	}
	end := p.off
	for isNameChar(p.at(end)) {
		end++
	}
	return end > p.off && p.isOpAt(end) && !p.keywordAt("or") && !p.keywordAt("and")
}

func (p *parser) unary() (Expr, *Error) {
	p.skipSpace()
	start := p.off
	var n int
	switch {
	case p.peek() == '!' && p.at(p.off+1) != '=':
		n = 1
	case p.keywordAt("not"):
		n = len("not")
	default:
		return p.primary()
	}
	if err := p.enter(start); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.off += n
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	return &Not{X: x}, nil
}

func (p *parser) primary() (Expr, *Error) {
	p.skipSpace()
	start := p.off
	if p.peek() == '(' {
		if err := p.enter(start); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.off++
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		switch c := p.peek(); {
		case c == ')':
			p.off++
			return e, nil
		case p.atEOC() || c == ']':
			return nil, p.errAt(start, msgSyntax) // unbalanced (
		default:
			return nil, p.errAt(p.off, msgSyntax)
		}
	}
	prop := p.name()
	if prop == "" {
		return nil, p.errAt(p.off, msgSyntax)
	}
	var op string
	switch {
	case p.peek() == '=':
		op = "="
	case p.peek() == '~':
		op = "~"
	case p.peek() == '!' && p.at(p.off+1) == '=':
		op = "!="
	default:
		return nil, p.errAt(p.off, msgSyntax)
	}
	p.off += len(op)
	vstart := p.off
	var val string
	var err *Error
	switch p.peek() {
	case '"':
		val, err = p.quoted()
	case '[':
		err = p.errAt(p.off, msgSyntax) // sub-commands in conditions are not supported
	default:
		val, err = p.unquoted()
	}
	if err == nil {
		err = p.valueEnd()
	}
	if err != nil {
		return nil, err
	}
	c := &Compare{Prop: prop, Op: op, Value: val}
	if op == "~" {
		re, rerr := regexp.Compile(val)
		if rerr != nil {
			return nil, p.errAt(vstart, msgSyntax)
		}
		c.Re = re
	}
	return c, nil
}
