package routeros

import "fmt"

// Pos is a 1-based line/column position in the script. Columns count bytes,
// not runes, because that is what RouterOS reports.
type Pos struct{ Line, Col int }

// The three error classes RouterOS's console parser reports. The driver
// recognises failures by these texts (errors arrive on stdout with no reliable
// exit status), so they must match the real console word for word.
const (
	msgSyntax      = "syntax error"
	msgExpectedEnd = "expected end of command"
	msgBadCommand  = "bad command name "
)

// Error is a RouterOS console parse error.
type Error struct {
	Msg string // e.g. "bad command name frob", "syntax error", "expected end of command"
	Pos Pos
}

// Error returns exactly the text RouterOS prints, e.g.
// "syntax error (line 1 column 12)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s (line %d column %d)", e.Msg, e.Pos.Line, e.Pos.Col)
}
