package trace

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// FirstDivergence names the first event at which two traces of one seed
// differ: its line number, its virtual time and kind, and both lines. It is
// empty when the traces are equal. A trace that ends early diverges at the
// first line the other has and it does not.
func FirstDivergence(a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	la, lb := bytes.Split(bytes.TrimRight(a, "\n"), []byte("\n")), bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y []byte
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if bytes.Equal(x, y) {
			continue
		}
		at := x
		if at == nil {
			at = y
		}
		var ev Event
		where := "an undecodable line"
		if json.Unmarshal(at, &ev) == nil {
			where = fmt.Sprintf("t=%v kind=%s", ev.T, ev.Kind)
		}
		return fmt.Sprintf("first divergence at line %d (%s):\n- %s\n+ %s", i+1, where, orEnd(x), orEnd(y))
	}
	return "" // unreachable: unequal traces differ in some line
}

func orEnd(line []byte) string {
	if line == nil {
		return "(trace ended)"
	}
	return string(line)
}
