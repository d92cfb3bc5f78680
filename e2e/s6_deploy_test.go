//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kindOverlay is the kustomize overlay kind users apply.
const kindOverlay = "deploy/kubernetes/overlays/kind"

// Scenario 6: every manifest of the kind overlay, rendered by kubectl's
// kustomize, is applied with server-side dry-run against this API server:
// admission, defaulting and strict schema validation run for real, which a
// YAML decoder cannot do. Kinds this API server does not serve (the
// Prometheus operator's ServiceMonitor and PrometheusRule) are skipped and
// named; the external-snapshotter CRDs are installed, so VolumeSnapshotClass
// is checked. Then the overlay's RBAC is applied for real and the
// controller's ServiceAccount is asked, through SubjectAccessReviews, for
// every permission the driver and its sidecars use.
func TestDeployManifestsServerDryRun(t *testing.T) {
	e := newTestEnv(t, "deploy")
	if e.c.bins.kubectl == "" {
		t.Fatal("E2E_KUBECTL is not set: hack/e2e/tools.sh builds kubectl")
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(file))
	overlay := filepath.Join(repo, kindOverlay)
	if _, err := os.Stat(filepath.Join(overlay, "kustomization.yaml")); err != nil {
		t.Fatalf("the kind overlay %s is missing (%v): scenario 6 dry-runs its manifests against the API server; "+
			"it is written under deploy/ (issue: manifests, Helm chart)", kindOverlay, err)
	}
	kubectl := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command(e.c.bins.kubectl, append([]string{"--kubeconfig=" + e.c.adminKubeconfig}, args...)...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return out, nil
	}
	rendered, err := kubectl(nil, "kustomize", overlay)
	if err != nil {
		t.Fatal(err)
	}

	// Sort the objects: what this API server serves, and what it cannot.
	objs, err := decodeAll(rendered)
	if err != nil {
		t.Fatalf("rendered overlay: %v", err)
	}
	served, err := e.servedKinds()
	if err != nil {
		t.Fatal(err)
	}
	var keep []*unstructured.Unstructured
	var skipped []string
	namespaces := map[string]bool{}
	kinds := map[string]int{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if !served[gvk.GroupVersion().String()+"/"+gvk.Kind] {
			skipped = append(skipped, fmt.Sprintf("%s %s (%s not served)", gvk.Kind, o.GetName(), gvk.GroupVersion()))
			continue
		}
		keep = append(keep, o)
		kinds[gvk.Kind]++
		if gvk.Kind == "Namespace" && gvk.Group == "" {
			namespaces[o.GetName()] = true
		} else if ns := o.GetNamespace(); ns != "" {
			namespaces[ns] = true
		}
	}
	if len(keep) == 0 {
		t.Fatal("the kind overlay renders no object this API server serves")
	}
	t.Logf("scenario6: %d objects rendered: %v", len(objs), kinds)
	if len(skipped) > 0 {
		t.Logf("scenario6: skipped (kinds this API server does not serve): %s", strings.Join(skipped, "; "))
	}
	// A dry-run never creates the namespace the other objects go into.
	for ns := range namespaces {
		if _, err := e.c.admin.CoreV1().Namespaces().Create(e.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	var docs bytes.Buffer
	for _, o := range keep {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs.WriteString("---\n")
		docs.Write(b)
	}
	start := time.Now()
	out, err := kubectl(docs.Bytes(), "apply", "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatalf("server-side dry-run of the kind overlay failed:\n%v", err)
	}
	t.Logf("scenario6: server-side dry-run of %d objects passed in %.1fs:\n%s", len(keep), time.Since(start).Seconds(), strings.TrimSpace(string(out)))
	// The same once more with server-side apply, which validates field
	// ownership and the apply configuration's schema.
	if _, err := kubectl(docs.Bytes(), "apply", "--server-side", "--field-manager=rds-csi-e2e", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("server-side apply dry-run of the kind overlay failed:\n%v", err)
	}

	// RBAC for real: apply ServiceAccounts, roles and bindings, then ask.
	var rbac bytes.Buffer
	for _, o := range keep {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			b, _ := yaml.Marshal(o.Object)
			rbac.WriteString("---\n")
			rbac.Write(b)
		}
	}
	sa, saNS, containers := controllerDeployment(keep)
	if sa == "" {
		t.Fatal("no controller Deployment (rds-csi --mode=controller) with a serviceAccountName in the kind overlay")
	}
	if _, err := kubectl(rbac.Bytes(), "apply", "--server-side", "--field-manager=rds-csi-e2e", "-f", "-"); err != nil {
		t.Fatalf("apply RBAC: %v", err)
	}
	user := "system:serviceaccount:" + saNS + ":" + sa
	var missing []string
	perms := controllerPermissions(containers)
	for _, p := range perms {
		ok, err := e.can(user, saNS, p)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		t.Errorf("the controller's ServiceAccount %s lacks permissions the driver and its sidecars use:\n  %s", user, strings.Join(missing, "\n  "))
	} else {
		t.Logf("scenario6: %s holds all %d permissions the driver and sidecars use", user, len(perms))
	}
}

// decodeAll splits a multi-document YAML stream into objects (lists expanded).
func decodeAll(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, err
			}
			for i := range l.Items {
				out = append(out, &l.Items[i])
			}
			continue
		}
		out = append(out, u)
	}
}

