package chaos

import (
	"context"
	"strings"

	"github.com/rds-csi/rds-csi/chaos/catalog"
	"github.com/rds-csi/rds-csi/emulator/faults"
)

// DefaultFailText is what rds.fail-next makes commands print when no text is
// given: the emulator's own default, "failure: injected fault". It is shaped
// like a RouterOS error, so the driver classifies it as a plain failure, and
// it says in every trace that it was injected. A specific text such as
// "failure: not enough space" is a different scenario (the driver reports a
// full pool, even for a health check) and should be asked for by name.
const DefaultFailText = faults.DefaultFailText

func init() {
	register(catalog.RDSFailNext, func(p params) (Fault, error) {
		n, err := p.count("count")
		if err != nil {
			return nil, err
		}
		return validated(RDSFailNext{Count: n, Text: p.string("text")})
	})
}

// RDSFailNext makes the next Count commands print Text, as RouterOS prints an
// error, instead of running. Text should look like a RouterOS error
// ("failure: not enough space", "bad command name x (line 1 column 2)");
// empty means DefaultFailText. Undo cancels failures not yet used.
type RDSFailNext struct {
	Count int
	Text  string
}

// Name implements Fault.
func (RDSFailNext) Name() string { return catalog.RDSFailNext }

func (f RDSFailNext) validate() error {
	if f.Count < 1 {
		return invalid(f, "count must be at least 1, got %d", f.Count)
	}
	if strings.ContainsAny(f.Text, "\r\n") {
		return invalid(f, "text must be one line, got %q", f.Text)
	}
	return nil
}

// Apply implements Fault.
func (f RDSFailNext) Apply(_ context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	text := f.Text
	if text == "" {
		text = DefaultFailText
	}
	emu.Faults().FailNext(f.Count, text)
	logApplied(f, "count", f.Count, "text", text)
	return undoOnce(f, func(context.Context) error {
		emu.Faults().FailNext(0, "")
		return nil
	}), nil
}
