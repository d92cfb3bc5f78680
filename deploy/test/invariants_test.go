package deploytest

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"

	"sigs.k8s.io/yaml"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/kubeaccess"
)

// render is one way of installing rds-csi, rendered.
type render struct {
	name string
	objs []object
	// external are Secrets and ConfigMaps the pods mount that this
	// rendering does not contain because a person or a script creates
	// them (the SSH keys: never in a manifest).
	external []string
}

var (
	rendersOnce sync.Once
	rendersAll  []render
)

func knownHostsFile(t testing.TB) string {
	return string(readFile(t, kustomizeDir+"/overlays/hardware/known_hosts"))
}

// kindExternal is what deploy/kind/kind-up.sh creates before applying the
// kind overlay (TestKindScriptsCreateExternalObjects holds it to that).
var kindExternal = []string{"Secret/rds-csi-ssh-key", "Secret/rds-emulator-host-key",
	"ConfigMap/rds-emulator-authorized-keys", "ConfigMap/rds-csi-known-hosts"}

var monitoringKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: rds-csi
resources:
  - ../overlays/kind
components:
  - ../components/monitoring
`

func renders(t *testing.T) []render {
	t.Helper()
	rendersOnce.Do(func() {
		hw := map[string]any{"rds": map[string]any{"sshPrivateKey": dummyKey, "knownHosts": knownHostsFile(t)}}
		mon := map[string]any{"monitoring": map[string]any{"prometheusRule": true, "dashboard": true}}
		rendersAll = []render{
			{name: "kustomize overlays/kind", objs: kustomize(t, "overlays/kind", nil), external: kindExternal},
			{name: "kustomize overlays/hardware", objs: kustomize(t, "overlays/hardware", map[string]string{"overlays/hardware/secrets/id_ed25519": dummyKey})},
			{name: "kustomize overlays/kind + components/monitoring", objs: kustomize(t, "test-monitoring",
				map[string]string{"test-monitoring/kustomization.yaml": monitoringKustomization}), external: kindExternal},
			{name: "helm ci/kind-values.yaml", objs: mustHelm(t, nil, "ci/kind-values.yaml"), external: kindExternal},
			{name: "helm ci/hardware-values.yaml", objs: mustHelm(t, hw, "ci/hardware-values.yaml")},
			{name: "helm ci/kind-values.yaml + monitoring", objs: mustHelm(t, mon, "ci/kind-values.yaml"), external: kindExternal},
			{name: "helm default values", objs: mustHelm(t, nil), external: []string{"Secret/rds-csi-ssh-key", "ConfigMap/rds-csi-known-hosts"}},
		}
	})
	if rendersAll == nil {
		t.Fatal("rendering failed in an earlier test")
	}
	return rendersAll
}

// renderNamed is the rendering called name: tests that need a particular
// installation name it, so reordering or adding renders cannot swap it.
func renderNamed(t *testing.T, name string) render {
	t.Helper()
	for _, r := range renders(t) {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no rendering named %q", name)
	return render{}
}

// typed decodes every object strictly and returns them by kind/name.
func typed(t *testing.T, r render) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, o := range r.objs {
		v, err := decodeStrict(o)
		if err != nil {
			t.Errorf("%s: strict decode: %v", r.name, err)
			continue
		}
		out[o.Kind+"/"+o.Name] = v
	}
	return out
}

func get[T any](t *testing.T, r render, objs map[string]any, key string) T {
	t.Helper()
	v, ok := objs[key].(T)
	if !ok {
		var zero T
		t.Fatalf("%s: no %s (%T)", r.name, key, objs[key])
		return zero
	}
	return v
}

func TestStrictDecodeEveryObject(t *testing.T) {
	for _, r := range renders(t) {
		if len(typed(t, r)) != len(r.objs) {
			t.Errorf("%s: not every object decoded", r.name)
		}
		seen := map[string]bool{}
		for _, o := range r.objs {
			if seen[o.key()] {
				t.Errorf("%s: %s twice", r.name, o.key())
			}
			seen[o.key()] = true
		}
	}
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	// The decoder has teeth: a misspelt field in a built-in and in a CRD
	// kind is an error.
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n",
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n    - name: a\n      image: b:1\n      resource: {}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: x\nspec:\n  groups:\n    - name: g\n      rules:\n        - alert: A\n          expresion: up\n",
		"apiVersion: example.com/v1\nkind: Unknown\nmetadata:\n  name: x\n",
	} {
		objs := splitYAML(t, "case", []byte(doc))
		if _, err := decodeStrict(objs[0]); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

// allContainers returns every container of a pod template, init included.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

func podSpecs(objs map[string]any) map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for k, v := range objs {
		switch o := v.(type) {
		case *appsv1.Deployment:
			out[k] = &o.Spec.Template.Spec
		case *appsv1.DaemonSet:
			out[k] = &o.Spec.Template.Spec
		case *appsv1.StatefulSet:
			out[k] = &o.Spec.Template.Spec
		case *corev1.Pod:
			out[k] = &o.Spec
		}
	}
	return out
}

func TestResourcesAndPinnedImages(t *testing.T) {
	for _, r := range renders(t) {
		for k, spec := range podSpecs(typed(t, r)) {
			for _, c := range allContainers(spec) {
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
						t.Errorf("%s: %s container %s: no %s request", r.name, k, c.Name, res)
					}
					if q, ok := c.Resources.Limits[res]; !ok || q.IsZero() {
						t.Errorf("%s: %s container %s: no %s limit", r.name, k, c.Name, res)
					}
				}
				if err := pinned(c.Image); err != nil {
					t.Errorf("%s: %s container %s: %v", r.name, k, c.Name, err)
				}
			}
		}
	}
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// pinned accepts repo:tag (not latest) or repo@sha256:digest.
func pinned(image string) error {
	if i := strings.Index(image, "@sha256:"); i > 0 {
		if len(image)-i-len("@sha256:") != 64 {
			return fmt.Errorf("image %q: bad digest", image)
		}
		return nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return fmt.Errorf("image %q has no tag", image)
	}
	tag := image[colon+1:]
	if tag == "latest" || !tagRE.MatchString(tag) {
		return fmt.Errorf("image %q: tag %q is not a pinned version", image, tag)
	}
	return nil
}

func TestPinnedRejects(t *testing.T) {
	for _, img := range []string{"busybox", "busybox:latest", "localhost:5000/x", "x@sha256:abc"} {
		if pinned(img) == nil {
			t.Errorf("pinned(%q) accepted", img)
		}
	}
	for _, img := range []string{"registry.k8s.io/sig-storage/csi-attacher:v4.13.0", "localhost:5000/x:v1", "x@sha256:" + strings.Repeat("a", 64)} {
		if err := pinned(img); err != nil {
			t.Error(err)
		}
	}
}

func argValue(c corev1.Container, flag string) (string, bool) {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func container(t *testing.T, where string, spec *corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s: no container %s", where, name)
	return corev1.Container{}
}

func mountOf(c corev1.Container, mountPath string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == mountPath {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volumeOf(spec *corev1.PodSpec, name string) (corev1.Volume, bool) {
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

// socketPath turns unix:///csi/csi.sock or /csi/csi.sock into the path.
func socketPath(t *testing.T, addr string) string {
	t.Helper()
	if strings.HasPrefix(addr, "unix://") {
		u, err := url.Parse(addr)
		if err != nil {
			t.Fatal(err)
		}
		return u.Path
	}
	return addr
}

// hostPathOf resolves a path inside container c to the host path behind it,
// or "" if the path is not on a hostPath volume.
func hostPathOf(spec *corev1.PodSpec, c corev1.Container, p string) string {
	best := ""
	var bestMount corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best) {
			best, bestMount = m.MountPath, m
		}
	}
	if best == "" {
		return ""
	}
	v, ok := volumeOf(spec, bestMount.Name)
	if !ok || v.HostPath == nil {
		return ""
	}
	return path.Join(v.HostPath.Path, strings.TrimPrefix(p, best))
}

func TestNodePluginSocketsAndMounts(t *testing.T) {
	for _, r := range renders(t) {
		objs := typed(t, r)
		csiDriver := get[*storagev1.CSIDriver](t, r, objs, "CSIDriver/"+driver.DefaultName)
		if !*csiDriver.Spec.AttachRequired {
			t.Errorf("%s: attachRequired must be true (publish enforces the attachment rules)", r.name)
		}
		if csiDriver.Spec.StorageCapacity != nil && *csiDriver.Spec.StorageCapacity {
			t.Errorf("%s: storageCapacity true, but no CSIStorageCapacity objects are published", r.name)
		}
		if csiDriver.Spec.SELinuxMount == nil || !*csiDriver.Spec.SELinuxMount {
			t.Errorf("%s: seLinuxMount must be true: every volume is its own filesystem, mountable with -o context", r.name)
		}
		if p := csiDriver.Spec.FSGroupPolicy; p == nil || *p != storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy {
			t.Errorf("%s: fsGroupPolicy %v, want ReadWriteOnceWithFSType (the kubelet applies fsGroup; the driver never chowns)", r.name, p)
		}
		ds := get[*appsv1.DaemonSet](t, r, objs, "DaemonSet/rds-csi-node")
		spec := &ds.Spec.Template.Spec
		where := r.name + " DaemonSet/rds-csi-node"
		plugin := container(t, where, spec, "rds-csi")
		registrar := container(t, where, spec, "node-driver-registrar")
		probe := container(t, where, spec, "liveness-probe")

		endpoint, ok := argValue(plugin, "endpoint")
		if !ok {
			endpoint = "unix:///csi/csi.sock" // the binary's default
		}
		sock := socketPath(t, endpoint)
		hostSock := hostPathOf(spec, plugin, sock)
		if hostSock == "" {
			t.Fatalf("%s: the driver's socket %s is not on a hostPath volume", where, sock)
		}
		if want := "/plugins/" + driver.DefaultName + "/csi.sock"; !strings.HasSuffix(hostSock, want) {
			t.Errorf("%s: socket on the host at %s, want .../kubelet%s (named after the CSIDriver)", where, hostSock, want)
		}
		reg, _ := argValue(registrar, "kubelet-registration-path")
		if reg != hostSock {
			t.Errorf("%s: registrar --kubelet-registration-path=%s, but the driver's socket is %s on the host", where, reg, hostSock)
		}
		for _, c := range []corev1.Container{registrar, probe} {
			addr, _ := argValue(c, "csi-address")
			if got := hostPathOf(spec, c, socketPath(t, addr)); got != hostSock {
				t.Errorf("%s: %s --csi-address=%s is %s on the host, want %s", where, c.Name, addr, got, hostSock)
			}
		}
		if got := hostPathOf(spec, registrar, "/registration"); !strings.HasSuffix(got, "/plugins_registry") {
			t.Errorf("%s: registrar /registration is %q on the host, want the kubelet's plugins_registry", where, got)
		}
		kubeletDir := strings.TrimSuffix(hostSock, "/plugins/"+driver.DefaultName+"/csi.sock")
		m, ok := mountOf(plugin, kubeletDir)
		if !ok || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
			t.Errorf("%s: the kubelet dir %s must be mounted with Bidirectional propagation", where, kubeletDir)
		}
		if got := hostPathOf(spec, plugin, kubeletDir); got != kubeletDir {
			t.Errorf("%s: %s is %q on the host", where, kubeletDir, got)
		}
		if state, _ := argValue(plugin, "node-state-dir"); !strings.HasPrefix(state, kubeletDir+"/") {
			t.Errorf("%s: --node-state-dir=%s is not under the kubelet dir", where, state)
		}
		for _, p := range []string{"/dev", "/sys"} {
			if hostPathOf(spec, plugin, p) != p {
				t.Errorf("%s: %s is not the host's", where, p)
			}
		}
		// Privileged where it must be, and only there.
		for k, ps := range podSpecs(objs) {
			for _, c := range allContainers(ps) {
				priv := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
				must := k == "DaemonSet/rds-csi-node" && c.Name == "rds-csi"
				if priv != must {
					t.Errorf("%s: %s container %s privileged=%v", r.name, k, c.Name, priv)
				}
				if !must && (c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation) {
					t.Errorf("%s: %s container %s must set allowPrivilegeEscalation: false", r.name, k, c.Name)
				}
			}
		}
		if !ds.Spec.Template.Spec.HostNetwork {
			t.Errorf("%s: the node plugin needs the host network (NVMe/TCP connections outlive the pod)", where)
		}
		// The plugin's liveness goes through the livenessprobe sidecar.
		hp, _ := argValue(probe, "http-endpoint")
		if plugin.LivenessProbe == nil || plugin.LivenessProbe.HTTPGet == nil ||
			":"+strconv.Itoa(portNumber(plugin, plugin.LivenessProbe.HTTPGet.Port.String())) != hp {
			t.Errorf("%s: the plugin's liveness probe must hit the livenessprobe sidecar (%s)", where, hp)
		}
		checkReadyz(t, where, plugin)
	}
}

func portNumber(c corev1.Container, port string) int {
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return int(p.ContainerPort)
		}
	}
	return -1
}

func checkReadyz(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	addr, _ := argValue(c, "metrics-address")
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		":"+strconv.Itoa(portNumber(c, c.ReadinessProbe.HTTPGet.Port.String())) != addr {
		t.Errorf("%s: readiness must be /readyz on --metrics-address %s", where, addr)
	}
}

// driverOperationTimeout is the driver's worst-case CSI call duration: its
// --operation-timeout in the rendered container, or else the default.
func driverOperationTimeout(t *testing.T, drv corev1.Container) time.Duration {
	t.Helper()
	if v, ok := argValue(drv, "operation-timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("--operation-timeout=%q: %v", v, err)
		}
		return d
	}
	return driver.DefaultOperationTimeout
}

func TestControllerDeployment(t *testing.T) {
	for _, r := range renders(t) {
		objs := typed(t, r)
		d := get[*appsv1.Deployment](t, r, objs, "Deployment/rds-csi-controller")
		where := r.name + " Deployment/rds-csi-controller"
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s: want 2 replicas", where)
		}
		spec := &d.Spec.Template.Spec
		drv := container(t, where, spec, "rds-csi")
		if v, ok := argValue(drv, "leader-election"); ok && v != "true" {
			t.Errorf("%s: driver leader election off", where)
		}
		envs := map[string]bool{}
		for _, e := range drv.Env {
			envs[e.Name] = true
		}
		if !envs["POD_NAME"] || !envs["POD_NAMESPACE"] {
			t.Errorf("%s: leader election and events need POD_NAME and POD_NAMESPACE", where)
		}
		// Liveness is the process, never the CSI socket (absent on a standby).
		addr, _ := argValue(drv, "metrics-address")
		if drv.LivenessProbe == nil || drv.LivenessProbe.HTTPGet == nil || drv.LivenessProbe.HTTPGet.Path != "/healthz" ||
			":"+strconv.Itoa(portNumber(drv, drv.LivenessProbe.HTTPGet.Port.String())) != addr {
			t.Errorf("%s: liveness must be /healthz on --metrics-address %s", where, addr)
		}
		checkReadyz(t, where, drv)
		worst := driverOperationTimeout(t, drv)
		endpoint, _ := argValue(drv, "endpoint")
		sockMount, _ := mountOf(drv, path.Dir(socketPath(t, endpoint)))
		sidecars := 0
		for _, c := range spec.Containers {
			if c.Name == "rds-csi" {
				continue
			}
			if strings.Contains(c.Image, "livenessprobe") {
				t.Errorf("%s: the livenessprobe sidecar cannot work on a standby (no socket)", where)
			}
			sidecars++
			if v, _ := argValue(c, "leader-election"); v != "true" {
				t.Errorf("%s: %s without --leader-election=true", where, c.Name)
			}
			addr, _ := argValue(c, "csi-address")
			m, ok := mountOf(c, path.Dir(addr))
			if !ok || m.Name != sockMount.Name || path.Base(addr) != path.Base(socketPath(t, endpoint)) {
				t.Errorf("%s: %s --csi-address=%s is not the driver's socket %s", where, c.Name, addr, endpoint)
			}
			to, _ := argValue(c, "timeout")
			d, err := time.ParseDuration(to)
			if err != nil || d <= worst {
				t.Errorf("%s: %s --timeout=%q must exceed the driver's worst case %v", where, c.Name, to, worst)
			}
		}
		if sidecars != 5 {
			t.Errorf("%s: %d sidecars, want provisioner, attacher, resizer, snapshotter, health monitor", where, sidecars)
		}
	}
}

// cmdFlags reads the flag names a command defines from its main.go.
func cmdFlags(t *testing.T, file string) map[string]bool {
	t.Helper()
	src := string(readFile(t, file))
	out := map[string]bool{"v": true} // klog.InitFlags
	for _, m := range regexp.MustCompile(`flag\.\w+(?:Var\(&[\w.]+, |\()"([a-z0-9-]+)"`).FindAllStringSubmatch(src, -1) {
		out[m[1]] = true
	}
	if len(out) < 5 {
		t.Fatalf("%s: found only %v; update the flag pattern", file, out)
	}
	return out
}

// TestArgsAreRealFlags: every flag the manifests pass to rds-csi and
// rds-emulator exists in the binary, every $(VAR) is defined, and every
// ConfigMap key read exists.
func TestArgsAreRealFlags(t *testing.T) {
	flags := map[string]map[string]bool{
		"rds-csi":      cmdFlags(t, "cmd/rds-csi/main.go"),
		"rds-emulator": cmdFlags(t, "cmd/rds-emulator/main.go"),
	}
	varRE := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	for _, r := range renders(t) {
		objs := typed(t, r)
		for k, spec := range podSpecs(objs) {
			for _, c := range allContainers(spec) {
				bin := "rds-csi"
				if len(c.Command) > 0 {
					bin = path.Base(c.Command[0])
				}
				ours := strings.Contains(c.Image, "/rds-csi:")
				env := map[string]bool{}
				for _, e := range c.Env {
					env[e.Name] = true
					if ref := e.ValueFrom; ref != nil && ref.ConfigMapKeyRef != nil {
						cm, ok := objs["ConfigMap/"+ref.ConfigMapKeyRef.Name].(*corev1.ConfigMap)
						if !ok {
							t.Errorf("%s: %s %s: ConfigMap %s not rendered", r.name, k, c.Name, ref.ConfigMapKeyRef.Name)
						} else if _, ok := cm.Data[ref.ConfigMapKeyRef.Key]; !ok {
							t.Errorf("%s: %s %s: ConfigMap %s has no key %s", r.name, k, c.Name, ref.ConfigMapKeyRef.Name, ref.ConfigMapKeyRef.Key)
						}
					}
				}
				for _, a := range c.Args {
					for _, m := range varRE.FindAllStringSubmatch(a, -1) {
						if !env[m[1]] {
							t.Errorf("%s: %s %s: %s uses undefined $(%s)", r.name, k, c.Name, a, m[1])
						}
					}
					if !ours {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					if !strings.HasPrefix(a, "--") || !flags[bin][name] {
						t.Errorf("%s: %s %s: %s is not a flag of %s", r.name, k, c.Name, a, bin)
					}
				}
			}
		}
	}
}

// TestReferencedObjectsExist: every Secret, ConfigMap and ServiceAccount a pod
// uses is rendered, or is on the render's list of objects created outside
// the manifests.
func TestReferencedObjectsExist(t *testing.T) {
	for _, r := range renders(t) {
		objs := typed(t, r)
		used := map[string]bool{}
		for k, spec := range podSpecs(objs) {
			need := []string{}
			if spec.ServiceAccountName != "" {
				need = append(need, "ServiceAccount/"+spec.ServiceAccountName)
			}
			for _, v := range spec.Volumes {
				switch {
				case v.Secret != nil:
					need = append(need, "Secret/"+v.Secret.SecretName)
				case v.ConfigMap != nil:
					need = append(need, "ConfigMap/"+v.ConfigMap.Name)
				}
			}
			for _, c := range allContainers(spec) {
				for _, m := range c.VolumeMounts {
					if _, ok := volumeOf(spec, m.Name); !ok {
						t.Errorf("%s: %s %s mounts undeclared volume %s", r.name, k, c.Name, m.Name)
					}
				}
			}
			for _, n := range need {
				used[n] = true
				if _, ok := objs[n]; !ok && !slices.Contains(r.external, n) {
					t.Errorf("%s: %s uses %s, which is neither rendered nor created by the install steps", r.name, k, n)
				}
			}
		}
		for _, n := range r.external {
			if _, ok := objs[n]; ok {
				t.Errorf("%s: %s is listed as external but rendered", r.name, n)
			}
			if !used[n] {
				t.Errorf("%s: external %s is used by no pod", r.name, n)
			}
		}
	}
}

// sidecarNeeds is what the kubernetes-csi sidecars need from the API beyond
// the driver's own list, following their upstream RBAC (deploy/kubernetes/
// rbac.yaml of each repository, for the pinned releases).
var sidecarNeeds = []kubeaccess.Rule{
	// external-provisioner v6
	{Resource: "persistentvolumes", Verbs: []string{"create", "delete", "get", "list", "patch", "watch"}},
	{Resource: "persistentvolumeclaims", Verbs: []string{"get", "list", "update", "watch"}},
	{Group: "storage.k8s.io", Resource: "storageclasses", Verbs: []string{"get", "list", "watch"}},
	{Group: "storage.k8s.io", Resource: "csinodes", Verbs: []string{"get", "list", "watch"}},
	{Resource: "nodes", Verbs: []string{"get", "list", "watch"}},
	{Group: "storage.k8s.io", Resource: "volumeattachments", Verbs: []string{"get", "list", "watch"}},
	{Group: "storage.k8s.io", Resource: "volumeattributesclasses", Verbs: []string{"get", "list", "watch"}},
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots", Verbs: []string{"get", "list"}},
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents", Verbs: []string{"get", "list"}},
	{Resource: "events", Verbs: []string{"create", "list", "patch", "update", "watch"}},
	// external-attacher v4
	{Resource: "persistentvolumes", Verbs: []string{"get", "list", "patch", "update", "watch"}},
	{Group: "storage.k8s.io", Resource: "volumeattachments", Verbs: []string{"get", "list", "patch", "update", "watch"}},
	{Group: "storage.k8s.io", Resource: "volumeattachments/status", Verbs: []string{"patch"}},
	// external-resizer v2 (--handle-volume-inuse-error=false: no pods)
	{Resource: "persistentvolumes", Verbs: []string{"get", "list", "patch", "watch"}},
	{Resource: "persistentvolumeclaims", Verbs: []string{"get", "list", "watch"}},
	{Resource: "persistentvolumeclaims/status", Verbs: []string{"patch"}},
	// external-snapshotter v8
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotclasses", Verbs: []string{"get", "list", "watch"}},
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents", Verbs: []string{"create", "get", "list", "patch", "update", "watch"}},
	{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents/status", Verbs: []string{"patch", "update"}},
	// external-health-monitor-controller v0.19 (events on PVCs; pods and
	// nodes to tell whom a volume's trouble touches)
	{Resource: "persistentvolumes", Verbs: []string{"get", "list", "watch"}},
	{Resource: "persistentvolumeclaims", Verbs: []string{"get", "list", "watch"}},
	{Resource: "pods", Verbs: []string{"get", "list", "watch"}},
	{Resource: "nodes", Verbs: []string{"get", "list", "watch"}},
	{Resource: "events", Verbs: []string{"create", "patch"}},
	// leader election of every sidecar, in the driver's namespace
	{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}, Namespaced: true},
}

// grants collects what the RBAC objects bound to a ServiceAccount allow.
func grants(t *testing.T, r render, objs map[string]any, sa string) (cluster, ns []rbacv1.PolicyRule) {
	t.Helper()
	isSubject := func(subs []rbacv1.Subject) bool {
		for _, s := range subs {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == namespace {
				return true
			}
		}
		return false
	}
	for _, v := range objs {
		switch b := v.(type) {
		case *rbacv1.ClusterRoleBinding:
			if isSubject(b.Subjects) {
				if b.RoleRef.Kind != "ClusterRole" {
					t.Errorf("%s: ClusterRoleBinding %s refers to a %s", r.name, b.Name, b.RoleRef.Kind)
				}
				cr := get[*rbacv1.ClusterRole](t, r, objs, "ClusterRole/"+b.RoleRef.Name)
				cluster = append(cluster, cr.Rules...)
			}
		case *rbacv1.RoleBinding:
			if isSubject(b.Subjects) {
				if b.Namespace != namespace {
					t.Errorf("%s: RoleBinding %s in %q", r.name, b.Name, b.Namespace)
				}
				role := get[*rbacv1.Role](t, r, objs, "Role/"+b.RoleRef.Name)
				ns = append(ns, role.Rules...)
			}
		}
	}
	return cluster, ns
}

func allowed(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, p := range rules {
		if slices.Contains(p.APIGroups, group) && slices.Contains(p.Resources, resource) && slices.Contains(p.Verbs, verb) {
			return true
		}
	}
	return false
}

func TestRBACCoversTheCode(t *testing.T) {
	if len(kubeaccess.Controller) == 0 {
		t.Fatal("kubeaccess.Controller is empty")
	}
	need := append(slices.Clone(kubeaccess.Controller), sidecarNeeds...)
	for _, r := range renders(t) {
		objs := typed(t, r)
		cluster, ns := grants(t, r, objs, "rds-csi-controller")
		for _, rule := range need {
			for _, v := range rule.Verbs {
				ok := allowed(cluster, rule.Group, rule.Resource, v) || (rule.Namespaced && allowed(ns, rule.Group, rule.Resource, v))
				if !ok {
					t.Errorf("%s: the controller's RBAC lacks %s %s/%s (namespaced=%v)", r.name, v, rule.Group, rule.Resource, rule.Namespaced)
				}
			}
		}
		for _, p := range append(cluster, ns...) {
			if slices.Contains(p.Verbs, "*") || slices.Contains(p.Resources, "*") || slices.Contains(p.APIGroups, "*") {
				t.Errorf("%s: wildcard rule %+v", r.name, p)
			}
			if slices.Contains(p.Resources, "secrets") {
				t.Errorf("%s: the controller needs no access to Secrets", r.name)
			}
		}
		if allowed(cluster, "coordination.k8s.io", "leases", "create") {
			t.Errorf("%s: Leases are granted cluster-wide; the Role in the driver's namespace is enough", r.name)
		}
		// The node plugin: no API access at all (kubeaccess.Node is empty).
		nc, nn := grants(t, r, objs, "rds-csi-node")
		if len(kubeaccess.Node) == 0 && len(nc)+len(nn) > 0 {
			t.Errorf("%s: the node ServiceAccount is bound to roles, but the node code uses no API", r.name)
		}
		nsa := get[*corev1.ServiceAccount](t, r, objs, "ServiceAccount/rds-csi-node")
		ds := get[*appsv1.DaemonSet](t, r, objs, "DaemonSet/rds-csi-node")
		if len(kubeaccess.Node) == 0 && (nsa.AutomountServiceAccountToken == nil || *nsa.AutomountServiceAccountToken ||
			ds.Spec.Template.Spec.AutomountServiceAccountToken == nil || *ds.Spec.Template.Spec.AutomountServiceAccountToken) {
			t.Errorf("%s: the node plugin must not mount an API token", r.name)
		}
	}
}

// TestNoSecretValuesInManifests: no committed YAML holds a Secret with data,
// and the only Secret data rendered is what the test itself supplied.
func TestNoSecretValuesInManifests(t *testing.T) {
	for _, dir := range []string{"deploy/kubernetes", "deploy/examples", "deploy/helm"} {
		for _, f := range yamlFiles(t, dir) {
			raw := string(readFile(t, f))
			if strings.Contains(raw, "PRIVATE KEY") {
				t.Errorf("%s: holds a private key", f)
			}
			if strings.Contains(f, "/templates/") {
				continue // Go templates, checked through their renders
			}
			for i, doc := range splitDocs([]byte(raw)) {
				var m map[string]any
				if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
					t.Errorf("%s: document %d: %v", f, i, err)
					continue
				}
				if m["kind"] == "Secret" && (m["data"] != nil || m["stringData"] != nil) {
					t.Errorf("%s: Secret in document %d carries values", f, i)
				}
			}
		}
	}
	for _, r := range renders(t) {
		for _, o := range r.objs {
			if o.Kind != "Secret" {
				continue
			}
			s, err := decodeStrict(o)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range s.(*corev1.Secret).Data {
				if string(v) != dummyKey {
					t.Errorf("%s: Secret %s key %s has a value the test did not supply", r.name, o.Name, k)
				}
			}
		}
	}
}

// driverParams reads the StorageClass parameter keys from driver/volume.go.
func driverParams(t *testing.T) map[string]bool {
	t.Helper()
	src := string(readFile(t, "driver/volume.go"))
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+param\w+\s+= "(\w+)"`).FindAllStringSubmatch(src, -1) {
		out[m[1]] = true
	}
	if !out["fsType"] || !out["dataPlane"] {
		t.Fatalf("driver/volume.go: parameter keys not found (%v); update this test", out)
	}
	return out
}

