package chaos

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeNotReady(t *testing.T) {
	for _, tc := range []struct {
		status        string
		want          corev1.ConditionStatus
		reason        string
		heartbeatMove bool // the kubelet still posts when it reports False
	}{
		{"", corev1.ConditionUnknown, reasonStatusUnknown, false},
		{"False", corev1.ConditionFalse, reasonNotReady, true},
	} {
		t.Run(string(tc.want), func(t *testing.T) {
			tg, clk := nodeTargets(readyNode("node-a"), readyNode("node-b"))
			params := map[string]string{"node": "node-a"}
			if tc.status != "" {
				params["status"] = tc.status
			}
			undo := apply(t, "node.not-ready", params, tg)

			c := readyCondition(t, getNode(t, tg, "node-a"))
			if c.Status != tc.want || c.Reason != tc.reason {
				t.Fatalf("Ready %s (%s), want %s (%s)", c.Status, c.Reason, tc.want, tc.reason)
			}
			if !c.LastTransitionTime.Time.Equal(start) {
				t.Fatalf("transition at %s, want the clock's %s", c.LastTransitionTime, start)
			}
			if moved := !c.LastHeartbeatTime.Equal(&longAgo); moved != tc.heartbeatMove {
				t.Fatalf("heartbeat %s; moved=%v, want %v", c.LastHeartbeatTime, moved, tc.heartbeatMove)
			}
			if c := readyCondition(t, getNode(t, tg, "node-b")); c.Status != corev1.ConditionTrue {
				t.Fatal("another node went NotReady")
			}

			clk.Add(10 * time.Minute)
			if err := undo(context.Background()); err != nil {
				t.Fatal(err)
			}
			c = readyCondition(t, getNode(t, tg, "node-a"))
			if c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(start.Add(10*time.Minute)) {
				t.Fatalf("after undo: Ready %s since %s, want True since %s", c.Status, c.LastTransitionTime, start.Add(10*time.Minute))
			}
		})
	}
}

func TestNodeNotReadyMissingNode(t *testing.T) {
	tg, _ := nodeTargets()
	f, _ := Lookup("node.not-ready", map[string]string{"node": "ghost"})
	if _, err := f.Apply(context.Background(), tg); !apierrors.IsNotFound(err) {
		t.Fatalf("not-ready on a missing node: %v, want NotFound", err)
	}
}

func TestNodeNotReadyUndoAfterDelete(t *testing.T) {
	tg, _ := nodeTargets(readyNode("node-a"))
	undo := apply(t, "node.not-ready", map[string]string{"node": "node-a"}, tg)
	if err := tg.Kube.CoreV1().Nodes().Delete(context.Background(), "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := undo(context.Background()); err != nil {
		t.Fatalf("undo on a deleted node: %v", err)
	}
}
