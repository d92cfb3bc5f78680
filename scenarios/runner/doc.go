// Package runner plays scenario files (package spec) on the engine's World
// (package engine): it creates the declared volumes, applies the timeline's
// actions at their virtual instants, undoes faults given a duration, watches
// every expectation over its window at every instant, and collects the
// invariant violations the scenario asks for. The outcome is a
// report.Summary and the JSONL trace; a run is reproduced by its file and
// seed.
//
// Expectations are monitors, not blocking waits: an expectation with a
// 10-minute window watches while the timeline goes on, so a file reads like
// the incident it replays.
package runner
