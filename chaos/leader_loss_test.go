package chaos

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestLeaderLoss(t *testing.T) {
	d := &fakeDeployment{}
	if undo := apply(t, "leader.loss", nil, Targets{Controller: d}); undo != nil {
		t.Fatal("leader loss is an event: it has no undo")
	}
	if !slices.Equal(d.calls, []string{"lose"}) {
		t.Fatalf("calls: %v", d.calls)
	}
	f, _ := Lookup("leader.loss", nil)
	if _, err := f.Apply(context.Background(), Targets{Controller: &fakeDeployment{fail: errRefused}}); !errors.Is(err, errRefused) {
		t.Fatalf("no leader to lose must fail the fault: %v", err)
	}
}
