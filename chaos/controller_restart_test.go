package chaos

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestControllerRestart(t *testing.T) {
	d := &fakeDeployment{}
	if undo := apply(t, "controller.restart", nil, Targets{Controller: d}); undo != nil {
		t.Fatal("a restart is an event: it has no undo")
	}
	if !slices.Equal(d.calls, []string{"restart"}) {
		t.Fatalf("calls: %v", d.calls)
	}
	f, _ := Lookup("controller.restart", nil)
	if _, err := f.Apply(context.Background(), Targets{}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("without a controller: %v", err)
	}
}
