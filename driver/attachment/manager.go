package attachment

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// shardCount trades memory for contention. 64 shards keep the chance that
// two controller workers (the external-attacher runs a handful) collide on
// one shard low without making Sweep's walk noticeably longer.
const shardCount = 64

// Manager holds the attachment state. The zero value is not usable; call
// New.
type Manager struct {
	clock  clock.Clock
	grace  time.Duration
	window time.Duration
	sink   EventSink

	shards [shardCount]shard

	// nodeMu serialises NodeGone, NodeBack and Restore, which rewrite gone
	// and then stamp claims shard by shard; letting two of them interleave
	// could leave a node marked back with claims still marked gone.
	nodeMu sync.Mutex
	// gone maps a node reported gone to when it was reported. It is
	// copy-on-write so Publish can consult it without a lock shared by all
	// volumes. The timestamps that decide staleness live on the claims;
	// this only refuses new claims on a gone node.
	gone atomic.Pointer[map[string]time.Time]
}

type shard struct {
	mu   sync.Mutex
	vols map[string]*volState
	// Pad to a cache line so neighbouring shard mutexes do not share one
	// and bounce between cores.
	_ [64 - 16]byte
}

type volState struct {
	// claims in attach order: on a migration, [0] is the source.
	claims []Claim
	// warned records that MigrationTimedOut was emitted for the current
	// migration, so the event fires once while Sweep keeps reporting it.
	warned bool
}

// migrating reports whether the volume is a live migration: two holders,
// both sharing on purpose. Anything else with two holders is an anomaly
// only Restore can produce.
func (v *volState) migrating() bool {
	return len(v.claims) == 2 && v.claims[0].Mode == MultiNodeBlock && v.claims[1].Mode == MultiNodeBlock
}

func (m *Manager) migration(volume string, v *volState, now time.Time) Migration {
	since := v.claims[1].Since
	if v.claims[0].Since.After(since) {
		since = v.claims[0].Since
	}
	deadline := since.Add(m.window)
	return Migration{
		Volume:   volume,
		Source:   v.claims[0].Node,
		Target:   v.claims[1].Node,
		Since:    since,
		Deadline: deadline,
		Overdue:  !now.Before(deadline),
	}
}

// New returns an empty Manager. Start-up state comes from Restore.
func New(o Options) *Manager {
	m := &Manager{
		clock:  o.Clock,
		grace:  o.GracePeriod,
		window: o.MigrationWindow,
		sink:   o.Events,
	}
	if m.clock == nil {
		m.clock = clock.New()
	}
	if m.grace <= 0 {
		m.grace = DefaultGracePeriod
	}
	if m.window <= 0 {
		m.window = DefaultMigrationWindow
	}
	if m.sink == nil {
		m.sink = discard{}
	}
	for i := range m.shards {
		m.shards[i].vols = make(map[string]*volState)
	}
	empty := map[string]time.Time{}
	m.gone.Store(&empty)
	return m
}

// now is in UTC so that messages and traces do not depend on the host's
// time zone (the mock clock starts at the Unix epoch in local time), and
// without a monotonic reading, because claims are compared with wall-clock
// timestamps restored from VolumeAttachments.
func (m *Manager) now() time.Time { return m.clock.Now().UTC() }

func (m *Manager) shardFor(volume string) *shard {
	// FNV-1a inline: deterministic and allocation-free.
	h := uint32(2166136261)
	for i := 0; i < len(volume); i++ {
		h ^= uint32(volume[i])
		h *= 16777619
	}
	return &m.shards[h%shardCount]
}

func (s *shard) store(volume string, v *volState) {
	if len(v.claims) == 0 {
		delete(s.vols, volume)
		return
	}
	s.vols[volume] = v
}

func (m *Manager) emit(evs []Event) {
	for _, e := range evs {
		m.sink.Event(e)
	}
}

func (m *Manager) goneSince(node string) (time.Time, bool) {
	t, ok := (*m.gone.Load())[node]
	return t, ok
}

