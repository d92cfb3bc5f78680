package sshd

import (
	"strconv"
	"strings"
)

// Login is a RouterOS login name split into the user and its console options.
// RouterOS lets a client append options after a '+': "admin+ct512w" is user
// "admin" with colours off (c), terminal auto-detection off (t) and a width of 512
// columns. Scripted clients use this to get output that does not wrap.
type Login struct {
	User         string
	NoColors     bool
	NoAutodetect bool
	Width        int // 0 when not given
	Height       int
}

// ParseLogin splits a login name. Unknown option letters are ignored, as RouterOS
// does, so a client written for a newer version still logs in.
func ParseLogin(name string) Login {
	user, opts, found := strings.Cut(name, "+")
	l := Login{User: user}
	if !found {
		return l
	}
	num := ""
	for _, r := range opts {
		switch {
		case r >= '0' && r <= '9':
			num += string(r)
			continue
		case r == 'w' || r == 'h':
			n, err := strconv.Atoi(num)
			if err == nil && n > 0 && n <= 65535 {
				if r == 'w' {
					l.Width = ClampWidth(n)
				} else {
					l.Height = n
				}
			}
		case r == 'c':
			l.NoColors = true
		case r == 't':
			l.NoAutodetect = true
		}
		num = ""
	}
	return l
}

// Terminal widths the console prints at. A width narrower than an entry's
// indentation would leave no room for text (and once made the printer loop
// forever); such requests, from the login name or the PTY, are raised to
// MinWidth. Real RouterOS's own floor is not documented.
const (
	MinWidth = 40
	MaxWidth = 4096
)

// ClampWidth brings a requested width into [MinWidth, MaxWidth].
func ClampWidth(w int) int {
	return min(max(w, MinWidth), MaxWidth)
}
