package chaos

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.NodeDelete, func(p params) (Fault, error) {
		return validated(NodeDelete{Node: p.string("node")})
	})
}

// NodeDelete deletes the Node object, as an operator removes a dead node.
// Undo re-creates it as its kubelet re-registering would: same name, labels,
// annotations and spec, without the taints that belonged to the outage
// (out-of-service, unreachable, not-ready), Ready with the transition time
// from the clock. A node that exists again by then is an error, not
// overwritten.
type NodeDelete struct {
	Node string
}

// Name implements Fault.
func (NodeDelete) Name() string { return catalog.NodeDelete }

func (f NodeDelete) validate() error { return nodeParam(f, f.Node) }

// outageTaints are the taints a node loses when it registers afresh.
var outageTaints = []string{
	corev1.TaintNodeOutOfService, corev1.TaintNodeUnreachable, corev1.TaintNodeNotReady,
}

// Apply implements Fault.
func (f NodeDelete) Apply(ctx context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	kube, err := t.kube(f.Name())
	if err != nil {
		return nil, err
	}
	nodes := kube.CoreV1().Nodes()
	saved, err := nodes.Get(ctx, f.Node, metav1.GetOptions{})
	if err != nil {
		return nil, nodeErr(f, f.Node, err)
	}
	if err := nodes.Delete(ctx, f.Node, metav1.DeleteOptions{}); err != nil {
		return nil, nodeErr(f, f.Node, err)
	}
	logApplied(f, "node", f.Node)
	clk := t.clock()
	return undoOnce(f, func(ctx context.Context) error {
		now := clk.Now()
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:              saved.Name,
				Labels:            saved.Labels,
				Annotations:       saved.Annotations,
				CreationTimestamp: metav1.NewTime(now),
			},
			Spec: *saved.Spec.DeepCopy(),
		}
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return slices.Contains(outageTaints, t.Key)
		})
		created, err := nodes.Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			return nodeErr(f, f.Node, err)
		}
		// The API server ignores status on create; the kubelet posts it after.
		created.Status = *saved.Status.DeepCopy()
		setReadyCondition(created, corev1.ConditionTrue, reasonReady, messageReady, now)
		if _, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return nodeErr(f, f.Node, err)
		}
		return nil
	}, "node", f.Node), nil
}
