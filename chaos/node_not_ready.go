package chaos

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.NodeNotReady, func(p params) (Fault, error) {
		return validated(NodeNotReady{Node: p.string("node"), Status: corev1.ConditionStatus(p.string("status"))})
	})
}

// NodeNotReady sets the node's Ready condition to Status with the transition
// time from the clock: Unknown (the default) is what the node lifecycle
// controller writes when the kubelet stops posting, with the heartbeat left at
// the last one; False is the kubelet itself reporting not ready. It changes
// the condition only: the taints the node lifecycle controller would add
// (unreachable, not-ready) are that controller's business. Undo sets Ready
// True; if the node was deleted meanwhile there is nothing to undo.
type NodeNotReady struct {
	Node   string
	Status corev1.ConditionStatus
}

// Name implements Fault.
func (NodeNotReady) Name() string { return catalog.NodeNotReady }

func (f NodeNotReady) validate() error {
	if err := nodeParam(f, f.Node); err != nil {
		return err
	}
	switch f.Status {
	case "", corev1.ConditionUnknown, corev1.ConditionFalse:
		return nil
	}
	return invalid(f, "status must be Unknown or False, got %q", f.Status)
}

// Apply implements Fault.
func (f NodeNotReady) Apply(ctx context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	kube, err := t.kube(f.Name())
	if err != nil {
		return nil, err
	}
	clk := t.clock()
	status, reason, message := corev1.ConditionUnknown, reasonStatusUnknown, messageUnknown
	if f.Status == corev1.ConditionFalse {
		status, reason, message = corev1.ConditionFalse, reasonNotReady, messageNotReady
	}
	now := clk.Now()
	if err := updateNodeStatus(ctx, kube, f.Node, func(n *corev1.Node) {
		setReadyCondition(n, status, reason, message, now)
	}); err != nil {
		return nil, nodeErr(f, f.Node, err)
	}
	logApplied(f, "node", f.Node, "status", status)
	return undoOnce(f, func(ctx context.Context) error {
		now := clk.Now()
		err := updateNodeStatus(ctx, kube, f.Node, func(n *corev1.Node) {
			setReadyCondition(n, corev1.ConditionTrue, reasonReady, messageReady, now)
		})
		if apierrors.IsNotFound(err) {
			klog.InfoS("Node is gone; nothing to make Ready", "fault", f.Name(), "node", f.Node)
			return nil
		}
		if err != nil {
			return nodeErr(f, f.Node, err)
		}
		return nil
	}, "node", f.Node), nil
}
