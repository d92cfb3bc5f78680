package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Paths, relative to the repository root.
const (
	kustomizeDir = "deploy/kubernetes"
	chartDir     = "deploy/helm/rds-csi"
	namespace    = "rds-csi"
)

// dummyKey stands in for the SSH private key the hardware overlay reads from
// secrets/id_ed25519 (git-ignored). It is not a key.
const dummyKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-deploy-test\n-----END OPENSSH PRIVATE KEY-----\n"

// repoRoot is the repository root: this file lives in deploy/test.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object is one rendered manifest: its raw JSON and the identity fields.
type object struct {
	Kind, APIVersion, Namespace, Name string
	JSON                              []byte
	Map                               map[string]any
}

func (o object) key() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

// splitYAML splits a multi-document YAML stream into JSON objects,
// rejecting duplicate keys (sigs.k8s.io/yaml strict conversion).
func splitYAML(t testing.TB, what string, data []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range splitDocs(data) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s: document %d: %v", what, i, err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatalf("%s: document %d: %v", what, i, err)
		}
		if m == nil {
			continue
		}
		md, _ := m["metadata"].(map[string]any)
		o := object{JSON: js, Map: m}
		o.Kind, _ = m["kind"].(string)
		o.APIVersion, _ = m["apiVersion"].(string)
		if md != nil {
			o.Name, _ = md["name"].(string)
			o.Namespace, _ = md["namespace"].(string)
		}
		if o.Kind == "" || o.APIVersion == "" || o.Name == "" {
			t.Fatalf("%s: document %d lacks kind, apiVersion or name", what, i)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func splitDocs(data []byte) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// crdTypes are the kinds without client-go types in this module. Each gets a
// minimal local struct that names every field the manifests use, and is
// decoded as strictly as the client-go kinds.
var crdTypes = map[string]func() any{
	"monitoring.coreos.com/v1/PrometheusRule":        func() any { return &prometheusRule{} },
	"snapshot.storage.k8s.io/v1/VolumeSnapshotClass": func() any { return &volumeSnapshotClass{} },
	"snapshot.storage.k8s.io/v1/VolumeSnapshot":      func() any { return &volumeSnapshot{} },
	"kubevirt.io/v1/VirtualMachine":                  func() any { return &virtualMachine{} },
}

// decodeStrict decodes o into its typed struct: client-go's for built-in
// kinds, the local structs above for CRDs. Unknown and duplicate fields are
// errors, and so is a kind neither knows.
func decodeStrict(o object) (any, error) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, err
	}
	var target any
	if mk, ok := crdTypes[gv.String()+"/"+o.Kind]; ok {
		target = mk()
	} else {
		obj, err := scheme.Scheme.New(gv.WithKind(o.Kind))
		if err != nil {
			return nil, fmt.Errorf("%s: no client-go type and no local type: %w", o.key(), err)
		}
		target = obj
	}
	strict, err := kjson.UnmarshalStrict(o.JSON, target, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.key(), err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w", o.key(), errors.Join(strict...))
	}
	return target, nil
}

// kustomize builds dir (relative to deploy/kubernetes) with the kustomize Go
// API. The tree is copied into memory so that the hardware overlay's
// git-ignored key can be supplied without touching the work tree; extra
// files are added on top (path relative to deploy/kubernetes).
func kustomize(t testing.TB, dir string, extra map[string]string) []object {
	t.Helper()
	root := filepath.Join(repoRoot(t), kustomizeDir)
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, content := range extra {
		if err := mem.WriteFile(filepath.Join("/k", rel), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(mem, filepath.Join("/k", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitYAML(t, "kustomize "+dir, y)
}

// helmTemplate renders the chart as `helm template rds-csi deploy/helm/rds-csi
// -n rds-csi -f <valueFiles>` does, with Helm's Go library (client-only dry
// run, schema validation on).
func helmTemplate(t testing.TB, values map[string]any, valueFiles ...string) ([]object, error) {
	t.Helper()
	ch, err := loader.Load(filepath.Join(repoRoot(t), chartDir))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	for _, f := range valueFiles {
		var v map[string]any
		if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(chartDir, f)), &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vals = merge(vals, v)
	}
	vals = merge(vals, values)
	install := action.NewInstall(&action.Configuration{})
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "rds-csi"
	install.Namespace = namespace
	install.Replace = true
	install.DisableHooks = true
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("unexpected release type %T", rel)
	}
	return splitYAML(t, "helm template", []byte(r.Manifest)), nil
}

func mustHelm(t testing.TB, values map[string]any, valueFiles ...string) []object {
	t.Helper()
	objs, err := helmTemplate(t, values, valueFiles...)
	if err != nil {
		t.Fatalf("helm template %v: %v", valueFiles, err)
	}
	return objs
}

// merge merges b into a (maps recursively, everything else replaced).
func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = merge(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// yamlFiles lists the YAML files under dir (relative to the repository).
func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dump(objs []object) string {
	var b bytes.Buffer
	for _, o := range objs {
		y, _ := yaml.JSONToYAML(o.JSON)
		fmt.Fprintf(&b, "---\n%s", y)
	}
	return b.String()
}
