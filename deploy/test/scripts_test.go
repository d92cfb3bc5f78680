package deploytest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func kindScripts(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy/kind/*.sh"))
	if err != nil || len(m) < 4 {
		t.Fatalf("deploy/kind scripts: %v %v", m, err)
	}
	return m
}

// TestShellcheck runs shellcheck on the kind scripts (.ci/run installs it;
// `make deploy-test` runs it too).
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck); .ci/run installs it, so CI never skips this")
	}
	cmd := exec.Command(sc, append([]string{"--severity=style"}, kindScripts(t)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// TestKindScriptsCreateExternalObjects: kind-up.sh creates every object the
// kind overlay expects from outside, and applies the overlay it should.
func TestKindScriptsCreateExternalObjects(t *testing.T) {
	up := string(readFile(t, "deploy/kind/kind-up.sh"))
	for _, ext := range kindExternal {
		kind, name, _ := strings.Cut(ext, "/")
		verb := map[string]string{"Secret": "secret generic", "ConfigMap": "configmap"}[kind]
		if !strings.Contains(up, verb+" "+name+" ") {
			t.Errorf("kind-up.sh does not create %s", ext)
		}
	}
	for _, must := range []string{"deploy/kubernetes/overlays/kind", "kind-config.yaml", "--target node", "--target distroless", "KIND\" load docker-image"} {
		if !strings.Contains(up, must) {
			t.Errorf("kind-up.sh lacks %q", must)
		}
	}
}

// TestKindConfig: one control plane, two workers, and on every node the
// emulator's state directory where the kind overlay expects it.
func TestKindConfig(t *testing.T) {
	var cfg struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Name       string `json:"name"`
		Nodes      []struct {
			Role        string `json:"role"`
			ExtraMounts []struct {
				HostPath      string `json:"hostPath"`
				ContainerPath string `json:"containerPath"`
			} `json:"extraMounts"`
		} `json:"nodes"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, "kind-config.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	r := renderNamed(t, "kustomize overlays/kind")
	var loopDir string
	for _, o := range r.objs {
		if o.Kind == "ConfigMap" && o.Name == "rds-csi-config" {
			loopDir, _ = o.Map["data"].(map[string]any)["loopBackingDir"].(string)
		}
	}
	if loopDir == "" {
		t.Fatal("the kind overlay sets no loopBackingDir")
	}
	lib := string(readFile(t, "deploy/kind/lib.sh"))
	for _, n := range cfg.Nodes {
		roles[n.Role]++
		found := false
		for _, m := range n.ExtraMounts {
			if m.ContainerPath == loopDir {
				found = true
				if !strings.HasSuffix(m.HostPath, "/emulator-state") || !strings.Contains(lib, strings.TrimSuffix(m.HostPath, "/emulator-state")) {
					t.Errorf("kind-config.yaml hostPath %s is not RDS_CSI_KIND_STATE/emulator-state of deploy/kind/lib.sh", m.HostPath)
				}
			}
		}
		if !found {
			t.Errorf("a %s node does not mount the emulator state at %s", n.Role, loopDir)
		}
	}
	if roles["control-plane"] != 1 || roles["worker"] != 2 {
		t.Errorf("nodes %v, want one control-plane and two workers", roles)
	}
}
