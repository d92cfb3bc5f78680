package spec

import (
	"slices"
	"strings"
)

// ActionSpec describes an action a timeline step may take.
type ActionSpec struct {
	Name string
	Doc  string
	// Fault is true for the actions of the fault catalogue (package chaos),
	// which the runner builds with chaos.Lookup(Name, Params); the others the
	// runner performs itself.
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

var nodeParam = ParamSpec{Name: "node", Kind: NodeParam, Required: true, Doc: "the node's name"}

// catalogue mirrors the fault catalogue of package chaos (names, parameter
// names, which are required) and adds the actions the runner performs
// itself. It is kept in this leaf package so that parsing a scenario needs
// neither the emulator nor client-go.
var catalogue = []ActionSpec{
	{Name: "rds.crash", Fault: true, Undoable: true,
		Doc: "The RDS crashes: connections drop, the SSH port closes, disks survive. Undo restarts it."},
	{Name: "rds.restart", Fault: true,
		Doc: "The RDS comes back after a crash. An event, not a state: it cannot be given a duration."},
	{Name: "rds.hang", Fault: true, Undoable: true,
		Doc: "The RDS accepts connections and commands but never answers until undone."},
	{Name: "rds.latency", Fault: true, Undoable: true,
		Doc: "Every RDS command takes latency longer.",
		Params: []ParamSpec{
			{Name: "latency", Kind: DurationParam, Required: true, Doc: "extra time per command, e.g. 2s"},
		}},
	{Name: "rds.fail-next", Fault: true, Undoable: true,
		Doc: "The next count commands print a RouterOS error instead of running.",
		Params: []ParamSpec{
			{Name: "count", Kind: CountParam, Default: "1", Doc: "how many commands fail"},
			{Name: "text", Kind: StringParam, Doc: `the error RouterOS prints, e.g. "failure: not enough space"`},
		}},
	{Name: "rds.refuse", Fault: true, Undoable: true,
		Doc: "The RDS closes every new connection right after accepting it."},
	{Name: "rds.slow-reconnect", Fault: true, Undoable: true,
		Doc: "The RDS crashes and refuses connections for delay after coming back.",
		Params: []ParamSpec{
			{Name: "delay", Kind: DurationParam, Required: true, Doc: "how long connections are refused, e.g. 90s"},
		}},
	{Name: "network.timeout", Fault: true, Undoable: true,
		Doc: "The link between the controller and RDS goes dark.",
		Params: []ParamSpec{
			{Name: "timeout", Kind: DurationParam, Default: "0s", Doc: "close connections after this long; 0 never"},
		}},
	{Name: "network.reset_peer", Fault: true, Undoable: true,
		Doc: "Connections between the controller and RDS are reset.",
		Params: []ParamSpec{
			{Name: "timeout", Kind: DurationParam, Default: "0s", Doc: "reset each connection this long after its dial; 0 at once"},
		}},
	{Name: "network.latency", Fault: true, Undoable: true,
		Doc: "Every chunk between the controller and RDS arrives latency ± jitter later.",
		Params: []ParamSpec{
			{Name: "latency", Kind: DurationParam, Required: true, Doc: "one-way delay, e.g. 100ms"},
			{Name: "jitter", Kind: DurationParam, Default: "0s", Doc: "spread around latency"},
			{Name: "seed", Kind: SeedParam, Doc: "seed of the jitter; default: the scenario's seed"},
		}},
	{Name: "node.not-ready", Fault: true, Undoable: true,
		Doc: "The node's Ready condition turns Unknown (heartbeats stopped) or False.",
		Params: []ParamSpec{
			nodeParam,
			{Name: "status", Kind: EnumParam, Enum: []string{"Unknown", "False"}, Default: "Unknown", Doc: "the condition's status"},
		}},
	{Name: "node.ready",
		Doc:    "The node's Ready condition turns True again.",
		Params: []ParamSpec{nodeParam}},
	{Name: "node.delete", Fault: true, Undoable: true,
		Doc:    "The Node object is deleted, as an operator removes a dead node. Undo re-creates it.",
		Params: []ParamSpec{nodeParam}},
	{Name: "node.create",
		Doc: "A Node object is created Ready: a new node, or a deleted one re-registering. " +
			"Later steps may name it.",
		Params: []ParamSpec{{Name: "node", Kind: NewNodeParam, Required: true, Doc: "the node's name"}}},
	{Name: "node.out-of-service", Fault: true, Undoable: true,
		Doc:    "The operator taints the node out-of-service.",
		Params: []ParamSpec{nodeParam}},
	{Name: "controller.crash", Fault: true, Undoable: true,
		Doc: "The controller leader's process dies without releasing its Lease; its in-memory state is lost. Undo restarts it."},
	{Name: "controller.restart", Fault: true,
		Doc: "Crashed controller replicas start again and rebuild their state from VolumeAttachments."},
	{Name: "leader.loss", Fault: true,
		Doc: "The controller leader loses its lease; another replica (or the same) takes over."},
	{Name: "kubevirt.migrate", Fault: true,
		Doc: "A KubeVirt live migration moves a VM, attaching its disk on the target and detaching it from the source.",
		Params: []ParamSpec{
			{Name: "vm", Kind: VMParam, Required: true, Doc: "the VM, named by its disk volume"},
			{Name: "to", Kind: NodeParam, Required: true, Doc: "the target node"},
			{Name: "order", Kind: EnumParam, Enum: []string{"attach-first", "detach-first"}, Default: "attach-first",
				Doc: "attach on the target before detaching from the source, or the reverse"},
			{Name: "delay", Kind: DurationParam, Default: "0s", Doc: "time between the two halves"},
		}},
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
	{"survivors-keep-volumes", "A volume mounted on a node that stays up keeps its NVMe/TCP controller through " +
		"an RDS outage of any length (ctrl_loss_tmo) and reconnects by itself: nothing is remounted or detached."},
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
