package spec

import (
	"reflect"
	"testing"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// TestFaultActionsAreTheCatalogue: what a scenario file may write about a
// fault is exactly what the fault catalogue says, and the runner's own
// actions do not shadow a fault.
func TestFaultActionsAreTheCatalogue(t *testing.T) {
	faults := map[string]bool{}
	for _, f := range catalog.All() {
		faults[f.Name] = true
		a, ok := LookupAction(f.Name)
		if !ok {
			t.Errorf("%s is not an action", f.Name)
			continue
		}
		if !a.Fault || a.Undoable != f.Undoable || a.Doc != f.Doc || len(a.Params) != len(f.Params) {
			t.Errorf("%s: action %+v, catalogue %+v", f.Name, a, f)
			continue
		}
		for i, p := range f.Params {
			want := ParamSpec{Name: p.Name, Kind: faultParamKinds[p.Kind], Required: p.Required, Enum: p.Choices,
				Default: p.Default, Doc: p.Doc}
			if !reflect.DeepEqual(a.Params[i], want) {
				t.Errorf("%s: parameter %+v, catalogue %+v", f.Name, a.Params[i], p)
			}
		}
	}
	for _, a := range KnownActions() {
		if a.Fault != faults[a.Name] {
			t.Errorf("%s: Fault=%v, catalogued=%v", a.Name, a.Fault, faults[a.Name])
		}
	}
	if len(catalogue) != len(runnerActions)+len(faults) {
		t.Errorf("%d actions for %d faults and %d runner actions: a name is taken twice", len(catalogue), len(faults),
			len(runnerActions))
	}
}

// TestEveryCatalogueKindIsChecked: a parameter kind the catalogue gains must
// be given a check here before a scenario may use it.
func TestEveryCatalogueKindIsChecked(t *testing.T) {
	for k := catalog.Kind(0); k.String() != "unknown"; k++ {
		if _, ok := faultParamKinds[k]; !ok {
			t.Errorf("catalogue kind %v has no ParamKind", k)
		}
	}
}
