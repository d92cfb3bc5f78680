package chaos

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// OutOfServiceValue is the value of the out-of-service taint, as in the
// Kubernetes documentation's example (node.kubernetes.io/out-of-service=nodeshutdown:NoExecute).
const OutOfServiceValue = "nodeshutdown"

func init() {
	register(catalog.NodeOutOfService, func(p params) (Fault, error) {
		return validated(NodeOutOfService{Node: p.string("node")})
	})
}

// NodeOutOfService adds the node.kubernetes.io/out-of-service taint (value
// OutOfServiceValue, effect NoExecute, TimeAdded from the clock), the
// operator's statement that the node is shut down and its volumes may be
// detached. A node that already carries the taint is an error. Undo removes
// the taint; if the node was deleted meanwhile there is nothing to undo.
type NodeOutOfService struct {
	Node string
}

// Name implements Fault.
func (NodeOutOfService) Name() string { return catalog.NodeOutOfService }

func (f NodeOutOfService) validate() error { return nodeParam(f, f.Node) }

func isOutOfService(t corev1.Taint) bool { return t.Key == corev1.TaintNodeOutOfService }

// Apply implements Fault.
func (f NodeOutOfService) Apply(ctx context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	kube, err := t.kube(f.Name())
	if err != nil {
		return nil, err
	}
	now := metav1.NewTime(t.clock().Now())
	err = updateNode(ctx, kube, f.Node, func(n *corev1.Node) error {
		if slices.ContainsFunc(n.Spec.Taints, isOutOfService) {
			return fmt.Errorf("%w: already tainted %s", ErrActive, corev1.TaintNodeOutOfService)
		}
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{
			Key: corev1.TaintNodeOutOfService, Value: OutOfServiceValue,
			Effect: corev1.TaintEffectNoExecute, TimeAdded: &now,
		})
		return nil
	})
	if err != nil {
		return nil, nodeErr(f, f.Node, err)
	}
	logApplied(f, "node", f.Node)
	return undoOnce(f, func(ctx context.Context) error {
		err := updateNode(ctx, kube, f.Node, func(n *corev1.Node) error {
			n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, isOutOfService)
			return nil
		})
		if apierrors.IsNotFound(err) {
			klog.InfoS("Node is gone; no taint to remove", "fault", f.Name(), "node", f.Node)
			return nil
		}
		if err != nil {
			return nodeErr(f, f.Node, err)
		}
		return nil
	}, "node", f.Node), nil
}
