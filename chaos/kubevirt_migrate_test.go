package chaos

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestKubeVirtMigrate(t *testing.T) {
	d := &fakeDeployment{}
	apply(t, "kubevirt.migrate", map[string]string{"vm": "vm-1", "to": "node-b"}, Targets{KubeVirt: d})
	apply(t, "kubevirt.migrate", map[string]string{"vm": "vm-2", "to": "node-c", "order": "detach-first", "delay": "5s"},
		Targets{KubeVirt: d})
	want := []string{"migrate vm-1 node-b attach-first 0s", "migrate vm-2 node-c detach-first 5s"}
	if !slices.Equal(d.calls, want) {
		t.Fatalf("calls: %v, want %v", d.calls, want)
	}
	for _, bad := range []map[string]string{
		{"vm": "vm-1"}, // no target
		{"vm": "vm-1", "to": "n", "order": "sideways"}, // unknown order
		{"vm": "vm-1", "to": "n", "delay": "-1s"},      // negative delay
		{"vm": "vm-1", "to": "n", "delay": "soon"},     // not a duration
		{"vm": "vm-1", "to": "n", "speed": "fast"},     // unknown parameter
	} {
		if _, err := Lookup("kubevirt.migrate", bad); !errors.Is(err, ErrBadParam) {
			t.Errorf("Lookup(%v) = %v, want ErrBadParam", bad, err)
		}
	}
	f, _ := Lookup("kubevirt.migrate", map[string]string{"vm": "v", "to": "n"})
	if _, err := f.Apply(context.Background(), Targets{}); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("without KubeVirt: %v", err)
	}
}
