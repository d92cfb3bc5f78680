package routeros

import "strings"

// Schema says which menus, verbs and argument names exist. Unknown ones are
// parse errors rather than runtime failures because that is where RouterOS
// reports them too (with a position), and because it keeps the interpreter
// from having to re-validate names.
type Schema struct {
	// Menus is keyed by the space-separated menu path, e.g. "disk",
	// "system identity".
	Menus map[string]*Menu
}

// Menu lists the verbs of one menu.
type Menu struct {
	Verbs map[string]*Verb
}

// Verb describes what a verb accepts.
type Verb struct {
	Args  map[string]bool // allowed name=value argument names
	Words map[string]bool // allowed bare flag words, e.g. "detail"
	Items bool            // takes a positional item selector ("numbers")
	Where bool            // accepts a trailing `where <expr>`
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// DefaultSchema returns the subset of RouterOS that the RDS driver uses. A new
// value is returned each call so callers may extend it without affecting
// others.
func DefaultSchema() *Schema {
	nvme := []string{"nvme-tcp-export", "nvme-tcp-server-port", "nvme-tcp-server-nqn", "nvme-tcp-server-allow-host-name"}
	addArgs := append([]string{"type", "file-path", "file-size", "slot", "copy-from", "comment"}, nvme...)
	setArgs := append([]string{"file-size", "slot", "comment"}, nvme...)
	printVerb := func() *Verb { return &Verb{Words: set("detail", "count-only"), Where: true} }
	return &Schema{Menus: map[string]*Menu{
		"disk": {Verbs: map[string]*Verb{
			"add":    {Args: set(addArgs...)},
			"set":    {Args: set(setArgs...), Items: true},
			"remove": {Items: true},
			"print":  printVerb(),
		}},
		"file": {Verbs: map[string]*Verb{
			"print":  printVerb(),
			"remove": {Items: true},
		}},
		"system identity": {Verbs: map[string]*Verb{
			"print": {},
			"set":   {Args: set("name")},
		}},
		"system resource": {Verbs: map[string]*Verb{
			"print": {},
		}},
	}}
}

// node is one level of the menu tree. RouterOS resolves a path word by word
// ("system" then "identity"), and reports the first word that does not
// resolve, so the flat Schema map is turned into a tree for parsing.
type node struct {
	path     []string
	children map[string]*node
	menu     *Menu // nil for pure prefixes such as "system"
}

func buildTree(s *Schema) *node {
	root := &node{children: map[string]*node{}}
	for key, m := range s.Menus {
		words := strings.FieldsFunc(key, func(r rune) bool { return r == ' ' || r == '/' })
		n := root
		for i, w := range words {
			c := n.children[w]
			if c == nil {
				c = &node{path: append([]string(nil), words[:i+1]...), children: map[string]*node{}}
				n.children[w] = c
			}
			n = c
		}
		if len(words) > 0 {
			n.menu = m
		}
	}
	return root
}

// at returns the node at path below n, or n itself when path leaves the tree.
func (n *node) at(path []string) *node {
	m := n
	for _, w := range path {
		c := m.children[w]
		if c == nil {
			return n
		}
		m = c
	}
	return m
}
