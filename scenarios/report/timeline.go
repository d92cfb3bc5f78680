package report

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// tone is what a row means to the reader, and so its colour.
type tone uint8

const (
	toneInfo  tone = iota
	toneGood       // recovery: connected, ready, attached, an expectation met
	toneFault      // something was broken on purpose, or a Warning
	toneBad        // a failure: lost connection, failed expectation, violation
	toneMuted      // context: steps, routine tallies
)

// row is one line of the human timeline: an interesting event, or (Tally) the
// count of the routine events since the previous row.
type row struct {
	T     time.Duration
	Tag   string
	Text  string
	Tone  tone
	Tally bool
}

// Folding limits: how many rows of one run of similar events are shown
// before the rest are only counted.
const (
	maxRun        = 3 // e.g. VolumeAttachments attached in one burst
	maxOutageRows = 7 // the loss and three failed reconnect cycles
)

// noun names a counted kind of event in a tally row. rank orders a tally
// row's parts, so that every row reads in the same order.
type noun struct {
	one, many string
	bad       string // how a failed one is described: "failed", "not OK"
	rank      int
}

var (
	nCommand  = noun{"RouterOS command", "RouterOS commands", "failed", 10}
	nRPC      = noun{"RPC", "RPCs", "not OK", 11}
	nHealth   = noun{"health check", "health checks", "failed", 12}
	nConnect  = noun{"connect attempt", "connect attempts", "failed", 13}
	nProbe    = noun{"unchanged probe", "unchanged probes", "", 14}
	nNormal   = noun{"Normal event", "Normal events", "", 15}
	nAttachEv = noun{"attachment event", "attachment events", "", 16}
	nCheck    = noun{"invariant check passed", "invariant checks passed", "", 17}
	nOther    = noun{"other event", "other events", "", 18}
	nRetry    = noun{"more failed reconnect attempt", "more failed reconnect attempts", "", 0}
)

// tally counts routine events between two rows of the timeline.
type tally struct {
	items []tallyItem
}

type tallyItem struct {
	noun noun
	n    int
	bad  int
	note string // e.g. the last retry interval
	seq  int    // first appearance, to order folded runs among themselves
}

func (t *tally) add(n noun, bad bool) *tallyItem {
	i := slices.IndexFunc(t.items, func(it tallyItem) bool { return it.noun.many == n.many })
	if i < 0 {
		t.items = append(t.items, tallyItem{noun: n, seq: len(t.items)})
		i = len(t.items) - 1
	}
	it := &t.items[i]
	it.n++
	if bad {
		it.bad++
	}
	return it
}

