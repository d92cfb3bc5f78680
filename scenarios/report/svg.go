package report

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Geometry of the picture, in SVG user units (it scales to the page width).
const (
	svgWidth   = 1200
	labelWidth = 178
	padRight   = 24
	plotWidth  = svgWidth - labelWidth - padRight
	axisTop    = 30 // room for the tick labels above the lanes
	axisBottom = 26
	groupH     = 22
	laneH      = 18
	bandH      = 12
	markerGap  = 9 // markers closer than this (px) are drawn as one
)

// canvas maps virtual time onto the plot and collects the SVG text.
type canvas struct {
	b   strings.Builder
	m   *model
	res time.Duration // virtual time per pixel
}

func (c *canvas) x(t time.Duration) float64 {
	return labelWidth + float64(t)/float64(c.m.end)*plotWidth
}

// f formats a coordinate: one decimal is finer than a pixel and keeps the
// output short and stable.
func f(v float64) string {
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// esc escapes text for HTML and for XML alike (the SVG must parse as XML).
func esc(s string) string { return html.EscapeString(clean(s)) }

func (c *canvas) printf(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

// rect draws a rectangle at least a pixel wide, with a hover title.
func (c *canvas) rect(x0, x1, y, h float64, class, title string) {
	w := max(x1-x0, 1)
	c.printf(`<rect class="%s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
		class, f(x0), f(y), f(w), f(h), esc(title))
}

// lane is one row of the picture. A lane with a group name and no draw
// function is the group's heading.
type lane struct {
	id    string // data-lane, for tests and styling
	label string
	sub   bool // a secondary lane, labelled lighter
	title string
	empty bool // nothing to draw: say so, rather than leave a blank to puzzle over
	group string
	h     float64
	y     float64
	draw  func(c *canvas, y, h float64)
}

// svgPicture draws the model: lanes stacked under a shared time axis.
func svgPicture(m *model) string {
	c := &canvas{m: m, res: max(m.end/plotWidth, 1)}
	lanes := layout(c, m)
	top, bottom := float64(axisTop), float64(axisTop)
	for i := range lanes {
		lanes[i].y = bottom
		bottom += lanes[i].h
	}
	height := bottom + axisBottom
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %s" width="%d" height="%s" role="img" aria-label="Timeline of the run">`,
		svgWidth, f(height), svgWidth, f(height))
	c.printf(`<title>Timeline of the run, %s of virtual time</title>`, esc(span(m.end)))
	c.backgrounds(lanes)
	c.grid(top, bottom)
	c.faultShading(top, bottom)
	c.recoveryShading(top, bottom)
	for _, l := range lanes {
		if l.draw != nil {
			c.printf(`<g class="lane" data-lane="%s">`, esc(l.id))
			if l.empty {
				c.printf(`<text class="none" x="%d" y="%s">no events</text>`, labelWidth+6, f(l.y+l.h/2+3.5))
			}
			l.draw(c, l.y, l.h)
			c.b.WriteString(`</g>`)
		}
	}
	c.failLines(top, bottom)
	c.labels(lanes)
	c.axis(top, bottom)
	c.b.WriteString(`</svg>`)
	return c.b.String()
}

// layout lists the lanes from cause to effect: what was broken, how the
// connection, the controller and the nodes reacted, and the verdicts.
func layout(c *canvas, m *model) []lane {
	var ls []lane
	group := func(name string) { ls = append(ls, lane{group: name, h: groupH}) }
	if len(m.faults) > 0 {
		group("Faults")
		for _, fl := range m.faults {
			ls = append(ls, lane{id: "fault:" + fl.name, label: fl.name, h: laneH, draw: faultDrawer(fl)})
		}
	}
	group("RDS")
	ls = append(ls, lane{id: "rds", label: "connection", h: laneH, empty: len(m.rds) == 0, draw: bandDrawer("RDS", intervals(m.rds, m.end), rdsBand)})
	if len(m.recoveries) > 0 {
		ls = append(ls, lane{id: "recovery", label: "recovery", title: "recovery: RDS back → every displaced volume attached",
			h: laneH + 2, draw: recoveryDrawer(m.recoveries)})
	}
	ls = append(ls, lane{id: "commands", label: "RouterOS commands", sub: true, h: 22, empty: m.commands.n == 0, draw: activityDrawer("RouterOS commands", m.commands)})
	group("Controller")
	ls = append(ls, lane{id: "probe", label: "Probe ready", h: laneH, empty: len(m.probe) == 0, draw: bandDrawer("Probe", intervals(m.probe, m.end), probeBand)})
	for _, r := range m.replicaNames() {
		ls = append(ls, lane{id: "controller:" + r, label: r, h: laneH,
			draw: bandDrawer(r, intervals(m.ctrl[r], m.end), ctrlBand)})
	}
	ls = append(ls, lane{id: "rpcs", label: "CSI RPCs", sub: true, h: 22, empty: m.rpcs.n == 0, draw: activityDrawer("CSI RPCs", m.rpcs)})
	if names := m.nodeNames(); len(names) > 0 {
		group("Nodes and attached volumes")
		vl := newVolumeLayout(m)
		for _, name := range names {
			n := m.nodes[name]
			ls = append(ls,
				lane{id: "node:" + name, label: name, h: laneH, draw: nodeDrawer(n)},
				lane{id: "attach:" + name, label: vl.label(n), sub: true, h: vl.height(n), draw: vl.drawer(n)})
		}
	}
	group("Checks")
	ls = append(ls, lane{id: "expect", label: "expectations", h: laneH + 2, empty: len(m.expects) == 0, draw: markerDrawer(m.expects, "expectation", false)})
	if len(m.invariants) > 0 {
		ls = append(ls, lane{id: "invariants", label: "invariants", h: laneH + 2, draw: markerDrawer(m.invariants, "invariant", true)})
	}
	ls = append(ls, lane{id: "warnings", label: "Warning events", h: laneH + 2, empty: len(m.warnings) == 0, draw: warningDrawer(m.warnings)})
	if len(m.steps) > 0 {
		ls = append(ls, lane{id: "steps", label: "steps", sub: true, h: laneH, draw: stepDrawer(m.steps)})
	}
	for i := range ls {
		if ls[i].title == "" {
			ls[i].title = ls[i].label
		}
	}
	return ls
}

// backgrounds stripes alternate lanes and rules off the groups, so that the
// eye can follow a lane across a wide picture.
func (c *canvas) backgrounds(ls []lane) {
	odd := false
	for _, l := range ls {
		if l.draw == nil {
			c.printf(`<line class="rule" x1="8" x2="%d" y1="%s" y2="%s"/>`, svgWidth-padRight, f(l.y+l.h-4), f(l.y+l.h-4))
			odd = false
			continue
		}
		if odd {
			c.printf(`<rect class="stripe" x="0" y="%s" width="%d" height="%s"/>`, f(l.y), svgWidth, f(l.h))
		}
		odd = !odd
	}
}

// grid draws the vertical tick lines behind the lanes.
func (c *canvas) grid(top, bottom float64) {
	step := tickStep(c.m.end)
	for t := time.Duration(0); t <= c.m.end; t += step {
		c.printf(`<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, f(c.x(t)), f(c.x(t)), f(top), f(bottom))
	}
}

// axis labels the ticks above and below the lanes.
func (c *canvas) axis(top, bottom float64) {
	step := tickStep(c.m.end)
	c.printf(`<text class="axis-title" x="%d" y="%s">virtual time</text>`, labelWidth-10, f(top-12))
	for t := time.Duration(0); t <= c.m.end; t += step {
		anchor := "middle"
		if t == 0 {
			anchor = "start"
		}
		x := f(c.x(t))
		c.printf(`<text class="tick" x="%s" y="%s" text-anchor="%s">%s</text>`, x, f(top-12), anchor, axisLabel(t))
		c.printf(`<text class="tick" x="%s" y="%s" text-anchor="%s">%s</text>`, x, f(bottom+16), anchor, axisLabel(t))
	}
}

// faultShading tints the whole height of the picture while a fault is
// active, so every lane can be read against it.
func (c *canvas) faultShading(top, bottom float64) {
	for _, fl := range c.m.faults {
		for _, b := range fl.bars {
			c.printf(`<rect class="fault-shade" x="%s" y="%s" width="%s" height="%s"/>`,
				f(c.x(b.From)), f(top), f(max(c.x(b.To)-c.x(b.From), 1)), f(bottom-top))
		}
	}
}

// recoveryShading tints the whole height while a recovery runs: which
// volume bars begin inside it is what it is about.
func (c *canvas) recoveryShading(top, bottom float64) {
	for _, r := range c.m.recoveries {
		c.printf(`<rect class="recovery-shade" x="%s" y="%s" width="%s" height="%s"/>`,
			f(c.x(r.Start)), f(top), f(max(c.x(recoveryTo(r, c.m.end))-c.x(r.Start), 1)), f(bottom-top))
	}
}

// recoveryTo is where a recovery's bar ends: an open one runs to the end.
func recoveryTo(r Recovery, end time.Duration) time.Duration {
	if r.Done || r.Abandoned {
		return r.End
	}
	return max(end, r.End)
}

// failLines mark failed expectations and invariant violations across every
// lane: what each lane was doing at that moment is the first question.
func (c *canvas) failLines(top, bottom float64) {
	for _, ms := range [][]marker{c.m.expects, c.m.invariants} {
		for _, m := range ms {
			if !m.OK {
				x := f(c.x(m.T))
				c.printf(`<line class="fail-line" x1="%s" x2="%s" y1="%s" y2="%s"/>`, x, x, f(top), f(bottom))
			}
		}
	}
}

func (c *canvas) labels(ls []lane) {
	for _, l := range ls {
		if l.draw == nil {
			c.printf(`<text class="group" x="10" y="%s">%s</text>`, f(l.y+l.h-9), esc(strings.ToUpper(l.group)))
			continue
		}
		class := "label"
		if l.sub {
			class = "label sub"
		}
		c.printf(`<text class="%s" x="%d" y="%s" text-anchor="end">%s<title>%s</title></text>`,
			class, labelWidth-10, f(l.y+l.h/2+4), esc(shorten(l.label, 26)), esc(l.title))
	}
}

// tickSteps are the tick spacings a reader counts in, smallest first.
var tickSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// tickStep is the smallest round spacing giving at most 12 ticks: 10 s runs
// get a tick per second, 3 h ones every 15 minutes, a day every 2 hours.
func tickStep(end time.Duration) time.Duration {
	for _, s := range tickSteps {
		if end/s <= 12 {
			return s
		}
	}
	return end / 12
}

// axisLabel is a tick's time: "0", "30s", "1m30s", "2h", "1h30m", "500ms".
func axisLabel(t time.Duration) string {
	if t == 0 {
		return "0"
	}
	if t%time.Second != 0 {
		return t.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := t / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			t -= n * u.d
		}
	}
	return b.String()
}

// bandKind is how one kind of lane ranks, colours and labels its states;
// the colours are in the page's style sheet, which the legend shares.
type bandKind struct {
	order  []string          // best first, for simplify
	class  map[string]string // CSS class of each state
	normal []string          // states not worth a label
}

// rank orders states for simplify: states not listed rank just above the
// best, and "" (nothing known yet) below everything.
func (k bandKind) rank(s string) int {
	if s == "" {
		return -1
	}
	if i := slices.Index(k.order, s); i >= 0 {
		return i
	}
	return 1
}

var (
	rdsBand = bandKind{
		order:  []string{"connected", "connecting", "disconnected"},
		class:  map[string]string{"connected": "s-good", "connecting": "s-warn", "disconnected": "s-bad"},
		normal: []string{"connected"},
	}
	probeBand = bandKind{
		order:  []string{"ready", "not ready"},
		class:  map[string]string{"ready": "s-good", "not ready": "s-bad"},
		normal: []string{"ready"},
	}
	// A brief leadership matters more than a long standby, and a crash most.
	ctrlBand = bandKind{
		order: []string{"standby", "started", "stopped", "leader", "crashed"},
		class: map[string]string{"leader": "s-good", "standby": "s-standby", "started": "s-idle",
			"stopped": "s-off", "crashed": "s-bad"},
		normal: []string{"standby", "started"},
	}
	nodeBand = bandKind{
		order:  []string{"unknown", "ready", "deleted", "not-ready"},
		class:  map[string]string{"ready": "s-good", "not-ready": "s-bad", "unknown": "s-unknown", "deleted": "s-gone"},
		normal: []string{"ready", "unknown"},
	}
)

// band draws a lane's states; "" (nothing known yet) is left empty.
func (c *canvas) band(name string, ivs []interval, k bandKind, y, h float64) {
	for _, s := range simplify(ivs, c.res, k.rank) {
		if s.State == "" {
			continue
		}
		cl := k.class[s.State]
		if cl == "" {
			cl = "s-idle"
		}
		title := fmt.Sprintf("%s %s · %s – %s (%s)", name, s.State, stamp(s.From), stamp(s.To), span(s.To-s.From))
		if s.Changes > 0 {
			title += fmt.Sprintf(" · %s folded at this scale", plural(s.Changes, "change", "changes"))
		}
		x0, x1 := c.x(s.From), c.x(s.To)
		c.rect(x0, x1, y+(h-bandH)/2, bandH, cl, title)
		if !slices.Contains(k.normal, s.State) {
			c.bandLabel(s, cl, x0, x1, y+(h-bandH)/2)
		}
	}
}

// bandLabel writes a segment's state and length inside it when it is not
// the lane's normal state and there is room: "disconnected · 3h0m12s" is
// read at a glance, where the axis must be measured.
func (c *canvas) bandLabel(s segment, class string, x0, x1, y float64) {
	text := clean(s.State) + " · " + span(s.To-s.From)
	if x1-x0 < float64(len(text))*5.6+10 {
		return
	}
	ink := "light"
	switch class {
	case "s-warn", "s-standby", "s-idle", "s-unknown", "s-gone":
		ink = "dark"
	}
	c.printf(`<text class="band-label %s" x="%s" y="%s">%s</text>`, ink, f(x0+5), f(y+bandH-2.8), esc(text))
}

func bandDrawer(name string, ivs []interval, k bandKind) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) { c.band(name, ivs, k, y, h) }
}

// nodeDrawer draws readiness, with out-of-service periods as a stripe
// under it and attach failures as ticks.
func nodeDrawer(n *nodeModel) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		c.band(n.name, intervals(n.state, c.m.end), nodeBand, y, h)
		for _, iv := range n.oos {
			c.rect(c.x(iv.From), c.x(iv.To), y+h-4, 3, "s-oos",
				fmt.Sprintf("%s out-of-service · %s – %s (%s)", n.name, stamp(iv.From), stamp(iv.To), span(iv.To-iv.From)))
		}
	}
}

func faultDrawer(fl *faultLane) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		for _, b := range fl.bars {
			x0, x1 := c.x(b.From), c.x(b.To)
			title := fmt.Sprintf("fault %s · %s – %s (%s)", fl.name, stamp(b.From), stamp(b.To), span(b.To-b.From))
			label := clean(fl.name) + " · " + span(b.To-b.From)
			if b.Open {
				title += " · not ended"
			}
			if b.Params != "" {
				title += " · " + b.Params
			}
			if b.Err != "" {
				title += " · ending failed: " + b.Err
			}
			c.rect(x0, x1, y+(h-bandH)/2, bandH, "fault", title)
			if x1-x0 > float64(len(label))*6.2+10 {
				c.printf(`<text class="bar-label" x="%s" y="%s">%s</text>`, f(x0+5), f(y+h/2+3.5), esc(label))
			}
		}
		c.markers(fl.failed, y, h, "fault", false)
	}
}

// activityDrawer draws a histogram per pixel column on a log scale: one
// command and ten thousand must both be visible. Failures are overlaid in
// red from the baseline.
func activityDrawer(name string, a activity) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		peak := 0
		for _, n := range a.total {
			peak = max(peak, n)
		}
		title := fmt.Sprintf("%s: %d in total", name, a.n)
		if a.nBad > 0 {
			title += fmt.Sprintf(", %d failed", a.nBad)
		}
		if peak > 0 {
			title += fmt.Sprintf("; at most %d in %s", peak, span(c.m.end/time.Duration(len(a.total))))
		}
		c.printf(`<rect class="hit" x="%d" y="%s" width="%d" height="%s"><title>%s</title></rect>`,
			labelWidth, f(y), plotWidth, f(h), esc(title))
		if peak == 0 {
			return
		}
		scale := func(n int) float64 { return (h - 3) * math.Log1p(float64(n)) / math.Log1p(float64(peak)) }
		c.histogram(a.total, y+h-1, scale, "act")
		c.histogram(a.bad, y+h-1, scale, "act-bad")
	}
}

// histogram draws one path of bars, joining neighbouring columns of equal
// height so that the path stays short.
func (c *canvas) histogram(cols []int, base float64, scale func(int) float64, class string) {
	var p strings.Builder
	colW := float64(plotWidth) / float64(len(cols))
	for i := 0; i < len(cols); {
		j := i + 1
		for j < len(cols) && cols[j] == cols[i] {
			j++
		}
		if cols[i] > 0 {
			hgt := max(scale(cols[i]), 1)
			fmt.Fprintf(&p, "M%s %sV%sH%sV%sZ", f(labelWidth+float64(i)*colW), f(base), f(base-hgt),
				f(labelWidth+float64(j)*colW), f(base))
		}
		i = j
	}
	if p.Len() > 0 {
		c.printf(`<path class="%s" d="%s"/>`, class, p.String())
	}
}

// markers draws point events, clustering those closer than markerGap: a
// cluster is a cross if any of its events failed, else a tick, and its
// title lists the first few.
func (c *canvas) markers(ms []marker, y, h float64, what string, quietOK bool) {
	cy := y + h/2
	for _, cl := range cluster(c, ms) {
		x := c.x(cl[0].T)
		ok := true
		for _, m := range cl {
			ok = ok && m.OK
		}
		title := clusterTitle(cl, what)
		switch {
		case ok && quietOK:
			c.printf(`<g class="mk held"><circle cx="%s" cy="%s" r="2.5"/><title>%s</title></g>`, f(x), f(cy), esc(title))
		case ok:
			c.printf(`<g class="mk ok"><circle cx="%s" cy="%s" r="5.5"/><path d="M%s %sl2 2 3.6-4"/><title>%s</title></g>`,
				f(x), f(cy), f(x-2.8), f(cy), esc(title))
		default:
			c.printf(`<g class="mk fail"><circle cx="%s" cy="%s" r="6"/><path d="M%s %sl5 5M%s %sl-5 5"/><title>%s</title></g>`,
				f(x), f(cy), f(x-2.5), f(cy-2.5), f(x+2.5), f(cy-2.5), esc(title))
		}
	}
}

// markerDrawer draws markers; with quietOK the passes are small dots, for
// checks that pass by the hundred and matter only when they fail.
func markerDrawer(ms []marker, what string, quietOK bool) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) { c.markers(ms, y, h, what, quietOK) }
}

// warningDrawer draws Warning events as amber triangles.
func warningDrawer(ms []marker) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		for _, cl := range cluster(c, ms) {
			x, cy := c.x(cl[0].T), y+h/2
			c.printf(`<g class="mk warn"><path d="M%s %sl6 10.5h-12Z"/><title>%s</title></g>`,
				f(x), f(cy-6), esc(clusterTitle(cl, "Warning event")))
		}
	}
}

func stepDrawer(ms []marker) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		for _, cl := range cluster(c, ms) {
			x, cy := c.x(cl[0].T), y+h/2
			c.printf(`<g class="mk step"><path d="M%s %sl3.5 3.5-3.5 3.5-3.5-3.5Z"/><title>%s</title></g>`,
				f(x), f(cy-3.5), esc(clusterTitle(cl, "step")))
		}
	}
}

// cluster groups markers (sorted by time) that would overlap when drawn.
func cluster(c *canvas, ms []marker) [][]marker {
	var out [][]marker
	for i, m := range ms {
		if n := len(out); n > 0 && c.x(m.T)-c.x(out[n-1][0].T) < markerGap {
			out[n-1] = append(out[n-1], m)
			continue
		}
		out = append(out, ms[i:i+1:i+1])
	}
	return out
}

// clusterTitle lists a cluster's first events, failures first, so the
// tooltip of a cluster hiding one failure among many passes shows it.
func clusterTitle(cl []marker, what string) string {
	const show = 8
	var b strings.Builder
	if len(cl) > 1 {
		fmt.Fprintf(&b, "%s\n", plural(len(cl), what, what+"s"))
	}
	shown := 0
	for _, pass := range []bool{false, true} {
		for _, m := range cl {
			if m.OK != pass || shown == show {
				continue
			}
			fmt.Fprintf(&b, "%s  %s\n", stamp(m.T), m.Text)
			shown++
		}
	}
	if len(cl) > show {
		fmt.Fprintf(&b, "… and %d more", len(cl)-show)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// volumeLayout decides how attachments are drawn, the same way for every
// node so that lanes compare: one thin bar per volume when few are attached
// at once, else a band of the count of attached volumes.
type volumeLayout struct {
	perVolume bool
	rows      map[string][]int // node → row of each lifecycle
	nRows     map[string]int
	peak      int // most volumes attached to one node at once
}

const (
	maxVolumeRows = 6  // beyond this many concurrent volumes, draw counts
	countLaneH    = 30 // height of a count band
)

func newVolumeLayout(m *model) *volumeLayout {
	vl := &volumeLayout{perVolume: true, rows: map[string][]int{}, nRows: map[string]int{}}
	for name, n := range m.nodes {
		rows, k := assignRows(n.vols)
		vl.rows[name], vl.nRows[name] = rows, k
		if k > maxVolumeRows {
			vl.perVolume = false
		}
		for _, p := range n.count {
			vl.peak = max(vl.peak, p.N)
		}
	}
	return vl
}

// assignRows gives each lifecycle the first row free at its start, so that
// a node needs as many rows as it had volumes at once.
func assignRows(ls []lifecycle) ([]int, int) {
	rows := make([]int, len(ls))
	var free []time.Duration // when each row becomes free
	for i, l := range ls {
		r := 0
		for r < len(free) && free[r] > l.start() {
			r++
		}
		if r == len(free) {
			free = append(free, 0)
		}
		free[r], rows[i] = l.ended, r
	}
	return rows, len(free)
}

func (vl *volumeLayout) rowH() (bar, gap float64) {
	if vl.maxRows() <= 3 {
		return 10, 2
	}
	return 5, 2
}

func (vl *volumeLayout) maxRows() int {
	k := 0
	for _, n := range vl.nRows {
		k = max(k, n)
	}
	return k
}

func (vl *volumeLayout) height(n *nodeModel) float64 {
	if !vl.perVolume {
		return countLaneH
	}
	bar, gap := vl.rowH()
	return max(float64(vl.nRows[n.name])*(bar+gap)+6, laneH)
}

func (vl *volumeLayout) label(n *nodeModel) string {
	if vl.perVolume {
		return "volumes"
	}
	peak := 0
	for _, p := range n.count {
		peak = max(peak, p.N)
	}
	return fmt.Sprintf("volumes (peak %d)", peak)
}

func (vl *volumeLayout) drawer(n *nodeModel) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		if vl.perVolume {
			vl.drawVolumes(c, n, y)
		} else {
			vl.drawCount(c, n, y, h)
		}
		c.failTicks(n.failed, y)
	}
}

// drawVolumes draws a bar per volume: pale while requested, solid while
// attached, named when the bar is wide enough.
func (vl *volumeLayout) drawVolumes(c *canvas, n *nodeModel, y float64) {
	bar, gap := vl.rowH()
	for i, l := range n.vols {
		ry := y + 3 + float64(vl.rows[n.name][i])*(bar+gap)
		vol := clean(l.vol)
		attachAt := l.ended
		if l.hasAtt {
			attachAt = l.attached
		}
		if l.hasReq && attachAt > l.requested {
			c.rect(c.x(l.requested), c.x(attachAt), ry, bar, "vol-pend",
				fmt.Sprintf("%s requested on %s · %s – %s (%s)", vol, n.name, stamp(l.requested), stamp(attachAt), span(attachAt-l.requested)))
		}
		if !l.hasAtt {
			continue
		}
		title := fmt.Sprintf("%s attached to %s · %s – %s (%s)", vol, n.name, stamp(l.attached), stamp(l.ended), span(l.ended-l.attached))
		if l.open {
			title += " · still attached at the end"
		}
		x0, x1 := c.x(l.attached), c.x(l.ended)
		c.rect(x0, x1, ry, bar, "vol", title)
		if bar >= 10 && x1-x0 > float64(len(vol))*5.6+8 {
			c.printf(`<text class="vol-label" x="%s" y="%s">%s</text>`, f(x0+4), f(ry+bar-2.2), esc(vol))
		}
	}
}

// drawCount draws the number of attached volumes as a step area, scaled to
// the busiest node, at most one step per pixel column (the column's peak).
func (vl *volumeLayout) drawCount(c *canvas, n *nodeModel, y, h float64) {
	cols := make([]int, c.m.cols)
	for i, p := range n.count {
		to := c.m.end
		if i+1 < len(n.count) {
			to = n.count[i+1].T
		}
		for col := c.m.column(p.T); col <= c.m.column(max(to-1, p.T)); col++ {
			cols[col] = max(cols[col], p.N)
		}
	}
	peak, att := 0, 0
	for _, p := range n.count {
		peak = max(peak, p.N)
	}
	for _, l := range n.vols {
		if l.hasAtt {
			att++
		}
	}
	title := fmt.Sprintf("%s: %s over the run, at most %d at once (all nodes: at most %d)",
		n.name, plural(att, "attachment", "attachments"), peak, vl.peak)
	c.printf(`<rect class="hit" x="%d" y="%s" width="%d" height="%s"><title>%s</title></rect>`,
		labelWidth, f(y), plotWidth, f(h), esc(title))
	if vl.peak == 0 {
		return
	}
	scale := func(k int) float64 { return (h - 4) * float64(k) / float64(vl.peak) }
	c.histogram(cols, y+h-2, scale, "count")
}

// failTicks marks attach failures at the top of a volumes lane.
func (c *canvas) failTicks(ms []marker, y float64) {
	for _, cl := range cluster(c, ms) {
		x := c.x(cl[0].T)
		c.printf(`<g class="mk tick"><path d="M%s %sv7"/><title>%s</title></g>`, f(x), f(y+1), esc(clusterTitle(cl, "attach failure")))
	}
}

// recoveryDrawer draws each recovery as a bar from the reconnect to the end
// of the recovery, closed by a check (done) or a cross (abandoned); an open
// one runs pale to the end of the run. A recovery of a fraction of a second
// in a run of hours is a pixel wide: the marker keeps it visible.
func recoveryDrawer(rs []Recovery) func(*canvas, float64, float64) {
	return func(c *canvas, y, h float64) {
		var ends []marker
		for _, r := range rs {
			class, ink := "recovery", "light"
			switch {
			case r.Done:
			case r.Abandoned:
				class = "recovery abandoned"
			default:
				class, ink = "recovery open", "dark"
			}
			to := recoveryTo(r, c.m.end)
			x0, x1 := c.x(r.Start), c.x(to)
			text := r.String()
			title := text
			if r.Msg != "" {
				title += " · controller: " + r.Msg
			}
			c.rect(x0, x1, y+(h-bandH)/2, bandH, class, title)
			if label := "recovery · " + seconds(to-r.Start); x1-x0 >= float64(len(label))*5.6+10 {
				c.printf(`<text class="band-label %s" x="%s" y="%s">%s</text>`, ink, f(x0+5), f(y+(h-bandH)/2+bandH-2.8), esc(label))
			}
			if r.Done || r.Abandoned {
				ends = append(ends, marker{r.End, r.Done, strings.TrimPrefix(text, "Recovery: ")})
			}
		}
		c.markers(ends, y, h, "recovery", false)
	}
}
