package deploytest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// knownDifferences lists what helm template and kustomize may render
// differently for the same settings, by object key and the reason. Empty:
// the chart renders exactly the overlays' objects.
var knownDifferences = map[string]string{}

func TestHelmEqualsKustomize(t *testing.T) {
	// Each overlay and the chart values that claim to install the same.
	pairs := [][2]string{
		{"kustomize overlays/kind", "helm ci/kind-values.yaml"},
		{"kustomize overlays/hardware", "helm ci/hardware-values.yaml"},
		{"kustomize overlays/kind + components/monitoring", "helm ci/kind-values.yaml + monitoring"},
	}
	for _, p := range pairs {
		k, h := renderNamed(t, p[0]), renderNamed(t, p[1])
		t.Run(k.name, func(t *testing.T) {
			km, hm := index(k.objs), index(h.objs)
			for key, ko := range km {
				ho, ok := hm[key]
				if !ok {
					if _, known := knownDifferences[key]; !known {
						t.Errorf("%s renders %s, %s does not", k.name, key, h.name)
					}
					continue
				}
				if !reflect.DeepEqual(ko.Map, ho.Map) {
					if _, known := knownDifferences[key]; known {
						continue
					}
					var d []string
					diff("", ko.Map, ho.Map, &d)
					t.Errorf("%s differs (kustomize vs helm):\n  %s", key, strings.Join(d, "\n  "))
				}
			}
			for key := range hm {
				if _, ok := km[key]; !ok {
					if _, known := knownDifferences[key]; !known {
						t.Errorf("%s renders %s, %s does not", h.name, key, k.name)
					}
				}
			}
		})
	}
}

// index keys objects; Secret data is compared decoded, since kustomize
// wraps long base64 lines and Helm does not.
func index(objs []object) map[string]object {
	out := map[string]object{}
	for _, o := range objs {
		if data, ok := o.Map["data"].(map[string]any); ok && o.Kind == "Secret" {
			for k, v := range data {
				s, _ := v.(string)
				b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
				if err == nil {
					data[k] = string(b)
				}
			}
		}
		out[o.key()] = o
	}
	return out
}

// TestHelmSchemaRejects: values.schema.json stops bad settings before
// anything is rendered.
func TestHelmSchemaRejects(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"unknown data plane":   {"dataPlane": "iscsi"},
		"unknown key":          {"rdsAdress": "x:22"},
		"latest image":         {"sidecars": map[string]any{"attacher": map[string]any{"image": "registry.k8s.io/sig-storage/csi-attacher:latest"}}},
		"untagged image":       {"sidecars": map[string]any{"attacher": map[string]any{"image": "registry.k8s.io/sig-storage/csi-attacher"}}},
		"bad StorageClass key": {"storageClasses": []any{map[string]any{"name": "x", "parameters": map[string]any{"fstype": "ext4"}}}},
		"address without port": {"rds": map[string]any{"address": "rds.example"}},
		"bad quantity":         {"controller": map[string]any{"resources": map[string]any{"limits": map[string]any{"cpu": "lots"}}}},
	} {
		if _, err := helmTemplate(t, vals); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// diff lists the JSON paths where a and b differ.
func diff(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diff(path+"."+k, av[k], bv[k], out)
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			break
		}
		for i := range av {
			diff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		*out = append(*out, fmt.Sprintf("%s: %s vs %s", path, aj, bj))
	}
}