// servedKinds is the set of "group/version/Kind" the API server serves.
func (c *cluster) servedKinds() (map[string]bool, error) {
	_, lists, err := c.admin.Discovery().ServerGroupsAndResources()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			out[l.GroupVersion+"/"+r.Kind] = true
		}
	}
	return out, nil
}

func (e *testEnv) servedKinds() (map[string]bool, error) { return e.c.servedKinds() }

// controllerDeployment finds the controller Deployment (or StatefulSet) by its
// rds-csi --mode=controller container and returns its ServiceAccount and the
// args of each container by name.
func controllerDeployment(objs []*unstructured.Unstructured) (sa, ns string, containers map[string]string) {
	for _, o := range objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		ctrs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		found := false
		containers = map[string]string{}
		for _, c := range ctrs {
			m, _ := c.(map[string]any)
			args := fmt.Sprint(m["args"], m["command"])
			img, _ := m["image"].(string)
			containers[fmt.Sprint(m["name"])] = img + " " + args
			if strings.Contains(args, "--mode=controller") || strings.Contains(args, "--mode controller") {
				found = true
			}
		}
		if found {
			sa, _, _ = unstructured.NestedString(o.Object, "spec", "template", "spec", "serviceAccountName")
			if sa == "" {
				sa = "default"
			}
			return sa, o.GetNamespace(), containers
		}
	}
	return "", "", nil
}

// permission is one verb on one resource, cluster-wide or in the controller's
// namespace.
type permission struct {
	verb, group, resource, subresource string
	namespaced                         bool
}

func (p permission) String() string {
	r := p.resource
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	if p.group != "" {
		r += "." + p.group
	}
	if p.namespaced {
		r += " (in its namespace)"
	}
	return p.verb + " " + r
}

// controllerPermissions is what rds-csi --mode=controller (reconciler, leader
// election, events) and each sidecar present in the controller Pod call, as
// their code and upstream RBAC examples list it.
func controllerPermissions(containers map[string]string) []permission {
	var ps []permission
	add := func(group, resource, sub string, namespaced bool, verbs ...string) {
		for _, v := range verbs {
			ps = append(ps, permission{verb: v, group: group, resource: resource, subresource: sub, namespaced: namespaced})
		}
	}
	has := func(image string) (string, bool) {
		for _, c := range containers {
			if strings.Contains(c, image) {
				return c, true
			}
		}
		return "", false
	}
	// rds-csi controller: informers, events on PVCs and its Pod, its Lease.
	add("storage.k8s.io", "volumeattachments", "", false, "get", "list", "watch")
	add("", "nodes", "", false, "get", "list", "watch")
	add("", "persistentvolumes", "", false, "get", "list", "watch")
	add("", "events", "", false, "create", "patch")
	add("coordination.k8s.io", "leases", "", true, "get", "create", "update")
	if _, ok := has("csi-provisioner"); ok {
		add("", "persistentvolumes", "", false, "create", "delete")
		add("", "persistentvolumeclaims", "", false, "get", "list", "watch", "update")
		add("storage.k8s.io", "storageclasses", "", false, "get", "list", "watch")
		add("storage.k8s.io", "csinodes", "", false, "get", "list", "watch")
		add("snapshot.storage.k8s.io", "volumesnapshots", "", false, "get", "list")
		add("snapshot.storage.k8s.io", "volumesnapshotcontents", "", false, "get", "list")
	}
	if _, ok := has("csi-attacher"); ok {
		add("", "persistentvolumes", "", false, "update", "patch")
		add("storage.k8s.io", "volumeattachments", "", false, "patch")
		add("storage.k8s.io", "volumeattachments", "status", false, "patch")
		add("storage.k8s.io", "csinodes", "", false, "get", "list", "watch")
	}
	if c, ok := has("csi-resizer"); ok {
		add("", "persistentvolumes", "", false, "patch")
		add("", "persistentvolumeclaims", "", false, "get", "list", "watch")
		add("", "persistentvolumeclaims", "status", false, "patch")
		if !strings.Contains(c, "--handle-volume-inuse-error=false") {
			add("", "pods", "", false, "list", "watch")
		}
	}
	if _, ok := has("csi-snapshotter"); ok {
		add("snapshot.storage.k8s.io", "volumesnapshotclasses", "", false, "get", "list", "watch")
		add("snapshot.storage.k8s.io", "volumesnapshotcontents", "", false, "get", "list", "watch", "update", "patch")
		add("snapshot.storage.k8s.io", "volumesnapshotcontents", "status", false, "update", "patch")
	}
	return ps
}

// can asks the API server whether user may do p (a SubjectAccessReview, the
// authorizer's own answer).
func (e *testEnv) can(user, ns string, p permission) (bool, error) {
	args := []string{"auth", "can-i", p.verb, p.resource}
	if p.group != "" {
		args[3] = p.resource + "." + p.group
	}
	if p.subresource != "" {
		args = append(args, "--subresource="+p.subresource)
	}
	if p.namespaced {
		args = append(args, "-n", ns)
	} else {
		args = append(args, "--all-namespaces")
	}
	args = append(args, "--as="+user, "--as-group=system:serviceaccounts", "--as-group=system:serviceaccounts:"+ns, "--as-group=system:authenticated")
	cmd := exec.CommandContext(context.Background(), e.c.bins.kubectl, append([]string{"--kubeconfig=" + e.c.adminKubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	ans := strings.TrimSpace(string(out))
	switch {
	case strings.HasPrefix(ans, "yes"):
		return true, nil
	case strings.HasPrefix(ans, "no"):
		return false, nil
	}
	return false, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, ans)
}
