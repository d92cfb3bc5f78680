package kubeaccess

import "slices"

// Rule is one API access: the verbs used on a resource of an API group.
type Rule struct {
	// Group is the API group; "" is the core group.
	Group string
	// Resource is the plural resource name, with "/subresource" if any.
	Resource string
	// Verbs are the verbs used, sorted.
	Verbs []string
	// Namespaced rules are needed only in the driver's own namespace, so
	// they belong in a Role; the others need a ClusterRole.
	Namespaced bool
	// Why names the code that needs it.
	Why string
}

// Controller is what the controller (--mode=controller or all, in a cluster)
// uses.
var Controller = []Rule{
	{Group: "", Resource: "nodes", Verbs: []string{"get", "list", "watch"},
		Why: "reconciler: Node informer (gone, tainted, NotReady nodes); one GET confirms a deletion before a grace period starts"},
	{Group: "storage.k8s.io", Resource: "volumeattachments", Verbs: []string{"get", "list", "patch", "watch"},
		Why: "reconciler: VolumeAttachment informer rebuilds the attachment state; GETs confirm drift before a claim is restored or dropped; recovery: a patch of one annotation re-queues a failed attach with the external-attacher"},
	{Group: "", Resource: "persistentvolumes", Verbs: []string{"list", "watch"},
		Why: "reconciler: PersistentVolume informer maps volume handles to PVCs (events) and access modes"},
	{Group: "", Resource: "events", Verbs: []string{"create", "patch"},
		Why: "reconciler: events on PVCs and on the controller Pod; the recorder patches repeated events"},
	{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"create", "get", "update"}, Namespaced: true,
		Why: "leader: client-go Lease lock (one active controller)"},
}

// Node is what the node plugin uses: nothing. Its ServiceAccount needs no
// token.
var Node = []Rule{}

// Allows reports whether rules grant verb on group/resource (cluster-wide or,
// when namespaced is true, in the driver's namespace).
func Allows(rules []Rule, group, resource, verb string, namespaced bool) bool {
	for _, r := range rules {
		if r.Group == group && r.Resource == resource && (namespaced || !r.Namespaced) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}
