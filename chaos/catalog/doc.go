// Package catalog is the fault catalogue as data: every deliberate failure
// rds-csi is tested against, by name, with its parameters (kind, default,
// whether required), its documentation and whether it lasts until undone.
//
// Two sides need the same facts and must never disagree about them: package
// chaos implements the faults and builds them from a name and parameter
// values, and package scenarios/spec checks a scenario file's timeline before
// anything runs. A copy on each side drifts (it did: names, defaults and
// documentation differed), so both read this package. It imports nothing but
// the standard library, which keeps the scenario format free of the emulator
// and client-go that chaos needs.
//
// A fault's name is spelled once, as a constant here; chaos's implementation
// of the fault returns that constant from Name and registers its constructor
// under it; chaos.Lookup checks parameter names and choices and fills in
// defaults from the entry. chaos's tests hold each implementation to its
// entry: the fault's fields are the entry's parameters, of their kinds, each
// parameter changes the fault, and a fault returns an Undo exactly when the
// entry says it is undoable.
package catalog