// Publish records that volume is attached to node, or refuses.
//
// grace is this volume's grace period (0 selects the default). It is fixed
// when the claim is made; a repeated publish does not change it, so a
// retrying attacher cannot stretch the grace of a node already gone.
//
// Errors: ErrInvalidArgument, *ConflictError, *TooManyAttachmentsError, or
// ErrNodeGone when node has no claim on volume and is reported gone.
// Publishing again to a node that holds the volume succeeds, even if that
// node is gone: the VolumeAttachment is already attached and flipping it to
// an error would help nobody.
func (m *Manager) Publish(volume, node string, mode Mode, grace time.Duration) error {
	if err := validate(volume, node, mode, grace); err != nil {
		return err
	}
	if grace == 0 {
		grace = m.grace
	}
	now := m.now()
	sh := m.shardFor(volume)
	var evs []Event
	sh.mu.Lock()
	err := m.publishLocked(sh, volume, node, mode, grace, now, &evs)
	sh.mu.Unlock()
	m.emit(evs)
	return err
}

func validate(volume, node string, mode Mode, grace time.Duration) error {
	switch {
	case volume == "":
		return fmt.Errorf("%w: empty volume ID", ErrInvalidArgument)
	case node == "":
		return fmt.Errorf("%w: empty node ID", ErrInvalidArgument)
	case !mode.valid():
		return fmt.Errorf("%w: unknown mode %v", ErrInvalidArgument, mode)
	case grace < 0:
		return fmt.Errorf("%w: negative grace period %v", ErrInvalidArgument, grace)
	}
	return nil
}

func (m *Manager) publishLocked(sh *shard, volume, node string, mode Mode, grace time.Duration, now time.Time, evs *[]Event) error {
	v := sh.vols[volume]
	if v == nil {
		v = &volState{}
	}
	// The requester's own claim is never cleared here: a node asking again
	// for what it holds is not evidence that its claim is dead.
	m.clearStale(volume, v, node, now, evs, nil)

	own := -1
	var buf [2]Claim
	others := buf[:0]
	for i, c := range v.claims {
		if c.Node == node {
			own = i
		} else {
			others = append(others, c)
		}
	}
	if own < 0 {
		if since, gone := m.goneSince(node); gone {
			sh.store(volume, v)
			return fmt.Errorf("%w: node %s was reported gone at %s; volume %s cannot be published to it until it is back",
				ErrNodeGone, node, fmtTime(since), volume)
		}
	}
	if err := m.admit(volume, node, mode, others, now); err != nil {
		sh.store(volume, v)
		holder := others[0].Node
		*evs = append(*evs, Event{Type: Conflict, Volume: volume, Node: node, OtherNode: holder, Message: err.Error(), Time: now})
		return err
	}
	if own >= 0 {
		// admit has checked the new mode against the other holders, so a
		// sole holder may switch mode; nothing else about the claim moves.
		v.claims[own].Mode = mode
		sh.store(volume, v)
		return nil
	}
	v.claims = append(v.claims, Claim{Volume: volume, Node: node, Mode: mode, Since: now, Grace: grace})
	sh.store(volume, v)
	other := ""
	if len(others) > 0 {
		other = others[0].Node
	}
	*evs = append(*evs, Event{Type: Attached, Volume: volume, Node: node, OtherNode: other,
		Message: fmt.Sprintf("volume %s attached to node %s (%v)", volume, node, mode), Time: now})
	if v.migrating() {
		// A new migration deserves its own MigrationTimedOut.
		v.warned = false
		mg := m.migration(volume, v, now)
		*evs = append(*evs, Event{Type: MigrationStarted, Volume: volume, Node: node, OtherNode: other,
			Message: fmt.Sprintf("volume %s is attached to source node %s and target node %s; the migration should complete by %s (window %v)",
				volume, mg.Source, mg.Target, fmtTime(mg.Deadline), m.window),
			Time: now})
	}
	return nil
}

