package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// knownKinds are the kinds the report understands; the rest are listed raw.
var knownKinds = map[trace.Kind]bool{
	trace.KindRDSState: true, trace.KindRDSCommand: true, trace.KindRDSConnect: true, trace.KindRDSHealth: true,
	trace.KindProbe: true, trace.KindVA: true, trace.KindNode: true, trace.KindController: true,
	trace.KindFaultApplied: true, trace.KindFaultEnded: true, trace.KindFaultApplyFailed: true, trace.KindExpect: true,
	trace.KindK8sEvent: true, trace.KindAttachmentEvent: true, trace.KindRPC: true, trace.KindInvariant: true,
	trace.KindStep: true,
}

// Row limits keep the page readable and its size bounded by design rather
// than by the length of the trace.
const (
	maxEventRows   = 8   // first Kubernetes events listed
	maxRawRows     = 200 // unrecognised events listed
	maxReasonRows  = 40  // distinct (type, reason) pairs listed
	maxExpectRows  = 500
	maxTimelineRow = 3000
)

const maxRecoveryRows = 20 // a flapping connection recovers many times

// HTML writes one self-contained HTML page (inline CSS and SVG; nothing is
// fetched and no JavaScript runs; hover tooltips are SVG titles) with:
//   - a header: scenario, PASS/FAIL badge, seed, virtual and wall duration,
//     compression, trace hash, the reproduce command, the failures, and the
//     numbers looked for first (expectations met, RDS downtime, Warnings),
//     and a line per recovery (Recoveries);
//   - the timeline picture: one time axis (ticks from 1 s to hours, labelled
//     "0, 30m, 1h, …") over swim lanes for faults, the RDS connection, its
//     recoveries, RouterOS command activity, the Probe, each controller
//     replica, CSI RPC activity, and per node its state and the volumes
//     attached to it (a bar per volume, or a band of their count when many
//     are attached at once), then markers for expectations, invariants and Warning events;
//   - tables of expectations and of Kubernetes events (counts per reason and
//     the first few), the interesting-event timeline of Timeline, and
//     collapsible counts per kind and raw events of unknown kinds.
//
// All text from the summary and the trace is escaped. The page's size is
// bounded by the picture's width and the number of lanes and table rows, not
// by the number of events.
func HTML(w io.Writer, s Summary, events []Event) error {
	events = sortedEvents(events)
	end := s.Virtual
	if n := len(events); n > 0 {
		end = max(end, events[n-1].T)
	}
	if end <= 0 {
		end = time.Second // an empty run still gets an axis
	}
	p := &page{s: s, events: events, m: buildModel(events, end, plotWidth)}
	p.head()
	p.header()
	p.picture()
	p.checks()
	p.timeline()
	p.kinds()
	p.b.WriteString("<footer>rds-csi scenario report · times are virtual, since the start of the run</footer>\n</main>\n</body>\n</html>\n")
	_, err := io.WriteString(w, p.b.String())
	return err
}

type page struct {
	b      strings.Builder
	s      Summary
	events []Event
	m      *model
}

func (p *page) printf(format string, args ...any) { fmt.Fprintf(&p.b, format, args...) }

