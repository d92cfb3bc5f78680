package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// ActionSpec describes an action a timeline step may take.
type ActionSpec struct {
	Name string
	Doc  string
	// Fault is true for the actions of the fault catalogue (package
	// chaos/catalog), which the runner builds with chaos.Lookup(Name,
	// Params); the others the runner performs itself.
	Fault bool
	// Undoable: the action starts a state that can be ended, so a step may
	// give it a duration (for: 2m).
	Undoable bool
	Params   []ParamSpec
}

// ParamSpec is one parameter of an action.
type ParamSpec struct {
	Name     string
	Kind     ParamKind
	Required bool
	// Enum lists the accepted values of an EnumParam.
	Enum []string
	// Default documents what whoever performs the action assumes when the
	// parameter is absent; Parse does not fill it in.
	Default string
	Doc     string
}

// ParamKind says how Parse checks a parameter's value.
type ParamKind int

// Parameter kinds.
const (
	StringParam   ParamKind = iota // any text
	DurationParam                  // a non-negative duration: 250ms, 30s
	CountParam                     // a whole number of at least 1
	SeedParam                      // an unsigned 64-bit decimal number
	EnumParam                      // one of ParamSpec.Enum
	// NodeParam names a node of the topology or one created by node.create.
	NodeParam
	// NewNodeParam names a node that need not exist yet (node.create).
	NewNodeParam
	// VolumeParam is a volume pattern (Scenario.MatchVolumes).
	VolumeParam
	// VMParam names one volume: the disk of the virtual machine it stands for.
	VMParam
)

func (k ParamKind) String() string {
	switch k {
	case StringParam:
		return "string"
	case DurationParam:
		return "duration"
	case CountParam:
		return "count"
	case SeedParam:
		return "seed"
	case EnumParam:
		return "enum"
	case NodeParam:
		return "node"
	case NewNodeParam:
		return "new node"
	case VolumeParam:
		return "volume pattern"
	case VMParam:
		return "vm"
	}
	return "unknown"
}

// faultParamKinds says how Parse checks each kind of catalogue parameter.
var faultParamKinds = map[catalog.Kind]ParamKind{
	catalog.String:   StringParam,
	catalog.Duration: DurationParam,
	catalog.Count:    CountParam,
	catalog.Seed:     SeedParam,
	catalog.Choice:   EnumParam,
	catalog.Node:     NodeParam,
	catalog.VM:       VMParam,
}

// faultActions are the actions of the fault catalogue, which the runner
// builds with chaos.Lookup.
func faultActions() []ActionSpec {
	var out []ActionSpec
	for _, f := range catalog.All() {
		a := ActionSpec{Name: f.Name, Doc: f.Doc, Fault: true, Undoable: f.Undoable}
		for _, p := range f.Params {
			kind, ok := faultParamKinds[p.Kind]
			if !ok {
				panic(fmt.Sprintf("spec: %s.%s has a kind (%v) scenario files cannot check", f.Name, p.Name, p.Kind))
			}
			a.Params = append(a.Params, ParamSpec{Name: p.Name, Kind: kind, Required: p.Required,
				Enum: p.Choices, Default: p.Default, Doc: p.Doc})
		}
		out = append(out, a)
	}
	return out
}

var nodeParam = ParamSpec{Name: "node", Kind: NodeParam, Required: true, Doc: "the node's name"}

// runnerActions are the actions the runner performs itself.
var runnerActions = []ActionSpec{
	{Name: "node.ready",
		Doc:    "The node's Ready condition turns True again.",
		Params: []ParamSpec{nodeParam}},
	{Name: "node.create",
		Doc: "A Node object is created Ready: a new node, or a deleted one re-registering. " +
			"Later steps may name it.",
		Params: []ParamSpec{{Name: "node", Kind: NewNodeParam, Required: true, Doc: "the node's name"}}},
	{Name: "volume.attach",
		Doc: "The volumes are attached to the node, as when their pods are scheduled there.",
		Params: []ParamSpec{
			{Name: "volume", Kind: VolumeParam, Required: true, Doc: "a volume name or pattern"},
			nodeParam,
		}},
	{Name: "volume.detach",
		Doc: "The volumes are detached, as when their pods go away.",
		Params: []ParamSpec{
			{Name: "volume", Kind: VolumeParam, Required: true, Doc: "a volume name or pattern"},
			{Name: "node", Kind: NodeParam, Doc: "detach from this node only; default: from every node"},
		}},
}