// admit decides whether node may hold volume alongside others, which holds
// no stale claims.
func (m *Manager) admit(volume, node string, mode Mode, others []Claim, now time.Time) error {
	switch {
	case len(others) == 0:
		return nil
	case len(others) == 1 && mode == MultiNodeBlock && others[0].Mode == MultiNodeBlock:
		return nil
	case len(others) == 1:
		h := others[0]
		e := &ConflictError{Volume: volume, Node: node, Holder: h.Node, LapsesAt: h.LapsesAt()}
		if e.LapsesAt.IsZero() {
			e.Message = fmt.Sprintf("node %s holds volume %s; it must be unpublished from node %s before it can be published to node %s",
				h.Node, volume, h.Node, node)
		} else {
			e.Message = fmt.Sprintf("node %s holds volume %s; its claim lapses at %s (in %s) because node %s was reported gone at %s",
				h.Node, volume, fmtTime(e.LapsesAt), fmtLeft(e.LapsesAt.Sub(now)), h.Node, fmtTime(h.GoneSince))
		}
		return e
	}
	e := &TooManyAttachmentsError{Volume: volume, Node: node}
	for _, h := range others {
		e.Holders = append(e.Holders, h.Node)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "volume %s is already attached to nodes %s; a third node (%s) is never allowed",
		volume, strings.Join(e.Holders, " and "), node)
	for _, h := range others {
		if l := h.LapsesAt(); !l.IsZero() {
			fmt.Fprintf(&b, "; node %s's claim lapses at %s (in %s)", h.Node, fmtTime(l), fmtLeft(l.Sub(now)))
		}
	}
	e.Message = b.String()
	return e
}

// clearStale removes the lapsed claims of every node but keep. It is the
// lazy half of staleness: each decision looks at the timestamps itself, so
// nothing depends on Sweep having run.
func (m *Manager) clearStale(volume string, v *volState, keep string, now time.Time, evs *[]Event, cleared *[]Claim) {
	stale := false
	for _, c := range v.claims {
		if c.Node != keep && c.Stale(now) {
			stale = true
			break
		}
	}
	if !stale {
		return
	}
	wasMigrating := v.migrating()
	kept := v.claims[:0]
	var gone []Claim
	for _, c := range v.claims {
		if c.Node != keep && c.Stale(now) {
			gone = append(gone, c)
			continue
		}
		kept = append(kept, c)
	}
	clear(v.claims[len(kept):])
	v.claims = kept
	for _, c := range gone {
		msg := fmt.Sprintf("claim of node %s on volume %s lapsed at %s (node reported gone at %s, grace %v) and was cleared",
			c.Node, volume, fmtTime(c.LapsesAt()), fmtTime(c.GoneSince), c.Grace)
		if keep != "" {
			msg += " for node " + keep
		}
		*evs = append(*evs, Event{Type: StaleCleared, Volume: volume, Node: c.Node, OtherNode: keep, Message: msg, Time: now})
		if cleared != nil {
			*cleared = append(*cleared, c)
		}
	}
	m.endMigration(volume, v, wasMigrating, gone, now, evs)
}

// endMigration emits MigrationCompleted if removing left from a migrating
// volume left a single holder.
func (m *Manager) endMigration(volume string, v *volState, wasMigrating bool, left []Claim, now time.Time, evs *[]Event) {
	if !wasMigrating || v.migrating() || len(v.claims) != 1 || len(left) == 0 {
		return
	}
	*evs = append(*evs, Event{Type: MigrationCompleted, Volume: volume, Node: v.claims[0].Node, OtherNode: left[0].Node,
		Message: fmt.Sprintf("volume %s is now held by node %s only; node %s left", volume, v.claims[0].Node, left[0].Node),
		Time:    now})
}

// Unpublish records that volume is no longer attached to node. It needs
// nothing external and cannot fail: detaching is how a conflict is
// resolved, so it must always be possible. Unpublishing what is not
// published is a no-op.
func (m *Manager) Unpublish(volume, node string) {
	now := m.now()
	sh := m.shardFor(volume)
	var evs []Event
	sh.mu.Lock()
	if v := sh.vols[volume]; v != nil {
		m.removeLocked(volume, v, node, now, &evs, Detached, "")
		sh.store(volume, v)
	}
	sh.mu.Unlock()
	m.emit(evs)
}

