package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Event is one trace line: the schema's event (its field readers Text, Num
// and Flag included), named here for the callers of Parse.
type Event = trace.Event

// Parse reads a JSONL trace; a malformed line is an error naming its line number.
// Blank lines are skipped. Numbers in Fields are json.Number, so a parsed
// trace marshals back to the bytes it was read from.
func Parse(r io.Reader) ([]Event, error) {
	br := bufio.NewReader(r)
	var events []Event
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			e, perr := parseLine(line)
			if perr != nil {
				return nil, fmt.Errorf("report: trace line %d: %w", n, perr)
			}
			events = append(events, e)
		}
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return nil, fmt.Errorf("report: reading trace line %d: %w", n, err)
		}
	}
}

func parseLine(line []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var e Event
	if err := dec.Decode(&e); err != nil {
		return Event{}, err
	}
	// Two events glued on one line mean the writer is broken; say so here
	// rather than render half of them.
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, errors.New("unexpected data after the event")
	}
	if e.Kind == "" {
		return Event{}, errors.New("event has no kind")
	}
	return e, nil
}

// sortedEvents returns events in time order. The engine writes them sorted;
// a hand-edited or concatenated trace may not be, and the lanes assume it.
// The sort is stable so that events of one instant keep their trace order.
func sortedEvents(events []Event) []Event {
	byTime := func(a, b Event) int { return cmpDuration(a.T, b.T) }
	if slices.IsSortedFunc(events, byTime) {
		return events
	}
	s := slices.Clone(events)
	slices.SortStableFunc(s, byTime)
	return s
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Summary is the outcome of one run.
type Summary struct {
	Scenario string        `json:"scenario"`
	File     string        `json:"file,omitempty"`
	Seed     int64         `json:"seed"`
	Pass     bool          `json:"pass"`
	Failures []string      `json:"failures,omitempty"`
	Virtual  time.Duration `json:"virtualNs"`
	Wall     time.Duration `json:"wallNs"`
	Steps    int64         `json:"clockSteps"`
	// IdleSteps is how many of those found nothing changed and skipped the
	// engine's per-instant pass (engine/idle.go).
	IdleSteps int64  `json:"idleClockSteps"`
	TraceHash string `json:"traceHash"`
	Events    int    `json:"events"`
	Reproduce string `json:"reproduce,omitempty"` // the one command that reproduces the run
}

// Compression is virtual seconds per wall second (0 when Wall is 0).
func (s Summary) Compression() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return s.Virtual.Seconds() / s.Wall.Seconds()
}

// Line is the one-line summary a run ends with, e.g.
// "rds-crash-2026-02-05 PASS virtual 3h15m0s wall 1.42s compression 8239x seed 20260205"
// and on failure "... FAIL ..." followed by nothing else (failures are printed before it).
func (s Summary) Line() string {
	return fmt.Sprintf("%s %s virtual %s wall %s compression %s seed %d",
		clean(s.Scenario), s.verdict(), s.Virtual.Round(time.Millisecond), roundSig(s.Wall, 3),
		fmtCompression(s.Compression()), s.Seed)
}

func (s Summary) verdict() string {
	if s.Pass {
		return "PASS"
	}
	return "FAIL"
}

// fmtCompression prints whole multiples once they are large enough that the
// fraction is noise; "n/a" when there was no wall time to divide by.
func fmtCompression(c float64) string {
	switch {
	case c <= 0 || math.IsInf(c, 0) || math.IsNaN(c):
		return "n/a"
	case c >= 10:
		return strconv.FormatFloat(math.Round(c), 'f', 0, 64) + "x"
	case c >= 1:
		return strconv.FormatFloat(c, 'f', 1, 64) + "x"
	}
	return strconv.FormatFloat(c, 'f', 2, 64) + "x"
}

// roundSig rounds d to n significant digits: wall time is measured, and
// "1.423817362s" claims a precision the measurement does not have.
func roundSig(d time.Duration, n int) time.Duration {
	if d <= 0 {
		return d
	}
	digits := len(strconv.FormatInt(int64(d), 10))
	if digits <= n {
		return d
	}
	unit := time.Duration(math.Pow10(digits - n))
	return d.Round(unit)
}

// clock formats a virtual time for a column of times: fixed width up to 999
// hours, so that a terminal timeline lines up, e.g. "  3h10m05.000s".
func clock(t time.Duration) string {
	sign := ""
	if t < 0 {
		sign, t = "-", -t
	}
	ms := t.Milliseconds()
	h, ms := ms/3_600_000, ms%3_600_000
	m, ms := ms/60_000, ms%60_000
	return fmt.Sprintf("%3sh%02dm%02d.%03ds", sign+strconv.FormatInt(h, 10), m, ms/1000, ms%1000)
}

// stamp is clock without the padding, for places that are not a column.
func stamp(t time.Duration) string { return strings.TrimLeft(clock(t), " ") }

// span formats a duration for prose ("3h0m5.12s"), to the millisecond.
func span(d time.Duration) string { return d.Round(time.Millisecond).String() }

// clean makes untrusted text safe to print on one line: control characters
// (a terminal escape in a message, a newline splitting a timeline row) and
// invalid UTF-8 become visible replacements. Escaping for HTML is separate.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteByte(' ')
		case r == utf8.RuneError || unicode.IsControl(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shorten cuts s to n runes with an ellipsis, for labels of fixed width.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// plural is "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
