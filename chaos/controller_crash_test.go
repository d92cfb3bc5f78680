package chaos

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestControllerCrash(t *testing.T) {
	d := &fakeDeployment{}
	undo := apply(t, "controller.crash", nil, Targets{Controller: d})
	if !slices.Equal(d.calls, []string{"crash"}) {
		t.Fatalf("calls after apply: %v", d.calls)
	}
	for i := 0; i < 2; i++ { // undo restarts once, however often it is called
		if err := undo(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(d.calls, []string{"crash", "restart"}) {
		t.Fatalf("calls after undo: %v", d.calls)
	}
	f, _ := Lookup("controller.crash", nil)
	if _, err := f.Apply(context.Background(), Targets{}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("without a controller: %v", err)
	}
	if _, err := f.Apply(context.Background(), Targets{Controller: &fakeDeployment{fail: errRefused}}); !errors.Is(err, errRefused) {
		t.Fatalf("a refused crash must fail the fault: %v", err)
	}
}