// removeLocked removes node's claim on volume, reporting whether there was
// one.
func (m *Manager) removeLocked(volume string, v *volState, node string, now time.Time, evs *[]Event, typ EventType, why string) bool {
	i := slices.IndexFunc(v.claims, func(c Claim) bool { return c.Node == node })
	if i < 0 {
		return false
	}
	wasMigrating := v.migrating()
	c := v.claims[i]
	v.claims = slices.Delete(v.claims, i, i+1)
	other := ""
	if len(v.claims) > 0 {
		other = v.claims[0].Node
	}
	msg := fmt.Sprintf("volume %s detached from node %s", volume, node)
	if why != "" {
		msg = fmt.Sprintf("claim of node %s on volume %s cleared: %s", node, volume, why)
	}
	// On a StaleCleared event OtherNode is whoever needed the volume, and
	// ForgetNode has no such node.
	if typ == StaleCleared {
		other = ""
	}
	*evs = append(*evs, Event{Type: typ, Volume: volume, Node: node, OtherNode: other, Message: msg, Time: now})
	m.endMigration(volume, v, wasMigrating, []Claim{c}, now, evs)
	return true
}

// NodeGone reports that node was deleted or tainted out-of-service. Its
// claims start their grace periods now, and new claims on it are refused
// until NodeBack. Repeated reports keep the first timestamp, so a watcher
// re-sending the same taint cannot postpone the lapse.
//
// NotReady is deliberately not an input: a NotReady node may still be
// writing, and only the out-of-service taint or deletion asserts it is not.
func (m *Manager) NodeGone(node string) {
	if node == "" {
		return
	}
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	if _, ok := m.goneSince(node); ok {
		return
	}
	now := m.now()
	// Mark first, then stamp: a Publish racing with us either sees the mark
	// and is refused, or made its claim before we reach its shard and gets
	// stamped.
	m.setGone(func(g map[string]time.Time) { g[node] = now })
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, v := range sh.vols {
			for j := range v.claims {
				if c := &v.claims[j]; c.Node == node && c.GoneSince.IsZero() {
					c.GoneSince = now
				}
			}
		}
		sh.mu.Unlock()
	}
}

// setGone applies f to a copy of the gone map and publishes the copy.
// Callers hold nodeMu.
func (m *Manager) setGone(f func(map[string]time.Time)) {
	g := make(map[string]time.Time, len(*m.gone.Load())+1)
	for k, t := range *m.gone.Load() {
		g[k] = t
	}
	f(g)
	m.gone.Store(&g)
}

// NodeBack cancels NodeGone: the node re-registered or its out-of-service
// taint was removed. Its claims become healthy again. A claim that lapsed
// but was not yet cleared is kept too: nobody took the volume in the
// meantime, so the node's VolumeAttachment is still the truth.
func (m *Manager) NodeBack(node string) {
	var batches []volEvents
	func() {
		m.nodeMu.Lock()
		defer m.nodeMu.Unlock()
		if _, ok := m.goneSince(node); !ok {
			return
		}
		now := m.now()
		m.setGone(func(g map[string]time.Time) { delete(g, node) })
		for i := range m.shards {
			sh := &m.shards[i]
			sh.mu.Lock()
			for volume, v := range sh.vols {
				for j := range v.claims {
					c := &v.claims[j]
					if c.Node != node || c.GoneSince.IsZero() {
						continue
					}
					var msg string
					if c.Stale(now) {
						msg = fmt.Sprintf("node %s is back after its claim on volume %s lapsed at %s; nobody had taken the volume, so the claim stands",
							node, volume, fmtTime(c.LapsesAt()))
					} else {
						msg = fmt.Sprintf("node %s is back %s after it was reported gone; its claim on volume %s was kept by the grace period (%v)",
							node, fmtLeft(now.Sub(c.GoneSince)), volume, c.Grace)
					}
					c.GoneSince = time.Time{}
					batches = append(batches, volEvents{volume, []Event{{Type: GracePeriodUsed, Volume: volume, Node: node, Message: msg, Time: now}}})
				}
			}
			sh.mu.Unlock()
		}
	}()
	m.emitSorted(batches)
}

