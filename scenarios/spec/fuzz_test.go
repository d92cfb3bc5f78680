package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts round-trips through String
// with the same fingerprint; what it rejects comes as Errors with messages.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			var list Errors
			if s != nil || !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse = %v, %T %v", s, err, err)
			}
			for _, e := range list {
				if e.Msg == "" || e.Line < 0 {
					t.Fatalf("problem without message or with a negative line: %+v", e)
				}
			}
			return
		}
		end := s.Duration()
		for i, st := range s.Timeline {
			if st.At > end || (i > 0 && st.At < s.Timeline[i-1].At) {
				t.Fatalf("step %d at %v: out of order or past Duration %v", i, st.At, end)
			}
		}
		checkRoundTrip(t, s)
	})
}
