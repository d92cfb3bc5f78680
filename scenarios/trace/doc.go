// Package trace is the schema of the scenario runner's trace: the event
// type, the kinds of event and the names of their fields. The engine writes
// events with these names (scenarios/engine), the report reads them
// (scenarios/report); both compile against this package, so a kind or a
// field renamed on one side is renamed on the other, and a trace line the
// report cannot place (a swim lane left empty while the run stays
// deterministic) becomes a failing test instead (Kinds, Check).
//
// A trace is JSON lines, one Event each: {"t":<virtual ns>,"kind":...,"f":{...}}.
// Fields stay a map rather than one struct per kind: encoding/json writes
// map keys sorted, which is what makes a line's bytes a function of its
// content, and shipped traces are compared byte for byte; a struct per kind
// would tie the bytes to field declaration order and omitempty rules, and
// the report would still have to read traces generically (it lists kinds it
// does not know raw). The names are constants instead, and the catalogue
// (kinds.go) says which fields each kind carries.
//
// The package depends on the standard library only: it is a leaf under
// both the engine and the report.
package trace
