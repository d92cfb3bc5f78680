package console

import (
	"context"
	"errors"
	"strings"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/routeros"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// Config describes the box being emulated.
type Config struct {
	Identity string // /system identity name
	// Version is what /system resource prints, e.g. "7.16 (stable)". Versions
	// before 7.16 print /file times as creation-time=jan/02/2025 10:30:45 instead
	// of last-modified=2025-01-02 10:30:45, as real RouterOS did.
	Version string
	Clock   clock.Clock
}

// Console runs RouterOS scripts against a store. It is safe for concurrent use;
// per-connection state (width, the numbering of the last print) lives in Session.
type Console struct {
	store  *store.Store
	schema *routeros.Schema
	cfg    Config
	boot   int64 // clock time at start, for uptime
}

// New returns a console over st.
func New(st *store.Store, cfg Config) *Console {
	if cfg.Identity == "" {
		cfg.Identity = "rds"
	}
	if cfg.Version == "" {
		cfg.Version = "7.16 (stable)"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	return &Console{store: st, schema: routeros.DefaultSchema(), cfg: cfg, boot: cfg.Clock.Now().Unix()}
}

// Identity is the box's current /system identity name.
func (c *Console) Identity() string { return c.cfg.Identity }

// Session is one login's console state.
type Session struct {
	c     *Console
	User  string
	Width int
	// numbering maps the indices of the last print in this session to items, as
	// RouterOS does for `set 0` / `remove 0,1`.
	lastDisks []uint64
	lastFiles []string
	// menu is where the session's prompt is ({"disk"} after a bare "/disk"),
	// for an interactive shell; exec sessions run one script each.
	menu []string
}

// Menu is the prompt's menu path, RouterOS 7 style: "" at the root, "/disk"
// inside /disk, "/system/identity" further down.
func (s *Session) Menu() string {
	if len(s.menu) == 0 {
		return ""
	}
	return "/" + strings.Join(s.menu, "/")
}

// NewSession starts a console session for user at the given terminal width.
func (c *Console) NewSession(user string, width int) *Session {
	if width <= 0 {
		width = DefaultWidth
	}
	return &Session{c: c, User: user, Width: width}
}

// Result is the outcome of one script.
type Result struct {
	Output string
	// Failed reports that a command printed an error. RouterOS prints errors as
	// ordinary output; the SSH layer decides what exit status that becomes.
	Failed bool
	// Verb is the verb of the first command ("add", "print", ...), or "invalid"
	// when the script did not parse; it labels metrics.
	Verb string
}

// Run parses and executes a script. Commands run in order and execution stops at
// the first error, as a RouterOS script does.
func (s *Session) Run(ctx context.Context, script string) Result {
	cmds, menu, err := routeros.ParseIn(script, s.c.schema, s.menu)
	if err != nil {
		return Result{Output: err.Error() + "\n", Failed: true, Verb: "invalid"}
	}
	s.menu = menu
	var b strings.Builder
	res := Result{Verb: "none"}
	for i, cmd := range cmds {
		if i == 0 {
			res.Verb = cmd.Verb
		}
		if ctx.Err() != nil {
			res.Failed = true
			break
		}
		if err := s.exec(&b, cmd); err != nil {
			b.WriteString(errorText(err))
			b.WriteByte('\n')
			res.Failed = true
			break
		}
	}
	res.Output = b.String()
	if err := s.c.store.Err(); err != nil {
		// The state this reply was built from may not be durable: a
		// client must not act on it (a disk it lists could be gone after
		// a machine crash). Its changes, if any, are what a failed flush
		// leaves: unknown, which a failure reply says.
		return Result{Output: errorText(err) + "\n", Failed: true, Verb: res.Verb}
	}
	return res
}

func (s *Session) exec(b *strings.Builder, cmd routeros.Command) error {
	menu := strings.Join(cmd.Path, " ")
	switch menu {
	case "disk":
		return s.disk(b, cmd)
	case "file":
		return s.file(b, cmd)
	case "system identity":
		return s.identity(b, cmd)
	case "system resource":
		return s.resource(b, cmd)
	}
	// The parser's schema and this switch list the same menus; reaching here is a
	// schema entry without an implementation.
	return failure("bad command name " + cmd.Verb)
}

// consoleError is an error whose text is printed verbatim, as RouterOS does.
type consoleError struct{ text string }

func (e *consoleError) Error() string { return e.text }

func failure(text string) error {
	if !strings.HasPrefix(text, "failure: ") && !strings.HasPrefix(text, "invalid value") &&
		!strings.HasPrefix(text, "bad command") {
		text = "failure: " + text
	}
	return &consoleError{text: text}
}

func invalidValue(arg string) error {
	return &consoleError{text: "invalid value for argument " + arg}
}

// errorText turns any error into the single line RouterOS would print. Store errors
// already carry RouterOS texts.
func errorText(err error) string {
	var ce *consoleError
	if errors.As(err, &ce) {
		return ce.text
	}
	text := err.Error()
	if strings.HasPrefix(text, "failure: ") {
		return text
	}
	return "failure: " + text
}
