package attachment

import (
	"fmt"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// Mode is how many nodes may hold a volume at once.
type Mode int

const (
	// SingleNode volumes have exactly one holder. Every CSI access mode
	// other than MULTI_NODE_MULTI_WRITER on a block volume maps here,
	// including the read-only ones: this driver has no read-only sharing.
	SingleNode Mode = iota
	// MultiNodeBlock volumes may have two holders, the source and target of
	// a live migration. Only raw block qualifies: a filesystem mounted on
	// two nodes is corrupted regardless of what the guest intends.
	MultiNodeBlock
)

func (m Mode) String() string {
	switch m {
	case SingleNode:
		return "SingleNode"
	case MultiNodeBlock:
		return "MultiNodeBlock"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) valid() bool { return m == SingleNode || m == MultiNodeBlock }

// ModeFor maps a CSI volume capability onto a Mode. It is the one place the
// "no multi-node filesystem" rule lives, so the controller cannot build a
// MultiNodeBlock mode for a mount volume by accident. The controller already
// refuses such volumes at CreateVolume; this catches pre-existing ones.
func ModeFor(multiNode, block bool) (Mode, error) {
	switch {
	case !multiNode:
		return SingleNode, nil
	case block:
		return MultiNodeBlock, nil
	}
	return SingleNode, fmt.Errorf("%w: multi-node access is only supported for block volumes, not filesystems", ErrInvalidArgument)
}

// Claim is one node's hold on one volume: the Manager's view of a
// VolumeAttachment that is attached.
type Claim struct {
	Volume string
	Node   string
	Mode   Mode
	// Since is when the claim was made. On a MultiNodeBlock volume the later
	// of the two claims starts the migration window.
	Since time.Time
	// GoneSince is when the node was reported gone; zero while it is
	// healthy.
	GoneSince time.Time
	// Grace is how long the claim survives its node being reported gone.
	Grace time.Duration
}

// LapsesAt is when the claim stops protecting the volume, or the zero time
// if its node is healthy (a healthy node's claim never lapses).
func (c Claim) LapsesAt() time.Time {
	if c.GoneSince.IsZero() {
		return time.Time{}
	}
	return c.GoneSince.Add(c.Grace)
}

// Stale reports whether the claim has lapsed at now. The boundary counts as
// lapsed so that "lapses at T" in a refusal is the first instant a retry can
// succeed.
func (c Claim) Stale(now time.Time) bool {
	l := c.LapsesAt()
	return !l.IsZero() && !now.Before(l)
}

// Migration is a MultiNodeBlock volume held by two nodes.
type Migration struct {
	Volume string
	// Source is the older claim, Target the newer one.
	Source, Target string
	// Since is when the target attached; Deadline is Since plus the
	// migration window.
	Since, Deadline time.Time
	// Overdue is set once Deadline has passed. It is only a warning: both
	// attachments stay.
	Overdue bool
}

// EventType names what happened. The values are stable strings because the
// scenario runner and the Kubernetes event recorder print them verbatim.
type EventType string

const (
	Attached           EventType = "Attached"
	Detached           EventType = "Detached"
	Conflict           EventType = "Conflict"
	StaleCleared       EventType = "StaleCleared"
	MigrationStarted   EventType = "MigrationStarted"
	MigrationCompleted EventType = "MigrationCompleted"
	MigrationTimedOut  EventType = "MigrationTimedOut"
	GracePeriodUsed    EventType = "GracePeriodUsed"
)

// Event is something an operator should be able to see afterwards. Node is
// the node the event is about; OtherNode is the counterpart, if any:
//
//	Attached            node attached; OtherNode = the other holder, if any
//	Detached            node detached; OtherNode = the remaining holder
//	Conflict            node was refused; OtherNode = the holder
//	StaleCleared        node's claim was cleared; OtherNode = the node that
//	                    needed the volume ("" for Sweep and ForgetNode)
//	MigrationStarted    node is the target; OtherNode the source
//	MigrationCompleted  node is the one left; OtherNode the one that left
//	MigrationTimedOut   node is the target; OtherNode the source
//	GracePeriodUsed     node came back while it still had a claim
type Event struct {
	Type      EventType
	Volume    string
	Node      string
	OtherNode string
	Message   string
	Time      time.Time
}

// EventSink receives events. It is called without any Manager lock held,
// possibly from several goroutines at once, so it must be safe for
// concurrent use; it may call back into the Manager. A blocking sink only
// delays the caller whose operation produced the event.
type EventSink interface {
	Event(e Event)
}

// EventFunc adapts a function to EventSink.
type EventFunc func(Event)

// Event calls f(e).
func (f EventFunc) Event(e Event) { f(e) }

type discard struct{}

func (discard) Event(Event) {}

// Defaults used when Options leaves a field zero.
const (
	DefaultGracePeriod     = 30 * time.Second
	DefaultMigrationWindow = 5 * time.Minute
)

// Options configures a Manager. Zero values select the defaults, so a zero
// grace period cannot be configured: a grace of zero would turn every
// spurious "gone" report into a double attachment.
type Options struct {
	// Clock is the only source of time. Nil means the real clock.
	Clock clock.Clock
	// GracePeriod is the default per-claim grace; Publish may override it.
	GracePeriod time.Duration
	// MigrationWindow is how long two nodes may hold a MultiNodeBlock
	// volume before it is reported as overdue.
	MigrationWindow time.Duration
	// Events receives events; nil discards them.
	Events EventSink
}

// SweepResult is what Sweep found.
type SweepResult struct {
	// Cleared are the stale claims Sweep removed, sorted by volume, then
	// node.
	Cleared []Claim
	// Overdue are all migrations past their window, sorted by volume. They
	// are reported on every Sweep (it is state, not news); the
	// MigrationTimedOut event fires only once per migration.
	Overdue []Migration
}
