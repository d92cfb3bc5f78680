package sshd

import "testing"

func TestParseLogin(t *testing.T) {
	cases := map[string]Login{
		"admin":           {User: "admin"},
		"admin+ct512w":    {User: "admin", NoColors: true, NoAutodetect: true, Width: 512},
		"admin+c":         {User: "admin", NoColors: true},
		"admin+200w40h":   {User: "admin", Width: 200, Height: 40},
		"admin+0w":        {User: "admin"}, // zero width is ignored, not "no width"
		"admin+99999999w": {User: "admin"}, // absurd widths are ignored
		"admin+xyz":       {User: "admin"}, // unknown options are ignored
		"admin+1w":        {User: "admin", Width: MinWidth},
		"admin+5w":        {User: "admin", Width: MinWidth},
		"admin+65535w":    {User: "admin", Width: MaxWidth},
		"adm+in+t":        {User: "adm", NoAutodetect: true}, // only the first '+' splits: the options "in+t" hold a 't'
		"":                {User: ""},
	}
	for in, want := range cases {
		if got := ParseLogin(in); got != want {
			t.Errorf("ParseLogin(%q) = %+v, want %+v", in, got, want)
		}
	}
}