// volEvents are one volume's events in the order they happened. Walks over
// all shards iterate maps in random order; sorting batches by volume makes
// the event stream reproducible without reordering events within a volume.
type volEvents struct {
	volume string
	evs    []Event
}

func (m *Manager) emitSorted(batches []volEvents) {
	slices.SortStableFunc(batches, func(a, b volEvents) int { return strings.Compare(a.volume, b.volume) })
	for _, b := range batches {
		m.emit(b.evs)
	}
}

// ForgetNode clears every claim of node at once and returns how many there
// were. It is for the reconciler once it has decided the node's
// attachments are dead (for example, their VolumeAttachments are gone);
// the grace period does not apply. It does not mark the node gone or back.
func (m *Manager) ForgetNode(node string) int {
	now := m.now()
	var batches []volEvents
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for volume, v := range sh.vols {
			var evs []Event
			if m.removeLocked(volume, v, node, now, &evs, StaleCleared, "forgotten by the reconciler") {
				n++
				sh.store(volume, v)
				batches = append(batches, volEvents{volume, evs})
			}
		}
		sh.mu.Unlock()
	}
	m.emitSorted(batches)
	return n
}

// Sweep clears every stale claim and reports overdue migrations. The
// periodic reconciler calls it so stale claims on volumes nobody asks for
// still disappear and overdue migrations get noticed; decisions do not
// depend on it.
func (m *Manager) Sweep() SweepResult {
	now := m.now()
	var res SweepResult
	var batches []volEvents
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for volume, v := range sh.vols {
			var evs []Event
			m.clearStale(volume, v, "", now, &evs, &res.Cleared)
			if v.migrating() {
				if mg := m.migration(volume, v, now); mg.Overdue {
					res.Overdue = append(res.Overdue, mg)
					if !v.warned {
						v.warned = true
						evs = append(evs, Event{Type: MigrationTimedOut, Volume: volume, Node: mg.Target, OtherNode: mg.Source,
							Message: fmt.Sprintf("volume %s is still attached to source node %s and target node %s %v after the migration started; the window ended at %s. Both attachments are kept",
								volume, mg.Source, mg.Target, now.Sub(mg.Since), fmtTime(mg.Deadline)),
							Time: now})
					}
				}
			}
			sh.store(volume, v)
			if len(evs) > 0 {
				batches = append(batches, volEvents{volume, evs})
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(res.Cleared, compareClaims)
	slices.SortFunc(res.Overdue, func(a, b Migration) int { return strings.Compare(a.Volume, b.Volume) })
	m.emitSorted(batches)
	return res
}

func compareClaims(a, b Claim) int {
	if c := strings.Compare(a.Volume, b.Volume); c != 0 {
		return c
	}
	return strings.Compare(a.Node, b.Node)
}

// Holders returns the claims on volume, oldest first (on a migration: the
// source, then the target). Lapsed claims not yet cleared are included;
// Claim.Stale tells them apart. Querying never clears anything, so reading
// state cannot change it.
func (m *Manager) Holders(volume string) []Claim {
	sh := m.shardFor(volume)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v := sh.vols[volume]; v != nil {
		return slices.Clone(v.claims)
	}
	return nil
}

// Snapshot returns every claim, sorted by volume and, within a volume,
// oldest first as in Holders. Each shard is copied under its own lock, so
// the snapshot is consistent per volume, not across volumes.
func (m *Manager) Snapshot() []Claim {
	var out []Claim
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, v := range sh.vols {
			out = append(out, v.claims...)
		}
		sh.mu.Unlock()
	}
	slices.SortStableFunc(out, func(a, b Claim) int { return strings.Compare(a.Volume, b.Volume) })
	return out
}

// Migrations returns every volume currently held by two MultiNodeBlock
// claims, sorted by volume, with Overdue computed now.
func (m *Manager) Migrations() []Migration {
	now := m.now()
	var out []Migration
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for volume, v := range sh.vols {
			if v.migrating() {
				out = append(out, m.migration(volume, v, now))
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Migration) int { return strings.Compare(a.Volume, b.Volume) })
	return out
}

// Restore replaces all claims, typically with those rebuilt from
// VolumeAttachments at start-up. Timestamps are kept, so grace periods and
// migration windows continue where they were instead of starting over.
//
// A node with any claim marked gone is treated as gone (its other claims
// take the earliest such time); nodes already reported gone stay gone.
// Zero Since means "unknown" and becomes now, which errs towards a later
// migration warning rather than a premature one; zero Grace means the
// default.
//
// The cluster's state is not always consistent, which is why this package
// exists. Restore keeps what it is given even when it breaks the rules (two
// holders of a SingleNode volume, three holders), because those attachments
// may really exist and forgetting them would let a third node in; such
// volumes refuse every new node until the reconciler resolves them. Such
// anomalies, duplicates (the oldest is kept) and invalid claims (skipped)
// are reported in the returned error. No events are emitted.
func (m *Manager) Restore(claims []Claim) error {
	now := m.now()
	var errs []error
	byVol := map[string][]Claim{}
	for _, c := range claims {
		if err := validate(c.Volume, c.Node, c.Mode, c.Grace); err != nil {
			errs = append(errs, fmt.Errorf("claim of node %q on volume %q skipped: %w", c.Node, c.Volume, err))
			continue
		}
		if c.Since.IsZero() {
			c.Since = now
		}
		if c.Grace == 0 {
			c.Grace = m.grace
		}
		c.Since = c.Since.UTC()
		if !c.GoneSince.IsZero() {
			c.GoneSince = c.GoneSince.UTC()
		}
		byVol[c.Volume] = append(byVol[c.Volume], c)
	}

	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	gone := make(map[string]time.Time, len(*m.gone.Load()))
	for k, t := range *m.gone.Load() {
		gone[k] = t
	}
	for _, cs := range byVol {
		for _, c := range cs {
			if c.GoneSince.IsZero() {
				continue
			}
			if t, ok := gone[c.Node]; !ok || c.GoneSince.Before(t) {
				gone[c.Node] = c.GoneSince
			}
		}
	}

	vols := make([]string, 0, len(byVol))
	for vol := range byVol {
		vols = append(vols, vol)
	}
	slices.Sort(vols)
	states := make(map[string]*volState, len(byVol))
	for _, vol := range vols {
		cs := byVol[vol]
		slices.SortStableFunc(cs, func(a, b Claim) int {
			if c := a.Since.Compare(b.Since); c != 0 {
				return c
			}
			return strings.Compare(a.Node, b.Node)
		})
		v := &volState{}
		for _, c := range cs {
			if slices.ContainsFunc(v.claims, func(o Claim) bool { return o.Node == c.Node }) {
				errs = append(errs, fmt.Errorf("duplicate claim of node %s on volume %s: kept the oldest", c.Node, vol))
				continue
			}
			if t, ok := gone[c.Node]; ok && c.GoneSince.IsZero() {
				c.GoneSince = t
			}
			v.claims = append(v.claims, c)
		}
		if len(v.claims) > 2 || (len(v.claims) == 2 && !v.migrating()) {
			nodes := make([]string, len(v.claims))
			for i, c := range v.claims {
				nodes[i] = fmt.Sprintf("%s (%v)", c.Node, c.Mode)
			}
			errs = append(errs, fmt.Errorf("volume %s is held by %s: kept, every new node will be refused until the extra claims are removed",
				vol, strings.Join(nodes, ", ")))
		}
		states[vol] = v
	}

	for i := range m.shards {
		m.shards[i].mu.Lock()
	}
	for i := range m.shards {
		clear(m.shards[i].vols)
	}
	for vol, v := range states {
		m.shardFor(vol).vols[vol] = v
	}
	m.gone.Store(&gone)
	for i := range m.shards {
		m.shards[i].mu.Unlock()
	}
	return errors.Join(errs...)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// fmtLeft rounds up to the millisecond so a refusal never says "in 0s"
// while the claim still holds.
func fmtLeft(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
}
