package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

func render(t *testing.T, s Summary, ev []Event) string {
	t.Helper()
	var b bytes.Buffer
	if err := HTML(&b, s, ev); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// svgOf returns the picture, checked to be well-formed XML: browsers forgive
// broken markup, but a picture that is not XML cannot be extracted and
// reused, and usually hides an escaping bug.
func svgOf(t *testing.T, page string) string {
	t.Helper()
	i, j := strings.Index(page, "<svg"), strings.LastIndex(page, "</svg>")
	if i < 0 || j < i {
		t.Fatal("no <svg> element")
	}
	svg := page[i : j+len("</svg>")]
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = true
	depth, elems := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			elems++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 || elems < 10 {
		t.Fatalf("SVG depth %d after the end, %d elements", depth, elems)
	}
	return svg
}

func TestHTMLOutage(t *testing.T) {
	s, ev := outage()
	page := render(t, s, ev)
	svg := svgOf(t, page)
	for _, want := range []string{
		`<span class="badge fail">FAIL</span><h1>rds-crash-2026-02-05</h1>`,
		"<dd>8239x</dd>", "<dd>20260205</dd>", "<dd>3h15m0s</dd>", "<dd>1.42s</dd>",
		s.TraceHash, "go run ./cmd/rds-csi-scenario -seed 20260205",
		`expectation &#34;pvc-b attached to node-3 within 30m&#34; not met within 30m0s`,
		`<span class="res fail">✕ FAIL</span>`, // expectations table
		"FailedAttachVolume",                   // k8s reasons
		"<summary>Events by kind",              // counts per kind
		"<summary>Unrecognised events",         // the raw table
		"engine.note",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, want := range []string{
		`data-lane="fault:rds.crash"`, `data-lane="rds"`, `data-lane="probe"`,
		`data-lane="controller:ctrl-0"`, `data-lane="controller:ctrl-1"`, `data-lane="expect"`, `data-lane="warnings"`,
		`class="s-bad"`, `class="s-good"`, `class="fault"`, `class="vol"`, `class="mk fail"`, `class="mk ok"`, `class="mk warn"`,
		">disconnected · 3h0m12s<", // the outage is labelled with its length
		">30m<", ">1h<", ">1h30m<", ">3h<",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("picture lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched.
	for _, bad := range []string{"<script src", "<link", "<img", "url(", "@import", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to an external resource: %q", bad)
		}
	}
	if n := strings.Count(page, "http://"); n != 1 || !strings.Contains(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Errorf("%d http:// references, want only the SVG namespace", n)
	}
}

func TestHTMLOneLanePerNode(t *testing.T) {
	s, ev := outage()
	svg := svgOf(t, render(t, s, ev))
	for _, prefix := range []string{"node:", "attach:"} {
		got := regexp.MustCompile(`data-lane="`+prefix+`([^"]*)"`).FindAllStringSubmatch(svg, -1)
		var names []string
		for _, m := range got {
			names = append(names, m[1])
		}
		if fmt.Sprint(names) != "[node-1 node-2 node-3]" {
			t.Errorf("%s lanes %v, want one per node in order", prefix, names)
		}
	}
}

func TestHTMLEscapes(t *testing.T) {
	hostile := "<script>alert(1)</script>"
	var tr synth
	tr.add(0, "fault.applied", "fault", `net"<b>`, "param.x", "a'b")
	tr.add(time.Second, "k8s.event", "type", "Warning", "reason", "Bad<Reason>", "msg", "tom & jerry", "object", "Pod/x/y")
	tr.add(2*time.Second, "expect", "name", hostile, "ok", false, "msg", "1 < 2 & 3 > 2")
	tr.add(3*time.Second, "node", "node", `n<1>&"`, "state", "ready")
	tr.add(3*time.Second, "va", "volume", "v<&>", "node", `n<1>&"`, "op", "attached")
	tr.add(4*time.Second, "odd.kind", "cmd", `/disk add file-path="</td><script>"`, "ctl", "bell\x07")
	s := Summary{Scenario: hostile, File: "a&b.yaml", Failures: []string{hostile + " & more"},
		Reproduce: `rds-csi-scenario -run '<x>' && echo "done"`, Virtual: 10 * time.Second, Wall: time.Second}
	page := render(t, s, tr.ev)
	svgOf(t, page)
	for _, bad := range []string{"<script", "<Reason>", `net"<b>`, "<node", "v<&>", "</td><script>"} {
		if strings.Contains(page, bad) {
			t.Errorf("markup from the trace reached the page unescaped: %q", bad)
		}
	}
	for _, want := range []string{
		"<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>",
		"<title>&lt;script&gt;alert(1)&lt;/script&gt; · FAIL",
		"tom &amp; jerry", "a&amp;b.yaml", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more",
		"1 &lt; 2 &amp; 3 &gt; 2", "&#39;&lt;x&gt;&#39; &amp;&amp; echo &#34;done&#34;",
		"Bad&lt;Reason&gt;", "net&#34;&lt;b&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "tom & jerry") || strings.Contains(page, "\x07") {
		t.Error("raw & or control character in the page")
	}
}

// bigTrace is a busy run: 500 volumes attached and detached across 5 nodes
// and 100k RouterOS commands over a day.
func bigTrace() (Summary, []Event) {
	var tr synth
	const end = 24 * time.Hour
	for i := range 5 {
		tr.add(0, "node", "node", fmt.Sprintf("node-%d", i+1), "state", "ready")
	}
	for i := range 100_000 {
		at := time.Duration(i) * (end / 100_000)
		err := ""
		if i%97 == 0 {
			err = "unavailable"
		}
		tr.add(at, "rds.command", "cmd", fmt.Sprintf("/disk print where slot=pvc-%d", i%500), "err", err, "out", "0a1b2c")
	}
	for v := range 500 {
		node := fmt.Sprintf("node-%d", v%5+1)
		vol := fmt.Sprintf("pvc-%03d", v)
		tr.add(time.Duration(v)*time.Minute, "va", "volume", vol, "node", node, "op", "attached")
		tr.add(time.Duration(v)*time.Minute+12*time.Hour, "va", "volume", vol, "node", node, "op", "detach")
	}
	ev := sortedEvents(tr.ev)
	return Summary{Scenario: "busy", Virtual: end, Wall: 3 * time.Second, Pass: true, Events: len(ev)}, ev
}

func TestHTMLSizeBounded(t *testing.T) {
	s, ev := bigTrace()
	begin := time.Now()
	page := render(t, s, ev)
	took := time.Since(begin)
	if len(page) > 2<<20 {
		t.Fatalf("report of %d events is %d bytes, want < 2 MB", len(ev), len(page))
	}
	svg := svgOf(t, page)
	if strings.Contains(svg, `class="vol"`) || !strings.Contains(svg, `class="count"`) {
		t.Error("500 volumes drawn one bar each, want a count band")
	}
	if !strings.Contains(svg, "volumes (peak 100)") {
		t.Error("count band does not say its peak")
	}
	t.Logf("%d events → %d bytes of HTML, %d of SVG, in %v", len(ev), len(page), len(svg), took)
}

func TestHTMLDeterministic(t *testing.T) {
	s, ev := outage()
	first := render(t, s, ev)
	for range 5 { // map iteration differs between runs of the same code
		if again := render(t, s, ev); again != first {
			t.Fatal("same input rendered to different bytes")
		}
	}
	// Out of order input is sorted, not drawn backwards.
	rev := append([]Event(nil), ev...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if len(render(t, s, rev)) == 0 {
		t.Fatal("empty page")
	}
}

func TestHTMLEmpty(t *testing.T) {
	page := render(t, Summary{Scenario: "nothing", Pass: true}, nil)
	svgOf(t, page)
	for _, want := range []string{"No expectations were checked.", "No Kubernetes events were recorded."} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestTickStep(t *testing.T) {
	for _, tc := range []struct {
		end    time.Duration
		step   time.Duration
		labels []string
	}{
		{10 * time.Second, time.Second, []string{"0", "1s", "10s"}},
		{90 * time.Second, 10 * time.Second, []string{"0", "1m", "1m30s"}},
		{3*time.Hour + 15*time.Minute, 30 * time.Minute, []string{"0", "30m", "1h", "1h30m", "3h"}},
		{24 * time.Hour, 2 * time.Hour, []string{"0", "2h", "24h"}},
		{800 * time.Millisecond, 100 * time.Millisecond, []string{"0", "100ms", "800ms"}},
	} {
		step := tickStep(tc.end)
		if step != tc.step {
			t.Errorf("tickStep(%v) = %v, want %v", tc.end, step, tc.step)
		}
		var labels []string
		for at := time.Duration(0); at <= tc.end; at += step {
			labels = append(labels, axisLabel(at))
		}
		for _, want := range tc.labels {
			if !strings.Contains(" "+strings.Join(labels, " ")+" ", " "+want+" ") {
				t.Errorf("ticks for %v are %v, lack %q", tc.end, labels, want)
			}
		}
	}
}

func TestSimplify(t *testing.T) {
	res := time.Minute // a day on ~1000 pixels is ~86 s per pixel
	// A one-second disconnect in a day stays visible.
	cs := []change{{0, "connected"}, {6 * time.Hour, "disconnected"}, {6*time.Hour + time.Second, "connected"}}
	segs := simplify(intervals(cs, 24*time.Hour), res, rdsBand.rank)
	if len(segs) != 3 || segs[1].State != "disconnected" {
		t.Errorf("brief disconnect lost: %+v", segs)
	}
	// Instants of "connecting" between long failures disappear into them.
	cs = []change{{0, "connected"}, {time.Hour, "disconnected"}}
	for at := time.Hour + 2*time.Minute; at < 3*time.Hour; at += 2 * time.Minute {
		cs = append(cs, change{at, "connecting"}, change{at, "disconnected"})
	}
	cs = append(cs, change{3 * time.Hour, "connecting"}, change{3*time.Hour + time.Second, "connected"})
	segs = simplify(intervals(cs, 4*time.Hour), res, rdsBand.rank)
	if len(segs) != 3 || segs[1].State != "disconnected" || segs[1].From != time.Hour || segs[2].From != 3*time.Hour+time.Second {
		t.Errorf("outage not one band: %+v", segs)
	}
	if segs[1].Changes < 100 {
		t.Errorf("folded changes not counted: %d", segs[1].Changes)
	}
}
