package catalog

import (
	"slices"
	"strings"
)

// Fault names: what a scenario file writes after do: and a trace records.
const (
	RDSCrash          = "rds.crash"
	RDSRestart        = "rds.restart"
	RDSHang           = "rds.hang"
	RDSLatency        = "rds.latency"
	RDSFailNext       = "rds.fail-next"
	RDSRefuse         = "rds.refuse"
	RDSSlowReconnect  = "rds.slow-reconnect"
	NetworkTimeout    = "network.timeout"
	NetworkResetPeer  = "network.reset_peer"
	NetworkLatency    = "network.latency"
	NodeNotReady      = "node.not-ready"
	NodeDelete        = "node.delete"
	NodeOutOfService  = "node.out-of-service"
	ControllerCrash   = "controller.crash"
	ControllerRestart = "controller.restart"
	LeaderLoss        = "leader.loss"
	KubeVirtMigrate   = "kubevirt.migrate"
)

// Fault is one catalogued fault.
type Fault struct {
	Name string
	Doc  string
	// Undoable: the fault starts a state that its Undo ends, so a scenario
	// step may give it a duration (for: 2m). The others are events
	// (rds.restart, leader.loss): applying them is all there is.
	Undoable bool
	Params   []Param
}

// Param is one parameter of a fault. Values are strings, as a scenario file
// gives them; Kind says how to read them.
type Param struct {
	Name     string
	Kind     Kind
	Required bool
	// Default is what the fault assumes when the parameter is absent; empty
	// means none (Doc then says what absence means).
	Default string
	// Choices lists the accepted values of a Choice parameter, the default
	// first.
	Choices []string
	Doc     string
}

// Kind says what a parameter's value is.
type Kind int

// Parameter kinds.
const (
	// String is any one-line text.
	String Kind = iota
	// Duration is a non-negative Go duration: 250ms, 90s, 3h.
	Duration
	// Count is a whole number of at least 1.
	Count
	// Seed is an unsigned 64-bit decimal number.
	Seed
	// Choice is one of Param.Choices.
	Choice
	// Node names a Kubernetes node.
	Node
	// VM names a virtual machine by its disk volume.
	VM
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Duration:
		return "duration"
	case Count:
		return "count"
	case Seed:
		return "seed"
	case Choice:
		return "choice"
	case Node:
		return "node"
	case VM:
		return "vm"
	}
	return "unknown"
}

var nodeParam = Param{Name: "node", Kind: Node, Required: true, Doc: "the node's name"}