func (p *page) head() {
	p.printf("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	p.printf("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	p.printf("<title>%s · %s · rds-csi scenario</title>\n", esc(p.s.Scenario), p.s.verdict())
	p.printf("<style>%s</style>\n</head>\n<body>\n<main>\n", css)
}

func (p *page) header() {
	s := p.s
	badge := "pass"
	if !s.Pass {
		badge = "fail"
	}
	p.printf("<header class=\"card top %s\">\n<div class=\"title\"><span class=\"badge %s\">%s</span><h1>%s</h1></div>\n",
		badge, badge, s.verdict(), esc(s.Scenario))
	if s.File != "" {
		p.printf("<div class=\"file mono\">%s</div>\n", esc(s.File))
	}
	events := s.Events
	if events == 0 {
		events = len(p.events)
	}
	p.b.WriteString("<dl class=\"facts\">\n")
	fact := func(k, v string) { p.printf("<div><dt>%s</dt><dd>%s</dd></div>\n", k, v) }
	fact("Virtual time", esc(s.Virtual.Round(time.Millisecond).String()))
	fact("Wall time", esc(roundSig(s.Wall, 3).String()))
	fact("Compression", esc(fmtCompression(s.Compression())))
	fact("Seed", fmt.Sprint(s.Seed))
	fact("Clock steps", fmt.Sprint(s.Steps))
	fact("Trace events", fmt.Sprint(events))
	if s.TraceHash != "" {
		p.printf("<div class=\"wide\"><dt>Trace hash</dt><dd class=\"mono hash\">%s</dd></div>\n", esc(s.TraceHash))
	}
	p.b.WriteString("</dl>\n")
	if s.Reproduce != "" {
		p.printf("<div class=\"repro\"><span>Reproduce</span><code>%s</code></div>\n", esc(s.Reproduce))
	}
	if len(s.Failures) > 0 {
		p.printf("<div class=\"failures\"><h2>%s</h2><ul>\n", plural(len(s.Failures), "failure", "failures"))
		for _, f := range s.Failures {
			p.printf("<li>%s</li>\n", esc(f))
		}
		p.b.WriteString("</ul></div>\n")
	}
	p.recoveries()
	p.stats()
	p.b.WriteString("</header>\n")
}

// recoveries lists Recovery.String for each recovery: how long volumes
// waited once the storage was back is what an outage costs beyond itself.
func (p *page) recoveries() {
	rs := p.m.recoveries
	if len(rs) == 0 {
		return
	}
	p.b.WriteString("<ul class=\"recoveries\">\n")
	for i, r := range rs {
		if i == maxRecoveryRows {
			p.printf("<li class=\"more\">… %d more</li>\n", len(rs)-i)
			break
		}
		class := "open"
		switch {
		case r.Done:
			class = "done"
		case r.Abandoned:
			class = "abandoned"
		}
		text := esc(r.String())
		if rest, ok := strings.CutPrefix(text, "Recovery: "); ok {
			text = "<b>Recovery:</b> " + rest
		}
		p.printf("<li class=\"%s\">%s</li>\n", class, text)
	}
	p.b.WriteString("</ul>\n")
}

// stats are the numbers a reader looks for first.
func (p *page) stats() {
	var exp, expOK, warn, inv, invBad int
	for _, e := range p.events {
		ok, _ := e.Flag(trace.FieldOk)
		switch {
		case e.Kind == trace.KindExpect:
			exp++
			if ok {
				expOK++
			}
		case e.Kind == trace.KindInvariant:
			inv++
			if !ok {
				invBad++
			}
		case e.Kind == trace.KindK8sEvent && e.Text(trace.FieldType) == "Warning":
			warn++
		}
	}
	p.b.WriteString("<div class=\"stats\">\n")
	stat := func(class, value, label string) {
		p.printf("<div class=\"stat %s\"><b>%s</b><span>%s</span></div>\n", class, value, label)
	}
	expClass := okClass(expOK == exp)
	if exp == 0 {
		expClass = "" // nothing was checked: not a success to colour green
	}
	stat(expClass, fmt.Sprintf("%d / %d", expOK, exp), "expectations met")
	if inv > 0 {
		stat(okClass(invBad == 0), fmt.Sprint(invBad), "invariant violations")
	}
	down := downtime(p.m.rds, p.m.end)
	stat(map[bool]string{true: "", false: "warn"}[down == 0], esc(span(down)), "RDS disconnected")
	stat(map[bool]string{true: "", false: "warn"}[warn == 0], fmt.Sprint(warn), "Warning events")
	stat("", activityText(p.m.commands, "failed"), "RouterOS commands")
	stat("", activityText(p.m.rpcs, "not OK"), "CSI RPCs")
	p.b.WriteString("</div>\n")
}

func okClass(ok bool) string {
	if ok {
		return "good"
	}
	return "bad"
}

func activityText(a activity, bad string) string {
	if a.nBad == 0 {
		return fmt.Sprint(a.n)
	}
	return fmt.Sprintf("%d <small>(%d %s)</small>", a.n, a.nBad, bad)
}

func (p *page) picture() {
	p.b.WriteString("<section class=\"card\" id=\"timeline\">\n<h2>Timeline</h2>\n<div class=\"picture\">")
	p.b.WriteString(svgPicture(p.m))
	p.b.WriteString("</div>\n")
	p.b.WriteString(legend)
	if len(p.m.recoveries) > 0 {
		p.b.WriteString(recoveryLegend)
	}
	p.b.WriteString("<p class=\"hint\">Hover over a bar or marker for its times. States shorter than a pixel are folded into their neighbour unless they are worse.</p>\n</section>\n")
}

const legend = `<div class="legend">` +
	`<span><i class="sw s-good"></i>connected · ready · leader</span>` +
	`<span><i class="sw s-warn"></i>connecting</span>` +
	`<span><i class="sw s-bad"></i>disconnected · not ready · crashed</span>` +
	`<span><i class="sw s-standby"></i>standby</span>` +
	`<span><i class="sw s-off"></i>stopped</span>` +
	`<span><i class="sw s-unknown"></i>unknown</span>` +
	`<span><i class="sw s-oos"></i>out-of-service</span>` +
	`<span><i class="sw fault"></i>fault active</span>` +
	`<span><i class="sw vol"></i>volume attached</span>` +
	`<span><i class="sw vol-pend"></i>attach requested</span>` +
	`<span><i class="dot ok">✓</i>expectation met</span>` +
	`<span><i class="dot fail">✕</i>failed</span>` +
	`<span><i class="tri">▲</i>Warning event</span>` +
	"</div>\n"

// recoveryLegend is shown only with a recovery lane, so that pages of runs
// without one are as before.
const recoveryLegend = `<div class="legend">` +
	`<span><i class="sw recovery"></i>recovery: RDS back → every displaced volume attached</span>` +
	`<span><i class="sw recovery-open"></i>recovery not finished</span>` +
	"</div>\n"

// checks are the verdicts side by side: expectations and Kubernetes events.
func (p *page) checks() {
	p.b.WriteString("<div class=\"cols\">\n")
	p.expectations()
	p.k8sEvents()
	p.b.WriteString("</div>\n")
}

func (p *page) expectations() {
	p.b.WriteString("<section class=\"card\" id=\"expectations\">\n<h2>Expectations</h2>\n")
	var rows []Event
	for _, e := range p.events {
		if e.Kind == trace.KindExpect || (e.Kind == trace.KindInvariant && !boolField(e, trace.FieldOk)) {
			rows = append(rows, e)
		}
	}
	if len(rows) == 0 {
		p.b.WriteString("<p class=\"empty\">No expectations were checked.</p>\n</section>\n")
		return
	}
	p.b.WriteString("<table>\n<thead><tr><th>Time</th><th>Expectation</th><th>Result</th></tr></thead>\n<tbody>\n")
	for i, e := range rows {
		if i == maxExpectRows {
			p.printf("<tr><td colspan=\"3\" class=\"more\">… %d more</td></tr>\n", len(rows)-i)
			break
		}
		ok := boolField(e, trace.FieldOk)
		name := esc(e.Text(trace.FieldName))
		if e.Kind == trace.KindInvariant {
			name = "invariant " + name
		}
		var detail []string
		if v := e.Text(trace.FieldAfter); v != "" && ok {
			detail = append(detail, "after "+esc(v))
		}
		if v := e.Text(trace.FieldWithin); v != "" && !ok {
			detail = append(detail, "not within "+esc(v))
		}
		if v := e.Text(trace.FieldMsg); v != "" {
			detail = append(detail, esc(v))
		}
		if len(detail) > 0 {
			name += "<div class=\"detail\">" + strings.Join(detail, " · ") + "</div>"
		}
		res := `<span class="res ok">✓ ok</span>`
		if !ok {
			res = `<span class="res fail">✕ FAIL</span>`
		}
		p.printf("<tr class=\"%s\"><td class=\"mono time\">%s</td><td>%s</td><td>%s</td></tr>\n",
			map[bool]string{true: "ok", false: "fail"}[ok], stamp(e.T), name, res)
	}
	p.b.WriteString("</tbody>\n</table>\n</section>\n")
}

func boolField(e Event, k string) bool {
	v, _ := e.Flag(k)
	return v
}

// reasonCount is one (type, reason) of Kubernetes events.
type reasonCount struct {
	typ, reason string
	n           int
	first, last time.Duration
	example     string
}

func (p *page) k8sEvents() {
	p.b.WriteString("<section class=\"card\" id=\"k8s-events\">\n<h2>Kubernetes events</h2>\n")
	var all []Event
	idx := map[[2]string]int{}
	var reasons []reasonCount
	for _, e := range p.events {
		if e.Kind != trace.KindK8sEvent {
			continue
		}
		all = append(all, e)
		k := [2]string{e.Text(trace.FieldType), e.Text(trace.FieldReason)}
		i, ok := idx[k]
		if !ok {
			i = len(reasons)
			idx[k] = i
			reasons = append(reasons, reasonCount{typ: k[0], reason: k[1], first: e.T, example: e.Text(trace.FieldMsg)})
		}
		reasons[i].n++
		reasons[i].last = e.T
	}
	if len(all) == 0 {
		p.b.WriteString("<p class=\"empty\">No Kubernetes events were recorded.</p>\n</section>\n")
		return
	}
	// Warnings first, then the most frequent: what went wrong, and what
	// dominates the event stream.
	slices.SortStableFunc(reasons, func(a, b reasonCount) int {
		return cmp.Or(cmp.Compare(isWarning(b.typ), isWarning(a.typ)), cmp.Compare(b.n, a.n), strings.Compare(a.reason, b.reason))
	})
	p.b.WriteString("<table>\n<thead><tr><th>Type</th><th>Reason</th><th>Count</th><th>First – last</th></tr></thead>\n<tbody>\n")
	for i, r := range reasons {
		if i == maxReasonRows {
			p.printf("<tr><td colspan=\"4\" class=\"more\">… %d more reasons</td></tr>\n", len(reasons)-i)
			break
		}
		p.printf("<tr><td><span class=\"etype %s\">%s</span></td><td>%s<div class=\"detail\">%s</div></td><td class=\"num\">%d</td><td class=\"mono time\">%s – %s</td></tr>\n",
			esc(strings.ToLower(r.typ)), esc(r.typ), esc(r.reason), esc(shorten(clean(r.example), 140)), r.n, stamp(r.first), stamp(r.last))
	}
	p.b.WriteString("</tbody>\n</table>\n")
	p.printf("<h3>First %d events</h3>\n<table class=\"compact\">\n<tbody>\n", min(len(all), maxEventRows))
	for _, e := range all[:min(len(all), maxEventRows)] {
		p.printf("<tr><td class=\"mono time\">%s</td><td><span class=\"etype %s\">%s</span></td><td><b>%s</b> %s<div class=\"detail\">%s</div></td></tr>\n",
			stamp(e.T), esc(strings.ToLower(e.Text(trace.FieldType))), esc(e.Text(trace.FieldType)), esc(e.Text(trace.FieldReason)),
			esc(e.Text(trace.FieldObject)), esc(e.Text(trace.FieldMsg)))
	}
	p.b.WriteString("</tbody>\n</table>\n</section>\n")
}

func isWarning(typ string) int {
	if typ == "Warning" {
		return 1
	}
	return 0
}

var toneClass = map[tone]string{toneInfo: "info", toneGood: "good", toneFault: "fault", toneBad: "bad", toneMuted: "muted"}

// timeline is Timeline as a table.
func (p *page) timeline() {
	rows := digest(p.events)
	p.printf("<section class=\"card\" id=\"events\">\n<h2>Events <small>interesting events; routine ones counted between them</small></h2>\n<div class=\"scroll\">\n<table class=\"events\">\n<tbody>\n")
	for i, r := range rows {
		if i == maxTimelineRow {
			p.printf("<tr class=\"tally\"><td></td><td></td><td>… %d more rows</td></tr>\n", len(rows)-i)
			break
		}
		if r.Tally {
			p.printf("<tr class=\"tally\"><td></td><td></td><td>… %s</td></tr>\n", esc(r.Text))
			continue
		}
		text := esc(r.Text)
		if rest, ok := strings.CutPrefix(text, "FAIL "); ok {
			text = "<b>FAIL</b> " + rest
		}
		p.printf("<tr class=\"%s\"><td class=\"mono time\">%s</td><td><span class=\"tag\">%s</span></td><td>%s</td></tr>\n",
			toneClass[r.Tone], stamp(r.T), esc(r.Tag), text)
	}
	p.b.WriteString("</tbody>\n</table>\n</div>\n</section>\n")
}

// kinds lists the count of every kind, and the events of kinds this report
// does not know, raw: a new kind in the engine is visible before the report
// learns to draw it.
func (p *page) kinds() {
	type kc struct {
		kind        trace.Kind
		n           int
		first, last time.Duration
	}
	idx := map[trace.Kind]int{}
	var ks []kc
	var raw []Event
	for _, e := range p.events {
		i, ok := idx[e.Kind]
		if !ok {
			i = len(ks)
			idx[e.Kind] = i
			ks = append(ks, kc{kind: e.Kind, first: e.T})
		}
		ks[i].n++
		ks[i].last = e.T
		if !knownKinds[e.Kind] {
			raw = append(raw, e)
		}
	}
	slices.SortStableFunc(ks, func(a, b kc) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(string(a.kind), string(b.kind)))
	})
	p.printf("<details class=\"card\">\n<summary>Events by kind <small>%s of %s</small></summary>\n",
		plural(len(p.events), "event", "events"), plural(len(ks), "kind", "kinds"))
	p.b.WriteString("<table class=\"compact\">\n<thead><tr><th>Kind</th><th>Count</th><th>First – last</th></tr></thead>\n<tbody>\n")
	for _, k := range ks {
		p.printf("<tr><td class=\"mono\">%s</td><td class=\"num\">%d</td><td class=\"mono time\">%s – %s</td></tr>\n",
			esc(string(k.kind)), k.n, stamp(k.first), stamp(k.last))
	}
	p.b.WriteString("</tbody>\n</table>\n</details>\n")
	if len(raw) == 0 {
		return
	}
	p.printf("<details class=\"card\">\n<summary>Unrecognised events <small>%s, not drawn</small></summary>\n",
		plural(len(raw), "event", "events"))
	p.b.WriteString("<table class=\"compact\">\n<thead><tr><th>Time</th><th>Kind</th><th>Fields</th></tr></thead>\n<tbody>\n")
	for i, e := range raw {
		if i == maxRawRows {
			p.printf("<tr><td colspan=\"3\" class=\"more\">… %d more</td></tr>\n", len(raw)-i)
			break
		}
		fields, _ := json.Marshal(e.Fields) // map keys sorted: stable output
		p.printf("<tr><td class=\"mono time\">%s</td><td class=\"mono\">%s</td><td class=\"mono raw\">%s</td></tr>\n",
			stamp(e.T), esc(string(e.Kind)), esc(string(fields)))
	}
	p.b.WriteString("</tbody>\n</table>\n</details>\n")
}

