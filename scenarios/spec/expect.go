package spec

import (
	"strconv"
	"strings"
	"time"
)

// Kind says over which instants an expectation's subject must hold.
type Kind string

// Expectation kinds. The window starts at the step's instant t.
const (
	// Eventually: the subject holds at some instant in [t, t+Within].
	// Within 0 checks the instant t only.
	Eventually Kind = "eventually"
	// Always: the subject holds at every instant in [t, t+For].
	Always Kind = "always"
	// Never: the subject holds at no instant in [t, t+For].
	Never Kind = "never"
)

// Expectation is one check of the timeline.
type Expectation struct {
	Kind    Kind
	Within  time.Duration // Eventually only
	For     time.Duration // Always and Never only
	Subject Subject
	Line    int
}

// Window is how long the expectation watches: Within or For.
func (e Expectation) Window() time.Duration {
	if e.Kind == Eventually {
		return e.Within
	}
	return e.For
}

// Subject is what an expectation checks: one of ProbeState, RDSState,
// VolumeAttachments, EventCount, ClaimState. An engine evaluates it with a
// type switch.
type Subject interface {
	// String is the subject as a scenario file writes it, inside an
	// expectation's braces: `probe: not-ready`.
	String() string
	isSubject()
}

// ProbeState: the CSI Probe RPC answers ready (or not).
type ProbeState struct {
	Ready bool
}

// RDSState: the controller's RDS connection manager reports connected (or
// disconnected).
type RDSState struct {
	Connected bool
}

// VolumeAttachments: every volume the pattern matches (Scenario.MatchVolumes)
// is attached to exactly the nodes in AttachedTo, as VolumeAttachment objects
// in the API server record it. An empty AttachedTo means attached nowhere.
type VolumeAttachments struct {
	Pattern    string
	AttachedTo []string
}

// EventCount: the number of Kubernetes events with this reason recorded since
// the start of the run is Count, or at least Count when AtLeast is set.
// A file that gives no count means at least one.
type EventCount struct {
	Reason  string
	Count   int
	AtLeast bool
}

// ClaimState: the controller's attachment manager holds claims on every
// volume the pattern matches for exactly the nodes in Nodes (its in-memory
// view, as opposed to VolumeAttachments). An empty Nodes means unclaimed.
type ClaimState struct {
	Volume string
	Nodes  []string
}

func (ProbeState) isSubject()        {}
func (RDSState) isSubject()          {}
func (VolumeAttachments) isSubject() {}
func (EventCount) isSubject()        {}
func (ClaimState) isSubject()        {}

// Subject values as files write them.
const (
	probeReady      = "ready"
	probeNotReady   = "not-ready"
	rdsConnected    = "connected"
	rdsDisconnected = "disconnected"
)

func (p ProbeState) String() string {
	if p.Ready {
		return "probe: " + probeReady
	}
	return "probe: " + probeNotReady
}

func (r RDSState) String() string {
	if r.Connected {
		return "rds: " + rdsConnected
	}
	return "rds: " + rdsDisconnected
}

func (v VolumeAttachments) String() string {
	return "volumes: " + quote(v.Pattern) + ", attachedTo: " + flowList(v.AttachedTo)
}

func (e EventCount) String() string {
	key := "count"
	if e.AtLeast {
		key = "atLeast"
	}
	return "events: {reason: " + quote(e.Reason) + ", " + key + ": " + strconv.Itoa(e.Count) + "}"
}

func (c ClaimState) String() string {
	return "claims: {volume: " + quote(c.Volume) + ", nodes: " + flowList(c.Nodes) + "}"
}

func flowList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