func TestStorageClassesAndExamples(t *testing.T) {
	params := driverParams(t)
	check := func(where string, sc *storagev1.StorageClass) {
		if sc.Provisioner != driver.DefaultName {
			t.Errorf("%s: StorageClass %s provisioner %s", where, sc.Name, sc.Provisioner)
		}
		for k := range sc.Parameters {
			if !params[k] && !strings.HasPrefix(k, "csi.storage.k8s.io/") {
				t.Errorf("%s: StorageClass %s: the driver refuses parameter %q", where, sc.Name, k)
			}
		}
	}
	for _, r := range renders(t) {
		for _, v := range typed(t, r) {
			if sc, ok := v.(*storagev1.StorageClass); ok {
				check(r.name, sc)
			}
		}
	}
	scNames := map[string]bool{}
	kinds := map[string]bool{}
	for _, f := range yamlFiles(t, "deploy/examples") {
		for _, o := range splitYAML(t, f, readFile(t, f)) {
			v, err := decodeStrict(o)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			kinds[o.Kind] = true
			switch x := v.(type) {
			case *storagev1.StorageClass:
				check(f, x)
				scNames[x.Name] = true
			case *volumeSnapshotClass:
				if x.Driver != driver.DefaultName || len(x.Parameters) > 0 {
					t.Errorf("%s: VolumeSnapshotClass %s: driver %s, parameters %v (the driver takes none)", f, x.Name, x.Driver, x.Parameters)
				}
			}
		}
	}
	for _, k := range []string{"StorageClass", "PersistentVolumeClaim", "Pod", "VirtualMachine", "VolumeSnapshotClass", "VolumeSnapshot"} {
		if !kinds[k] {
			t.Errorf("deploy/examples: no %s example", k)
		}
	}
	// The examples' PVCs use classes both the examples and the kind overlay
	// define.
	kindSC := map[string]bool{}
	for _, v := range typed(t, renderNamed(t, "kustomize overlays/kind")) {
		if sc, ok := v.(*storagev1.StorageClass); ok {
			kindSC[sc.Name] = true
		}
	}
	for _, f := range yamlFiles(t, "deploy/examples") {
		for _, o := range splitYAML(t, f, readFile(t, f)) {
			if o.Kind != "PersistentVolumeClaim" {
				continue
			}
			v, _ := decodeStrict(o)
			pvc := v.(*corev1.PersistentVolumeClaim)
			sc := *pvc.Spec.StorageClassName
			if !scNames[sc] || !kindSC[sc] {
				t.Errorf("%s: PVC %s uses StorageClass %s, not defined by both the examples and the kind overlay", f, pvc.Name, sc)
			}
			block := pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock
			if slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) && !block {
				t.Errorf("%s: PVC %s: the driver refuses ReadWriteMany filesystems", f, pvc.Name)
			}
		}
	}
}
