package driver

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsListTheCSISurface: README.md and deploy/README.md list the spec
// and csi-test versions go.mod pins and exactly the capabilities the code
// advertises, in the table between the csi-surface markers.
func TestDocsListTheCSISurface(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	version := func(mod string) string {
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(mod) + ` (v\S+)`).FindSubmatch(gomod)
		if m == nil {
			t.Fatalf("go.mod does not require %s", mod)
		}
		return string(m[1])
	}
	d := &Driver{}
	plugin, _ := d.GetPluginCapabilities(context.Background(), nil)
	var pluginCaps []string
	for _, c := range plugin.GetCapabilities() {
		if s := c.GetService(); s != nil {
			pluginCaps = append(pluginCaps, s.GetType().String())
		}
		if e := c.GetVolumeExpansion(); e != nil {
			pluginCaps = append(pluginCaps, "VolumeExpansion "+e.GetType().String())
		}
	}
	var controller, nodeCaps []string
	for _, c := range controllerCapabilities {
		controller = append(controller, c.String())
	}
	for _, c := range nodeCapabilities {
		nodeCaps = append(nodeCaps, c.String())
	}
	want := map[string][]string{"plugin": pluginCaps, "controller": controller, "node": nodeCaps}
	wantSpec := version("github.com/container-storage-interface/spec") + ", checked by csi-test " + version("github.com/kubernetes-csi/csi-test/v5")

	for _, file := range []string{"../README.md", "../deploy/README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		start, end := strings.Index(text, "<!-- csi-surface"), strings.Index(text, "<!-- /csi-surface -->")
		if start < 0 || end < start {
			t.Fatalf("%s has no csi-surface table", file)
		}
		rows := map[string]string{}
		for _, l := range strings.Split(text[start:end], "\n") {
			cells := strings.Split(strings.TrimSpace(l), "|")
			if len(cells) == 4 {
				rows[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[2])
			}
		}
		if !strings.HasPrefix(rows["CSI spec"], wantSpec) {
			t.Errorf("%s: CSI spec row %q, want it to start %q", file, rows["CSI spec"], wantSpec)
		}
		for service, caps := range want {
			var listed []string
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(rows[service], -1) {
				listed = append(listed, m[1])
			}
			if strings.Join(listed, ",") != strings.Join(caps, ",") {
				t.Errorf("%s: %s capabilities listed %v, the code advertises %v", file, service, listed, caps)
			}
		}
	}
}