// catalogue is every action a timeline step may take: the fault catalogue's
// (package catalog, shared with chaos, so the two cannot drift) and the
// runner's own.
var catalogue = slices.Concat(faultActions(), runnerActions)

// KnownActions lists every action a timeline step may take, sorted by name.
// The result is a copy.
func KnownActions() []ActionSpec {
	out := make([]ActionSpec, len(catalogue))
	for i, a := range catalogue {
		a.Params = slices.Clone(a.Params)
		for j := range a.Params {
			a.Params[j].Enum = slices.Clone(a.Params[j].Enum)
		}
		out[i] = a
	}
	slices.SortFunc(out, func(a, b ActionSpec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupAction returns the spec of the action called name.
func LookupAction(name string) (ActionSpec, bool) {
	for _, a := range KnownActions() {
		if a.Name == name {
			return a, true
		}
	}
	return ActionSpec{}, false
}

func lookupAction(name string) *ActionSpec {
	for i := range catalogue {
		if catalogue[i].Name == name {
			return &catalogue[i]
		}
	}
	return nil
}

func (a *ActionSpec) param(name string) *ParamSpec {
	for i := range a.Params {
		if a.Params[i].Name == name {
			return &a.Params[i]
		}
	}
	return nil
}

func (a *ActionSpec) paramNames() string {
	if len(a.Params) == 0 {
		return "none"
	}
	names := make([]string, len(a.Params))
	for i, p := range a.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// actionHint lists the actions that share name's family ("node." for
// node.fail), or all of them.
func actionHint(name string) string {
	family, _, ok := strings.Cut(name, ".")
	var same, all []string
	for _, a := range KnownActions() {
		all = append(all, a.Name)
		if ok && strings.HasPrefix(a.Name, family+".") {
			same = append(same, a.Name)
		}
	}
	if len(same) > 0 {
		return family + ".* actions: " + strings.Join(same, ", ")
	}
	return "known: " + strings.Join(all, ", ")
}

// InvariantSpec describes a built-in invariant.
type InvariantSpec struct {
	Name string
	Doc  string
}

var invariants = []InvariantSpec{
	{"single-writer", "No RWO volume is ever attached to two nodes at once; an RWX volume is attached to " +
		"two only during a live migration, for at most the migration window."},
	{"no-volume-lost", "Every declared volume keeps its disk and backing file on RDS for the whole run."},
	{"rpc-deadlines", "Every CSI RPC returns within its deadline, whatever RDS and the network do."},
	{"no-stale-claim", "No attachment claim outlives its node or VolumeAttachment by more than the grace " +
		"period plus one reconcile interval."},
	{"probe-follows-rds", "Probe reports not-ready while RDS is unreachable and ready once it is reachable " +
		"again, each within one backoff step."},
	{"no-restart-loop", "No component restarts unless the timeline crashes it."},
	{"attached-has-claim", "Every VolumeAttachment marked attached on a node that is not gone is backed by the " +
		"serving controller's claim for that node: Kubernetes never believes in an attachment the driver did not grant."},
	{"survivors-keep-volumes", "A volume mounted on a node that stays up keeps its NVMe/TCP controller through " +
		"an RDS outage of any length (ctrl_loss_tmo) and reconnects by itself: nothing is remounted or detached."},
	{"data-plane-single-writer", "With restrictHosts: no RWO volume has a working NVMe/TCP path on two running nodes " +
		"at once (a node cut off from the API server keeps running and counts), and a working path belongs only to a " +
		"node holding a claim: a lapsed claim's host is revoked before the claim is cleared, and a revoked path does not reconnect."},
}

// KnownInvariants lists the invariants a scenario may name, sorted by name.
func KnownInvariants() []InvariantSpec {
	out := slices.Clone(invariants)
	slices.SortFunc(out, func(a, b InvariantSpec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func knownInvariant(name string) bool {
	return slices.ContainsFunc(invariants, func(i InvariantSpec) bool { return i.Name == name })
}

func invariantNames() string {
	names := make([]string, 0, len(invariants))
	for _, i := range KnownInvariants() {
		names = append(names, i.Name)
	}
	return strings.Join(names, ", ")
}