// String is the tally as prose, e.g. "37 RouterOS commands (3 failed), 12 RPCs".
func (t *tally) String() string {
	items := slices.Clone(t.items)
	slices.SortStableFunc(items, func(a, b tallyItem) int {
		return cmp.Or(cmp.Compare(a.noun.rank, b.noun.rank), cmp.Compare(a.seq, b.seq))
	})
	parts := make([]string, 0, len(items))
	for _, it := range items {
		p := plural(it.n, it.noun.one, it.noun.many)
		var extra []string
		if it.bad > 0 && it.noun.bad != "" {
			extra = append(extra, fmt.Sprintf("%d %s", it.bad, it.noun.bad))
		}
		if it.note != "" {
			extra = append(extra, it.note)
		}
		if len(extra) > 0 {
			p += " (" + strings.Join(extra, ", ") + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// digester turns events into rows. It keeps what folding needs: the current
// run of similar rows, and the state of an RDS outage in progress.
type digester struct {
	rows   []row
	gap    tally
	runKey string
	runLen int

	probeSeen  bool
	probeReady bool

	everConnected bool
	outage        bool          // connection lost since it was last connected
	lostAt        time.Duration // when it was lost
	outageRows    int
	maxFailures   int
}

// digest is the interesting-event timeline shared by Timeline and HTML.
func digest(events []Event) []row {
	var d digester
	for _, e := range events {
		d.add(e)
	}
	d.flushGap()
	return d.rows
}

func (d *digester) flushGap() {
	if len(d.gap.items) == 0 {
		return
	}
	d.rows = append(d.rows, row{Text: d.gap.String(), Tone: toneMuted, Tally: true})
	d.gap = tally{}
}

// emit adds an interesting row unless it continues a run of rows with the
// same foldKey beyond maxRun; then it is only counted, as fold.
func (d *digester) emit(r row, foldKey string, fold noun) {
	if foldKey != "" && foldKey == d.runKey {
		d.runLen++
	} else {
		d.runKey, d.runLen = foldKey, 1
	}
	if foldKey != "" && d.runLen > maxRun {
		d.gap.add(fold, false)
		return
	}
	// Rows of one instant stay together: what happened between them
	// happened at the same time, and is counted before the next instant.
	if n := len(d.rows); n == 0 || d.rows[n-1].Tally || d.rows[n-1].T != r.T {
		d.flushGap()
	}
	d.rows = append(d.rows, r)
}

func (d *digester) add(e Event) {
	switch e.Kind {
	case trace.KindRDSCommand:
		d.gap.add(nCommand, e.Text(trace.FieldErr) != "")
	case trace.KindRPC:
		code := e.Text(trace.FieldCode)
		d.gap.add(nRPC, code != "" && code != "OK")
	case trace.KindRDSHealth:
		d.gap.add(nHealth, e.Text(trace.FieldErr) != "")
	case trace.KindRDSConnect:
		d.gap.add(nConnect, e.Text(trace.FieldErr) != "")
	case trace.KindRDSState:
		d.rdsState(e)
	case trace.KindProbe:
		d.probe(e)
	case trace.KindFaultApplied, trace.KindFaultEnded, trace.KindFaultApplyFailed:
		d.emit(faultRow(e), "", noun{})
	case trace.KindVA:
		d.va(e)
	case trace.KindNode:
		d.emit(nodeRow(e), "", noun{})
	case trace.KindController:
		d.emit(controllerRow(e), "", noun{})
	case trace.KindK8sEvent:
		d.k8sEvent(e)
	case trace.KindAttachmentEvent:
		d.attachmentEvent(e)
	case trace.KindExpect:
		d.emit(expectRow(e), "", noun{})
	case trace.KindInvariant:
		d.invariant(e)
	case trace.KindStep:
		d.emit(row{T: e.T, Tag: "STEP", Text: clean(e.Text(trace.FieldName)), Tone: toneMuted}, "", noun{})
	default:
		d.gap.add(nOther, false)
	}
}

// rdsState shows every transition except the middle of a long outage: after
// the loss and a few failed attempts, attempts are counted until the
// connection is back, and the row saying so carries the outage's length.
func (d *digester) rdsState(e Event) {
	state := e.Text(trace.FieldState)
	failures := 0
	if f, ok := e.Num(trace.FieldFailures); ok {
		failures = int(f)
	}
	if state == "connected" {
		r := row{T: e.T, Tag: "RDS", Text: "connected", Tone: toneGood}
		if d.outage {
			r.Text = fmt.Sprintf("connected again after %s (%s)", span(e.T-d.lostAt),
				plural(d.maxFailures, "failure", "failures"))
		}
		d.everConnected, d.outage, d.outageRows, d.maxFailures = true, false, 0, 0
		d.emit(r, "", noun{})
		return
	}
	// Events of one instant are ordered by their bytes, not causally, so an
	// outage starts where the trace says the connection was lost.
	if d.everConnected && !d.outage && e.Text(trace.FieldPrevious) == "connected" {
		d.outage, d.lostAt = true, e.T
	}
	d.maxFailures = max(d.maxFailures, failures)
	if d.outageRows >= maxOutageRows {
		// Count failed attempts; the instant of "connecting" before each
		// one says nothing more.
		if state != "connecting" {
			it := d.gap.add(nRetry, false)
			if ri := e.Text(trace.FieldRetryIn); ri != "" {
				it.note = "last retry in " + clean(ri)
			}
		}
		return
	}
	d.outageRows++
	d.emit(rdsRow(e, state, failures), "", noun{})
}

func rdsRow(e Event, state string, failures int) row {
	var parts []string
	tn := toneInfo
	switch {
	case state == "disconnected" && e.Text(trace.FieldPrevious) == "connected":
		parts, tn = append(parts, "connection lost"), toneBad
	case state == "disconnected":
		parts, tn = append(parts, "attempt failed"), toneBad
	default:
		parts = append(parts, clean(state))
	}
	if err := e.Text(trace.FieldErr); err != "" {
		parts = append(parts, clean(err))
	}
	if failures > 0 {
		parts = append(parts, plural(failures, "failure", "failures"))
	}
	if ri := e.Text(trace.FieldRetryIn); ri != "" {
		parts = append(parts, "retry in "+clean(ri))
	}
	return row{T: e.T, Tag: "RDS", Text: strings.Join(parts, " · "), Tone: tn}
}

// probe shows readiness transitions; a probe that reports what the last one
// did is routine.
func (d *digester) probe(e Event) {
	ready, _ := e.Flag(trace.FieldReady)
	if d.probeSeen && ready == d.probeReady {
		d.gap.add(nProbe, false)
		return
	}
	d.probeSeen, d.probeReady = true, ready
	r := row{T: e.T, Tag: "PROBE", Text: "ready", Tone: toneGood}
	if !ready {
		r.Text, r.Tone = "not ready", toneBad
	}
	d.emit(r, "", noun{})
}

func faultRow(e Event) row {
	name := clean(e.Text(trace.FieldFault))
	r := row{T: e.T, Tag: "FAULT", Tone: toneFault}
	switch e.Kind {
	case trace.KindFaultApplied:
		r.Text = name + " applied"
		if p := faultParams(e); p != "" {
			r.Text += " (" + p + ")"
		}
	case trace.KindFaultEnded:
		r.Text = name + " ended"
	default:
		r.Text, r.Tone = name+" failed to apply", toneBad
	}
	if err := e.Text(trace.FieldErr); err != "" {
		r.Text, r.Tone = r.Text+": "+clean(err), toneBad
	}
	return r
}

// faultParams is "k=v, k=v" from the fields "param.k", in key order.
func faultParams(e Event) string {
	var ps []string
	for _, k := range sortedKeys(e.Fields) {
		if p, ok := strings.CutPrefix(k, trace.ParamPrefix); ok {
			ps = append(ps, clean(p)+"="+clean(e.Text(k)))
		}
	}
	return strings.Join(ps, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (d *digester) va(e Event) {
	vol, node, op := clean(e.Text(trace.FieldVolume)), clean(e.Text(trace.FieldNode)), e.Text(trace.FieldOp)
	r := row{T: e.T, Tag: "VA", Tone: toneInfo}
	switch op {
	case "create":
		r.Text = fmt.Sprintf("%s attach requested on %s", vol, node)
	case "attached":
		r.Text, r.Tone = fmt.Sprintf("%s attached to %s", vol, node), toneGood
	case "attach-failed":
		r.Text, r.Tone = fmt.Sprintf("%s attach to %s failed", vol, node), toneBad
	case "detach":
		r.Text = fmt.Sprintf("%s detached from %s", vol, node)
	case "deleted":
		r.Text = fmt.Sprintf("%s VolumeAttachment on %s deleted", vol, node)
	default:
		r.Text = fmt.Sprintf("%s %s on %s", vol, clean(op), node)
	}
	if code := e.Text(trace.FieldCode); code != "" {
		r.Text += ": " + clean(code)
	}
	if msg := e.Text(trace.FieldMsg); msg != "" {
		r.Text += ": " + clean(msg)
	}
	fold := noun{"more VolumeAttachment " + clean(op), "more VolumeAttachments " + clean(op), "", 0}
	d.emit(r, "va:"+op, fold)
}

func nodeRow(e Event) row {
	state := e.Text(trace.FieldState)
	tn := toneInfo
	switch state {
	case "ready", "in-service":
		tn = toneGood
	case "not-ready", "deleted":
		tn = toneBad
	case "out-of-service":
		tn = toneFault
	}
	return row{T: e.T, Tag: "NODE", Text: clean(e.Text(trace.FieldNode)) + " " + clean(state), Tone: tn}
}

func controllerRow(e Event) row {
	replica, state := clean(e.Text(trace.FieldReplica)), e.Text(trace.FieldState)
	r := row{T: e.T, Tag: "CTRL", Tone: toneInfo}
	switch state {
	case "leader":
		r.Text, r.Tone = replica+" became leader", toneGood
	case "crashed":
		r.Text, r.Tone = replica+" crashed", toneBad
	case "stopped":
		r.Text, r.Tone = replica+" stopped", toneFault
	case "standby":
		r.Text = replica + " is standby"
	default:
		r.Text = replica + " " + clean(state)
	}
	return r
}

func (d *digester) k8sEvent(e Event) {
	if e.Text(trace.FieldType) != "Warning" {
		d.gap.add(nNormal, false)
		return
	}
	reason := clean(e.Text(trace.FieldReason))
	text := "Warning " + reason
	if obj := e.Text(trace.FieldObject); obj != "" {
		text += " " + clean(obj)
	}
	if msg := e.Text(trace.FieldMsg); msg != "" {
		text += ": " + clean(msg)
	}
	fold := noun{"more Warning " + reason, "more Warning " + reason + " events", "", 0}
	d.emit(row{T: e.T, Tag: "EVENT", Text: text, Tone: toneFault}, "k8s:"+reason, fold)
}

// attachmentEvent shows what the attachment manager decided; Attached and
// Detached repeat the VolumeAttachment rows and are only counted.
func (d *digester) attachmentEvent(e Event) {
	typ := e.Text(trace.FieldType)
	if typ == "Attached" || typ == "Detached" {
		d.gap.add(nAttachEv, false)
		return
	}
	text := clean(typ) + " " + clean(e.Text(trace.FieldVolume))
	if node := e.Text(trace.FieldNode); node != "" {
		text += " on " + clean(node)
	}
	if other := e.Text(trace.FieldOther); other != "" {
		text += " (other " + clean(other) + ")"
	}
	if msg := e.Text(trace.FieldMsg); msg != "" {
		text += ": " + clean(msg)
	}
	tn := toneInfo
	if typ == "Conflict" || typ == "MigrationTimedOut" {
		tn = toneFault
	}
	fold := noun{"more " + clean(typ) + " attachment event", "more " + clean(typ) + " attachment events", "", 0}
	d.emit(row{T: e.T, Tag: "ATTACH", Text: text, Tone: tn}, "attach:"+typ, fold)
}

func expectRow(e Event) row {
	ok, _ := e.Flag(trace.FieldOk)
	name := clean(e.Text(trace.FieldName))
	r := row{T: e.T, Tag: "EXPECT", Text: "ok   " + name, Tone: toneGood}
	if after := e.Text(trace.FieldAfter); after != "" && ok {
		r.Text += " (after " + clean(after) + ")"
	}
	if !ok {
		r.Text, r.Tone = "FAIL "+name, toneBad
		if within := e.Text(trace.FieldWithin); within != "" {
			r.Text += " (not within " + clean(within) + ")"
		}
	}
	if msg := e.Text(trace.FieldMsg); msg != "" {
		r.Text += ": " + clean(msg)
	}
	return r
}

// invariant shows violations; invariants that hold are counted.
func (d *digester) invariant(e Event) {
	if ok, _ := e.Flag(trace.FieldOk); ok {
		d.gap.add(nCheck, false)
		return
	}
	name := clean(e.Text(trace.FieldName))
	text := "FAIL " + name
	if msg := e.Text(trace.FieldMsg); msg != "" {
		text += ": " + clean(msg)
	}
	fold := noun{"more violation of " + name, "more violations of " + name, "", 0}
	d.emit(row{T: e.T, Tag: "INVARIANT", Text: text, Tone: toneBad}, "inv:"+name, fold)
}

// ANSI colours per tone; muted is faint so that tallies recede.
var ansi = map[tone]string{
	toneGood:  "\x1b[32m",
	toneFault: "\x1b[33m",
	toneBad:   "\x1b[1;31m",
	toneMuted: "\x1b[2m",
}

// Timeline writes the human timeline for a terminal: one line per interesting
// event (faults, RDS state changes, Probe changes, VolumeAttachment ops, node
// and controller changes, Warning events, expectations, invariant
// violations, steps) with its virtual time ("  3h10m05.000s"), a kind tag and
// a short text. RouterOS commands, RPCs, health checks and other routine
// events are not listed but counted between the lines ("… 37 RouterOS
// commands, 12 RPCs"), as are reconnect attempts deep into an outage and
// long runs of similar events. Failed expectations and invariant violations
// read "FAIL". A line per recovery (Recoveries) follows the timeline. With
// color, lines get ANSI colours: red for failures, yellow for faults and
// Warnings, green for recovery.
func Timeline(w io.Writer, events []Event, color bool) error {
	events = sortedEvents(events)
	bw := bufio.NewWriter(w)
	pad := strings.Repeat(" ", len(clock(0)))
	for _, r := range digest(events) {
		line := fmt.Sprintf("%s  %-9s %s", clock(r.T), r.Tag, r.Text)
		if r.Tally {
			line = fmt.Sprintf("%s  … %s", pad, r.Text)
		}
		if c := ansi[r.Tone]; color && c != "" {
			line = c + line + "\x1b[0m"
		}
		bw.WriteString(line)
		bw.WriteByte('\n')
	}
	for _, r := range Recoveries(events) {
		line := r.String()
		tn := toneGood
		switch {
		case r.Abandoned:
			tn = toneBad
		case !r.Done:
			tn = toneFault
		}
		if color {
			line = ansi[tn] + line + "\x1b[0m"
		}
		bw.WriteString(line)
		bw.WriteByte('\n')
	}
	return bw.Flush() // bufio keeps the first write error
}