var faults = []Fault{
	{Name: RDSCrash, Undoable: true,
		Doc: "The RDS crashes: every connection drops (mid-command if need be) and the SSH port closes; " +
			"disks survive. Undo restarts it."},
	{Name: RDSRestart,
		Doc: "The RDS comes back after a crash, listening on the same address. If it is serving, " +
			"it reboots: connections drop and it serves again at once."},
	{Name: RDSHang, Undoable: true,
		Doc: "The RDS accepts connections and commands but never answers: every command blocks until Undo, " +
			"then completes."},
	{Name: RDSLatency, Undoable: true,
		Doc: "Every RDS command takes latency longer, measured on the clock. Undo restores the previous latency.",
		Params: []Param{
			{Name: "latency", Kind: Duration, Required: true, Doc: "extra time per command, e.g. 2s"},
		}},
	{Name: RDSFailNext, Undoable: true,
		Doc: "The next count commands print a RouterOS error text instead of running. " +
			"Undo cancels the failures not yet used.",
		Params: []Param{
			{Name: "count", Kind: Count, Default: "1", Doc: "how many commands fail"},
			// The emulator's own default: a plain RouterOS failure that says
			// in every trace that it was injected.
			{Name: "text", Kind: String, Default: "failure: injected fault",
				Doc: `the error RouterOS prints, e.g. "failure: not enough space"`},
		}},
	{Name: RDSRefuse, Undoable: true,
		Doc: "The RDS closes every new connection right after accepting it; existing connections keep " +
			"working. Undo accepts again."},
	{Name: RDSSlowReconnect, Undoable: true,
		Doc: "The RDS crashes and comes back slowly: the port reopens at once but every connection is " +
			"closed right after accept until delay has passed on the clock. Undo accepts at once.",
		Params: []Param{
			{Name: "delay", Kind: Duration, Required: true, Doc: "how long connections are refused after the crash, e.g. 90s"},
		}},
	{Name: NetworkTimeout, Undoable: true,
		Doc: "toxiproxy's timeout: the link goes dark. Connections stay open but nothing gets through; " +
			"new dials hang. With a timeout, connections close and held dials fail after it. " +
			"Undo delivers what was held and lets held dials through.",
		Params: []Param{
			{Name: "timeout", Kind: Duration, Default: "0s", Doc: "close connections and fail held dials after this long; 0 never"},
		}},
	{Name: NetworkResetPeer, Undoable: true,
		Doc: "toxiproxy's reset_peer: connections are reset (connection reset by peer), open ones and every new " +
			"one, at once or after timeout. Undo stops resetting new connections.",
		Params: []Param{
			{Name: "timeout", Kind: Duration, Default: "0s", Doc: "reset each connection this long after Apply or its dial; 0 at once"},
		}},
	{Name: NetworkLatency, Undoable: true,
		Doc: "toxiproxy's latency: every chunk, in both directions, arrives latency ± jitter later, on the clock. " +
			"Undo releases held chunks at once.",
		Params: []Param{
			{Name: "latency", Kind: Duration, Required: true, Doc: "one-way delay, e.g. 250ms"},
			{Name: "jitter", Kind: Duration, Default: "0s", Doc: "the delay of what arrives at one instant is drawn uniformly from [latency-jitter, latency+jitter)"},
			{Name: "seed", Kind: Seed, Doc: "seed of the jitter streams; default: the scenario's seed"},
		}},
	{Name: NodeNotReady, Undoable: true,
		Doc: "The node's Ready condition turns Unknown (the kubelet stopped posting) or False, with the " +
			"transition time from the clock. Undo makes it Ready again.",
		Params: []Param{
			nodeParam,
			{Name: "status", Kind: Choice, Choices: []string{"Unknown", "False"}, Default: "Unknown",
				Doc: "Unknown (heartbeats stopped, as the node controller writes it) or False (the kubelet reports not ready)"},
		}},
	{Name: NodeDelete, Undoable: true,
		Doc: "The Node object is deleted, as an operator removes a dead node. " +
			"Undo re-creates it Ready, as its kubelet re-registering would.",
		Params: []Param{nodeParam}},
	{Name: NodeOutOfService, Undoable: true,
		Doc: "The operator declares the node down: taint node.kubernetes.io/out-of-service=nodeshutdown:NoExecute " +
			"with the time added from the clock. Undo removes the taint.",
		Params: []Param{nodeParam}},
	{Name: ControllerCrash, Undoable: true,
		Doc: "The controller leader's process dies without releasing its Lease; its in-memory state is lost. " +
			"A standby takes over when the Lease expires. Undo restarts the crashed replica."},
	{Name: ControllerRestart,
		Doc: "Crashed controller replicas start again; each rebuilds its state from the VolumeAttachments " +
			"before serving, as a standby or as the leader when the Lease is free."},
	{Name: LeaderLoss,
		Doc: "The controller leader cannot renew its Lease (an API server hiccup): it exits and comes back as a " +
			"standby; another replica, or the same one, leads once the Lease expires."},
	{Name: KubeVirtMigrate,
		Doc: "A KubeVirt live migration moves a VM: its disk is attached on the target and detached from the source, " +
			"in the given order, delay apart.",
		Params: []Param{
			{Name: "vm", Kind: VM, Required: true, Doc: "the VM, named by its disk volume"},
			{Name: "to", Kind: Node, Required: true, Doc: "the target node"},
			{Name: "order", Kind: Choice, Choices: []string{"attach-first", "detach-first"}, Default: "attach-first",
				Doc: "attach-first (KubeVirt's way) or detach-first"},
			{Name: "delay", Kind: Duration, Default: "0s", Doc: "time between the two halves"},
		}},
}

// All lists every catalogued fault, sorted by name. The result is a copy.
func All() []Fault {
	out := make([]Fault, len(faults))
	for i, f := range faults {
		out[i] = f.clone()
	}
	slices.SortFunc(out, func(a, b Fault) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns a copy of the fault called name.
func Lookup(name string) (Fault, bool) {
	for _, f := range faults {
		if f.Name == name {
			return f.clone(), true
		}
	}
	return Fault{}, false
}

// Names lists every fault's name, sorted.
func Names() []string {
	names := make([]string, len(faults))
	for i, f := range faults {
		names[i] = f.Name
	}
	slices.Sort(names)
	return names
}

// Param returns the parameter called name.
func (f Fault) Param(name string) (Param, bool) {
	i := slices.IndexFunc(f.Params, func(p Param) bool { return p.Name == name })
	if i < 0 {
		return Param{}, false
	}
	return f.Params[i], true
}

// ParamNames lists the parameters in catalogue order, "none" when there are
// none: what an error about an unknown parameter offers instead.
func (f Fault) ParamNames() string {
	if len(f.Params) == 0 {
		return "none"
	}
	names := make([]string, len(f.Params))
	for i, p := range f.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

func (f Fault) clone() Fault {
	f.Params = slices.Clone(f.Params)
	for i := range f.Params {
		f.Params[i].Choices = slices.Clone(f.Params[i].Choices)
	}
	return f
}