const css = `
:root{--fg:#1c2430;--muted:#5d6978;--faint:#8b96a4;--line:#e2e6eb;--bg:#f3f5f8;--card:#fff;
--good:#2f9e5a;--warn:#e3a031;--bad:#d43f3f;--blue:#3676d3}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
main{max-width:1260px;margin:0 auto;padding:20px 20px 40px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:14px 0;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.top{border-top:5px solid var(--good)}.top.fail{border-top-color:var(--bad)}
.title{display:flex;align-items:center;gap:12px}
h1{font-size:22px;margin:0;overflow-wrap:anywhere}
h2{font-size:15px;margin:0 0 12px}h2 small,summary small{font-weight:400;color:var(--faint);margin-left:8px;font-size:12.5px}
h3{font-size:13px;margin:16px 0 6px;color:var(--muted)}
.badge{padding:3px 11px;border-radius:999px;font-weight:700;font-size:13px;letter-spacing:.05em;color:#fff}
.badge.pass{background:var(--good)}.badge.fail{background:var(--bad)}
.file{color:var(--muted);margin-top:4px}
.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.facts{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:10px 18px;margin:14px 0 0}
.facts .wide{grid-column:1/-1}
dt{color:var(--faint);font-size:11px;text-transform:uppercase;letter-spacing:.06em}
dd{margin:1px 0 0;font-weight:600;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.hash{font-weight:400;color:var(--muted)}
.repro{margin-top:12px;display:flex;align-items:stretch;border:1px solid var(--line);border-radius:6px;overflow:hidden}
.repro span{background:#eef1f5;color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.06em;padding:7px 10px;display:flex;align-items:center}
.repro code{padding:7px 10px;overflow-x:auto;white-space:pre;flex:1}
.failures{margin-top:12px;border-left:4px solid var(--bad);background:#fdf0f0;padding:8px 14px;border-radius:4px}
.failures h2{color:#a12a2a;margin:0 0 4px;font-size:13px}.failures ul{margin:0;padding-left:18px}
.recoveries{list-style:none;margin:12px 0 0;padding:0}
.recoveries li{border-left:4px solid var(--good);background:#eef8f1;padding:6px 14px;border-radius:4px;margin-top:6px;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.recoveries li.abandoned{border-left-color:var(--bad);background:#fdf0f0}.recoveries li.open{border-left-color:var(--warn);background:#fdf6e8}
.recoveries li.more{border:0;background:none;padding-left:0}
.stats{display:flex;gap:10px;flex-wrap:wrap;margin-top:14px}
.stat{flex:1 1 140px;border:1px solid var(--line);border-radius:8px;padding:8px 12px;background:#fafbfc}
.stat b{display:block;font-size:19px;font-variant-numeric:tabular-nums}.stat b small{font-size:12px;color:var(--bad);font-weight:600}
.stat span{color:var(--muted);font-size:12px}
.stat.good b{color:var(--good)}.stat.bad{background:#fdf0f0;border-color:#f3c4c4}.stat.bad b{color:var(--bad)}.stat.warn b{color:#b7791f}
.picture{overflow-x:auto}
svg.timeline{width:100%;height:auto;display:block;min-width:900px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
.label{font-size:12px;fill:#263140}.label.sub{fill:var(--faint);font-size:11px}
.group{font-size:10.5px;font-weight:700;letter-spacing:.09em;fill:#6f7b8a}
.tick{font-size:11px;fill:#69768a;font-variant-numeric:tabular-nums}
.axis-title{font-size:10.5px;fill:#a0a9b5;text-anchor:end}
.grid{stroke:#e4e8ed;stroke-width:1}.rule{stroke:#dfe3e8}
.stripe{fill:#f8f9fb}
.fault-shade{fill:#f2b84b;fill-opacity:.14}
.recovery-shade{fill:#36a465;fill-opacity:.14}
.recovery{fill:#2f9e5a}.recovery.open{fill:#a8d8b9}.recovery.abandoned{fill:#e58e8e}
.hit{fill:transparent}.none{font-size:10.5px;font-style:italic;fill:#b3bcc7}
.s-good{fill:#36a465}.s-warn{fill:#eab03e}.s-bad{fill:#d94848}.s-standby{fill:#9cc0e7}
.s-idle{fill:#b7c1cc}.s-off{fill:#7e8896}.s-unknown{fill:#e3e7ec}.s-gone{fill:#eceef1}.s-oos{fill:#ef7f1a}
.fault{fill:#f2b84b}.bar-label{font-size:10.5px;font-weight:600;fill:#5a3b00}
.vol{fill:#3676d3}.vol-pend{fill:#bcd2f2}.count{fill:#3676d3;fill-opacity:.85}.vol-label{font-size:8.5px;fill:#fff}
.act{fill:#a3b2c4}.act-bad{fill:#d94848}
rect[class^="s-"]:hover,rect.fault:hover,rect.vol:hover,rect.recovery:hover{stroke:#1c2430;stroke-width:1}
.mk{cursor:default}.mk.ok circle{fill:#2f9e5a}.mk.ok path{stroke:#fff;stroke-width:1.7;fill:none}
.mk.fail circle{fill:#d43f3f}.mk.fail path{stroke:#fff;stroke-width:1.8;fill:none}
.mk.warn path{fill:#eab03e;stroke:#a66d0f;stroke-width:.7}.mk.step path{fill:#9aa5b3}
.mk.tick path{stroke:#d43f3f;stroke-width:2}.mk.held circle{fill:#8cc7a2}
.band-label{font-size:9.5px;font-weight:600;pointer-events:none}.band-label.light{fill:#fff}.band-label.dark{fill:#3d3320}
.fail-line{stroke:#d43f3f;stroke-width:1.2;stroke-dasharray:4 3;opacity:.75}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12px;color:var(--muted);margin:10px 0 0 4px}
.legend span{white-space:nowrap}
.sw{display:inline-block;width:16px;height:10px;border-radius:2px;vertical-align:-1px;margin-right:6px}
.sw.s-good{background:#36a465}.sw.s-warn{background:#eab03e}.sw.s-bad{background:#d94848}.sw.s-standby{background:#9cc0e7}
.sw.s-off{background:#7e8896}.sw.s-unknown{background:#e3e7ec}.sw.s-oos{background:#ef7f1a;height:4px;vertical-align:2px}
.sw.recovery{background:#2f9e5a}.sw.recovery-open{background:#a8d8b9}.sw.fault{background:#f2b84b}.sw.vol{background:#3676d3}.sw.vol-pend{background:#bcd2f2}
.dot{display:inline-block;width:14px;height:14px;border-radius:50%;color:#fff;font-size:10px;line-height:14px;text-align:center;font-style:normal;margin-right:6px;font-weight:700}
.dot.ok{background:#2f9e5a}.dot.fail{background:#d43f3f}.tri{color:#eab03e;font-style:normal;margin-right:6px}
.hint{color:var(--faint);font-size:12px;margin:6px 0 0 4px}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0 14px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #edf0f3;vertical-align:top}
th{font-size:11px;color:var(--faint);font-weight:600;text-transform:uppercase;letter-spacing:.05em}
td.time{white-space:nowrap;color:var(--muted)}td.num{text-align:right;font-variant-numeric:tabular-nums}
.detail{color:var(--muted);font-size:12px;overflow-wrap:anywhere}
tr.fail td{background:#fdf3f3}
.res{font-weight:700;white-space:nowrap}.res.ok{color:var(--good)}.res.fail{color:var(--bad)}
.etype{font-size:11px;font-weight:600;padding:1px 6px;border-radius:4px;background:#eef1f5;color:var(--muted)}
.etype.warning{background:#fcefd6;color:#8a5a0b}
.more,.empty{color:var(--faint);font-style:italic}
.scroll{max-height:640px;overflow:auto;border:1px solid #edf0f3;border-radius:6px}
table.events td{border-bottom:1px solid #f1f3f6;padding:3px 8px}
table.events td:last-child{overflow-wrap:anywhere}
.tag{display:inline-block;min-width:74px;text-align:center;border-radius:4px;font-size:10.5px;font-weight:700;letter-spacing:.04em;padding:1px 6px;background:#eef1f5;color:#4a5565}
tr.good .tag{background:#e3f4ea;color:#1f7a43}tr.fault .tag{background:#fcefd6;color:#8a5a0b}
tr.bad .tag{background:#fbe2e2;color:#a12a2a}tr.bad td:last-child{color:#a12a2a}
tr.muted td{color:var(--faint)}tr.tally td{color:var(--faint);font-style:italic;font-size:12.5px}
table.compact td{padding:3px 8px}td.raw{overflow-wrap:anywhere;color:var(--muted)}
details>summary{cursor:pointer;font-weight:600;font-size:15px}details[open]>summary{margin-bottom:10px}
footer{color:var(--faint);font-size:12px;text-align:center;margin-top:18px}
@media (max-width:900px){.cols{grid-template-columns:1fr}.facts{grid-template-columns:repeat(2,minmax(0,1fr))}}
`
