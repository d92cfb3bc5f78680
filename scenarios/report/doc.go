// Package report turns the trace of one scenario run into something a person
// reads: a timeline for the terminal (Timeline) and a single self-contained
// HTML page (HTML) whose centre is a picture of the run.
//
// The trace is the engine's JSON lines (Parse): one event per line with its
// virtual time, sorted by time, in the kinds and field names of
// scenarios/trace. Kinds the report does not draw are listed raw. A three-hour outage holds a few interesting
// moments (a fault, the connection lost and regained, a node dying, an
// expectation failing) among tens of thousands of routine ones (RouterOS
// commands, RPCs, health checks, reconnect attempts). Both renderings are
// built around that ratio: the routine events are counted between the
// interesting ones rather than listed, runs of near-identical events (500
// VolumeAttachments attached in one instant, the 600th failed reconnect) are
// folded after the first few, and the picture draws state per lane at the
// resolution of a pixel, so its size depends on the width of the picture and
// the number of lanes, not on the length of the trace.
//
// The picture has one shared time axis and swim lanes from cause to effect:
// faults, the RDS connection, RouterOS command and RPC activity, the Probe,
// controller replicas, then per node its state and the volumes attached to
// it, and at the bottom the verdicts (expectations, invariant violations,
// Warning events). State bands are simplified so that a state shorter than a
// pixel stays visible when it is the worse one (a one-second disconnect in a
// day-long run) and disappears into its neighbour when it is not (the instant
// of "connecting" between two failed attempts).
//
// Everything is a pure function of its input: no clocks, no map iteration
// order, so the same trace always renders to the same bytes, and reports of
// two runs can be compared with diff.
package report
