package trace

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is one line of the trace. T is virtual time since the World's start.
// Fields holds the event's details, keyed by the Field names of its kind.
type Event struct {
	T      time.Duration  `json:"t"`
	Kind   Kind           `json:"kind"`
	Fields map[string]any `json:"f,omitempty"`
}

// Text is the field k as text: strings as they are, numbers and booleans
// formatted, anything else (absent, null) empty.
func (e Event) Text(k string) string {
	switch v := e.Fields[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	default:
		if f, ok := e.Num(k); ok {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return fmt.Sprint(v)
	}
}

// Num is the numeric field k. Events built in process carry Go integers,
// parsed ones json.Number; both are accepted.
func (e Event) Num(k string) (float64, bool) {
	switch v := e.Fields[k].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// Flag is the boolean field k; ok is false when it is absent or not a boolean.
func (e Event) Flag(k string) (v, ok bool) {
	switch b := e.Fields[k].(type) {
	case bool:
		return b, true
	case string:
		p, err := strconv.ParseBool(b)
		return p, err == nil
	}
	return false, false
}
