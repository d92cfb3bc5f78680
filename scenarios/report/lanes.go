package report

import (
	"cmp"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// This file is the model of the timeline picture: what each lane shows,
// computed from the events in one pass and independent of how it is drawn.

// change is a lane entering a state at T.
type change struct {
	T     time.Duration
	State string
}

// interval is a state held from From to To.
type interval struct {
	From, To time.Duration
	State    string
}

// segment is what a band draws: an interval, possibly standing for several
// (Changes counts the transitions folded into it).
type segment struct {
	interval
	Changes int
}

// marker is a point event: an expectation, a violation, a Warning, a step.
type marker struct {
	T    time.Duration
	OK   bool
	Text string
}

// faultBar is one application of a fault.
type faultBar struct {
	From, To time.Duration
	Open     bool // never ended: drawn to the end of the run
	Params   string
	Err      string
}

type faultLane struct {
	name   string
	bars   []faultBar
	failed []marker
}

// lifecycle is one volume's stay on one node: requested (VolumeAttachment
// created), attached, and ended (detached or deleted).
type lifecycle struct {
	vol                 string
	requested, attached time.Duration
	ended               time.Duration
	hasReq, hasAtt      bool
	open                bool
	failures            int
}

// start is when the lifecycle began, requested or (without a request in the
// trace) attached.
func (l lifecycle) start() time.Duration {
	if l.hasReq {
		return l.requested
	}
	return l.attached
}

type nodeModel struct {
	name   string
	state  []change
	oos    []interval // out-of-service taint periods
	vols   []lifecycle
	open   map[string]int // volume → index in vols of its open lifecycle
	count  []countPoint   // volumes attached, after each change
	failed []marker       // attach failures
	oosAt  time.Duration
	inOOS  bool
	attach int
}

type countPoint struct {
	T time.Duration
	N int
}

// activity is a histogram of routine events in bins of a few pixels: per
// pixel, a command every ten seconds in a three-hour run would draw a comb.
type activity struct {
	total, bad []int
	n, nBad    int
}

const activityBin = 3 // pixels per bin

func newActivity(cols int) activity {
	n := max(cols/activityBin, 1)
	return activity{total: make([]int, n), bad: make([]int, n)}
}

// model is everything the picture shows.
type model struct {
	end        time.Duration
	cols       int
	faults     []*faultLane
	rds        []change
	rdsInstant []Event // rds.state events of the instant being read
	probe      []change
	ctrl       map[string][]change
	nodes      map[string]*nodeModel
	commands   activity
	rpcs       activity
	expects    []marker
	invariants []marker
	warnings   []marker
	steps      []marker
	recoveries []Recovery
}

// buildModel reads events (sorted by time) for a picture cols pixels wide
// covering [0, end].
func buildModel(events []Event, end time.Duration, cols int) *model {
	m := &model{end: end, cols: cols, ctrl: map[string][]change{}, nodes: map[string]*nodeModel{},
		commands: newActivity(cols), rpcs: newActivity(cols)}
	for _, e := range events {
		m.add(e)
	}
	m.finish()
	m.recoveries = Recoveries(events)
	return m
}

func (m *model) add(e Event) {
	switch e.Kind {
	case trace.KindRDSState:
		m.rdsState(e)
	case trace.KindProbe:
		ready, _ := e.Flag(trace.FieldReady)
		m.probe = appendChange(m.probe, e.T, map[bool]string{true: "ready", false: "not ready"}[ready])
	case trace.KindController:
		r := e.Text(trace.FieldReplica)
		m.ctrl[r] = appendChange(m.ctrl[r], e.T, e.Text(trace.FieldState))
	case trace.KindNode:
		m.nodeEvent(e)
	case trace.KindVA:
		m.vaEvent(e)
	case trace.KindFaultApplied, trace.KindFaultEnded, trace.KindFaultApplyFailed:
		m.faultEvent(e)
	case trace.KindRDSCommand:
		m.bucket(&m.commands, e.T, e.Text(trace.FieldErr) != "")
	case trace.KindRPC:
		code := e.Text(trace.FieldCode)
		m.bucket(&m.rpcs, e.T, code != "" && code != "OK")
	case trace.KindExpect:
		ok, _ := e.Flag(trace.FieldOk)
		m.expects = append(m.expects, marker{e.T, ok, expectRow(e).Text})
	case trace.KindInvariant:
		ok, _ := e.Flag(trace.FieldOk)
		m.invariants = append(m.invariants, marker{e.T, ok, clean(e.Text(trace.FieldName)) + " " + map[bool]string{true: "held", false: "VIOLATED: " + clean(e.Text(trace.FieldMsg))}[ok]})
	case trace.KindK8sEvent:
		if e.Text(trace.FieldType) == "Warning" {
			m.warnings = append(m.warnings, marker{e.T, false, clean(e.Text(trace.FieldReason)) + " " + clean(e.Text(trace.FieldObject)) + ": " + clean(e.Text(trace.FieldMsg))})
		}
	case trace.KindStep:
		m.steps = append(m.steps, marker{e.T, true, clean(e.Text(trace.FieldName))})
	}
}

// appendChange records a state change; a repeated state is no change.
// rdsState adds a connection state. Events of one instant come ordered by
// their bytes, not causally ("disconnected" with an err field sorts before
// "connecting"), so the states of an instant are gathered and put back in
// the manager's order: its failure count never falls within an outage, and
// at equal counts "connecting" comes before what it led to.
func (m *model) rdsState(e Event) {
	if len(m.rdsInstant) > 0 && m.rdsInstant[0].T != e.T {
		m.flushRDS()
	}
	m.rdsInstant = append(m.rdsInstant, e)
}

func (m *model) flushRDS() {
	group := m.rdsInstant
	m.rdsInstant = nil
	if len(group) == 0 {
		return
	}
	key := func(e Event) (float64, int) {
		f, _ := e.Num(trace.FieldFailures)
		if e.Text(trace.FieldState) == "connecting" {
			return f, 0
		}
		return f, 1
	}
	final := group[0]
	for _, e := range group[1:] {
		ef, er := key(e)
		ff, fr := key(final)
		if ef > ff || (ef == ff && er >= fr) {
			final = e
		}
	}
	m.rds = appendChange(m.rds, final.T, final.Text(trace.FieldState))
}

func appendChange(cs []change, t time.Duration, state string) []change {
	if n := len(cs); n > 0 && cs[n-1].State == state {
		return cs
	}
	return append(cs, change{t, state})
}

// column is the pixel column of t.
func (m *model) column(t time.Duration) int { return columnOf(t, m.end, m.cols) }

func columnOf(t, end time.Duration, cols int) int {
	if end <= 0 {
		return 0
	}
	c := int(float64(t) / float64(end) * float64(cols))
	return min(max(c, 0), cols-1)
}

func (m *model) bucket(a *activity, t time.Duration, bad bool) {
	c := columnOf(t, m.end, len(a.total))
	a.total[c]++
	a.n++
	if bad {
		a.bad[c]++
		a.nBad++
	}
}

func (m *model) node(name string) *nodeModel {
	n := m.nodes[name]
	if n == nil {
		// Until the node says otherwise its readiness is unknown: the
		// picture should not claim it was ready.
		n = &nodeModel{name: name, state: []change{{0, "unknown"}}, open: map[string]int{}}
		m.nodes[name] = n
	}
	return n
}

func (m *model) nodeEvent(e Event) {
	n := m.node(e.Text(trace.FieldNode))
	switch st := e.Text(trace.FieldState); st {
	case "ready", "not-ready":
		n.state = appendChange(n.state, e.T, st)
	case "created":
		n.state = appendChange(n.state, e.T, "unknown")
	case "deleted":
		n.state = appendChange(n.state, e.T, "deleted")
		n.endOOS(e.T)
	case "out-of-service":
		if !n.inOOS {
			n.inOOS, n.oosAt = true, e.T
		}
	case "in-service":
		n.endOOS(e.T)
	}
}

func (n *nodeModel) endOOS(t time.Duration) {
	if n.inOOS {
		n.oos = append(n.oos, interval{n.oosAt, t, "out-of-service"})
		n.inOOS = false
	}
}

func (m *model) vaEvent(e Event) {
	n := m.node(e.Text(trace.FieldNode))
	vol := e.Text(trace.FieldVolume)
	i, ok := n.open[vol]
	switch e.Text(trace.FieldOp) {
	case "create":
		if !ok {
			n.begin(vol, lifecycle{vol: vol, requested: e.T, hasReq: true})
		}
	case "attached":
		if !ok {
			i = n.begin(vol, lifecycle{vol: vol, requested: e.T})
		}
		if l := &n.vols[i]; !l.hasAtt {
			l.attached, l.hasAtt = e.T, true
			n.setCount(e.T, +1)
		}
	case "attach-failed":
		if !ok {
			i = n.begin(vol, lifecycle{vol: vol, requested: e.T, hasReq: true})
		}
		n.vols[i].failures++
		n.failed = append(n.failed, marker{e.T, false, clean(vol) + " attach failed " + clean(e.Text(trace.FieldCode)) + " " + clean(e.Text(trace.FieldMsg))})
	case "detach", "deleted":
		if ok {
			n.close(i, e.T)
		}
	}
}

func (n *nodeModel) begin(vol string, l lifecycle) int {
	n.vols = append(n.vols, l)
	n.open[vol] = len(n.vols) - 1
	return len(n.vols) - 1
}

func (n *nodeModel) close(i int, t time.Duration) {
	l := &n.vols[i]
	l.ended = t
	delete(n.open, l.vol)
	if l.hasAtt {
		n.setCount(t, -1)
	}
}

// setCount keeps the number of attached volumes as a step function, one
// point per instant.
func (n *nodeModel) setCount(t time.Duration, delta int) {
	n.attach += delta
	if k := len(n.count); k > 0 && n.count[k-1].T == t {
		n.count[k-1].N = n.attach
		return
	}
	n.count = append(n.count, countPoint{t, n.attach})
}

func (m *model) faultEvent(e Event) {
	// One lane per active fault, keyed as fault.ended names it.
	name := e.Text(trace.FieldFault)
	if e.Kind != trace.KindFaultEnded {
		name = trace.FaultKey(name, e.Text(trace.ParamPrefix+"node"))
	}
	i := slices.IndexFunc(m.faults, func(f *faultLane) bool { return f.name == name })
	if i < 0 {
		m.faults = append(m.faults, &faultLane{name: name})
		i = len(m.faults) - 1
	}
	f := m.faults[i]
	openBar := len(f.bars) > 0 && f.bars[len(f.bars)-1].Open
	switch e.Kind {
	case trace.KindFaultApplied:
		if !openBar {
			f.bars = append(f.bars, faultBar{From: e.T, Open: true, Params: faultParams(e)})
		}
	case trace.KindFaultEnded:
		if openBar {
			b := &f.bars[len(f.bars)-1]
			b.To, b.Open, b.Err = e.T, false, clean(e.Text(trace.FieldErr))
		}
	default:
		f.failed = append(f.failed, marker{e.T, false, clean(name) + " failed to apply: " + clean(e.Text(trace.FieldErr))})
	}
}

// finish closes what the run left open at its end.
func (m *model) finish() {
	m.flushRDS()
	for _, f := range m.faults {
		if n := len(f.bars); n > 0 && f.bars[n-1].Open {
			f.bars[n-1].To = m.end
		}
	}
	for _, n := range m.nodes {
		for vol, i := range n.open {
			n.vols[i].ended, n.vols[i].open = m.end, true
			delete(n.open, vol)
		}
		n.endOOS(m.end)
	}
}

// nodeNames are the nodes in natural order (node-2 before node-10).
func (m *model) nodeNames() []string {
	names := sortedKeys(m.nodes)
	slices.SortFunc(names, naturalLess)
	return names
}

func (m *model) replicaNames() []string {
	names := sortedKeys(m.ctrl)
	slices.SortFunc(names, naturalLess)
	return names
}

// naturalLess compares names with embedded numbers by their value.
func naturalLess(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			if c := cmp.Compare(len(da), len(db)); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && i < 18 && unicode.IsDigit(rune(s[i])) {
		i++
	}
	return s[:i]
}

// intervals turns a lane's changes into the intervals between them, the
// last one lasting until end.
func intervals(cs []change, end time.Duration) []interval {
	out := make([]interval, 0, len(cs))
	for i, c := range cs {
		to := end
		if i+1 < len(cs) {
			to = cs[i+1].T
		}
		out = append(out, interval{c.T, max(to, c.T), c.State})
	}
	return out
}

// simplify reduces a lane to what res (virtual time per pixel) can show, so
// that the picture's size does not grow with the number of transitions. An
// interval shorter than a pixel disappears into the one before it when it is
// no worse (the instant of "connecting" between two failed attempts); when
// it is worse (a one-second disconnect in a day), it stays, and drawn at
// least a pixel wide, it remains visible. Short intervals in a row become
// one segment in the worst of their states.
func simplify(ivs []interval, res time.Duration, rank func(string) int) []segment {
	var out []segment
	short := func(iv interval) bool { return iv.To-iv.From < res }
	for i, iv := range ivs {
		if i == 0 {
			out = append(out, segment{interval: iv})
			continue
		}
		cur := &out[len(out)-1]
		switch {
		case iv.State == cur.State,
			short(iv) && rank(iv.State) <= rank(cur.State):
			cur.To, cur.Changes = iv.To, cur.Changes+1
		case short(cur.interval) && short(iv):
			cur.To, cur.State, cur.Changes = iv.To, iv.State, cur.Changes+1
		default:
			out = append(out, segment{interval: iv})
		}
	}
	return mergeSame(out)
}

// mergeSame joins neighbouring segments that simplify left in one state.
func mergeSame(segs []segment) []segment {
	out := segs[:0]
	for _, s := range segs {
		if n := len(out); n > 0 && out[n-1].State == s.State {
			out[n-1].To = s.To
			out[n-1].Changes += s.Changes + 1
			continue
		}
		out = append(out, s)
	}
	return out
}

// downtime is how long RDS was not connected after it first was.
func downtime(cs []change, end time.Duration) time.Duration {
	var d time.Duration
	seen := false
	for _, iv := range intervals(cs, end) {
		if iv.State == "connected" {
			seen = true
		} else if seen {
			d += iv.To - iv.From
		}
	}
	return d
}
