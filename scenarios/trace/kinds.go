package trace

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kind names what an event records. It is a defined string type so that a
// kind is not mistaken for a field name or a value; an untyped string
// constant still converts, so a writer not yet moved to these constants
// compiles, and Check names what it wrote.
type Kind string

// The kinds, in the order of the catalogue below.
const (
	KindWorld            Kind = "world"              // the World was built
	KindController       Kind = "controller"         // a controller replica changed state
	KindRDSState         Kind = "rds.state"          // the RDS connection manager changed state
	KindRDSConnect       Kind = "rds.connect"        // a connect to RDS returned
	KindRDSHealth        Kind = "rds.health"         // a health check of the connection returned
	KindRDSCommand       Kind = "rds.command"        // a RouterOS command returned
	KindProbe            Kind = "probe"              // the CSI Probe answer changed
	KindAttachmentEvent  Kind = "attachment.event"   // the attachment rules reported an event
	KindK8sEvent         Kind = "k8s.event"          // the controller recorded a Kubernetes event
	KindMetric           Kind = "metric"             // a controller metric sample changed
	KindRPC              Kind = "rpc"                // a CSI call returned
	KindVA               Kind = "va"                 // a VolumeAttachment changed (the external-attacher's view)
	KindADC              Kind = "adc"                // the attach-detach controller confirmed or failed an attach
	KindKubelet          Kind = "kubelet"            // the kubelet mounted or unmounted a volume
	KindPod              Kind = "pod"                // a volume's pod was scheduled, deleted or evicted
	KindNVMe             Kind = "nvme"               // a node's NVMe/TCP controller of a volume changed state
	KindNode             Kind = "node"               // a node changed state
	KindKubeVirt         Kind = "kubevirt"           // a live migration started, completed or aborted
	KindAction           Kind = "action"             // a timeline action the engine performs itself
	KindActionRefused    Kind = "action.refused"     // the runner refused a timeline action
	KindFaultApplied     Kind = "fault.applied"      // a catalogued fault started
	KindFaultApplyFailed Kind = "fault.apply-failed" // a catalogued fault could not start
	KindFaultEnded       Kind = "fault.ended"        // a fault was undone
	KindStep             Kind = "step"               // a step of a programmatic timeline began (the engine's tests)
	KindExpect           Kind = "expect"             // an expectation was decided
	KindInvariant        Kind = "invariant"          // an invariant was violated
	KindTraceError       Kind = "trace.error"        // an event could not be encoded
)

// Field names. One name means one thing across kinds: "node" is always a
// node's name, "err" always an error reduced to its kind.
const (
	FieldAction    = "action"
	FieldAfter     = "after" // how long it took, as a Go duration
	FieldCmd       = "cmd"
	FieldCode      = "code" // a gRPC code
	FieldErr       = "err"
	FieldFailures  = "failures"
	FieldFault     = "fault"
	FieldFrom      = "from"
	FieldGrace     = "grace"
	FieldKey       = "key"
	FieldMethod    = "method"
	FieldMsg       = "msg"
	FieldName      = "name"
	FieldNode      = "node"
	FieldNodes     = "nodes"
	FieldObject    = "object"
	FieldOk        = "ok"
	FieldOp        = "op"
	FieldOrder     = "order"
	FieldOther     = "other"
	FieldOut       = "out"
	FieldPrevious  = "previous"
	FieldReady     = "ready"
	FieldReason    = "reason"
	FieldReconcile = "reconcile"
	FieldReplica   = "replica"
	FieldReplicas  = "replicas"
	FieldRetryIn   = "retryIn"
	FieldRetryInNs = "retryInNs"
	FieldSeed      = "seed"
	FieldState     = "state"
	FieldTo        = "to"
	FieldType      = "type"
	FieldValue     = "value"
	FieldVM        = "vm"
	FieldVolume    = "volume"
	FieldWithin    = "within"
)

// ParamPrefix starts the fields that carry a timeline action's parameters
// ("param.node"); only kinds whose catalogue entry says so carry them.
const ParamPrefix = "param."

// FaultKey is how fault.ended names the fault it ends: the fault's name, and
// for a fault on one node "/" and the node, so that two nodes can be down at
// once. fault.applied carries the name and the node as a parameter.
func FaultKey(name, node string) string {
	if node != "" {
		return name + "/" + node
	}
	return name
}

type entry struct {
	fields []string
	params bool
}

// catalogue is the schema: the fields each kind may carry.
var catalogue = map[Kind]entry{
	KindWorld:            {fields: []string{FieldSeed, FieldNodes, FieldReplicas, FieldGrace, FieldReconcile}},
	KindController:       {fields: []string{FieldReplica, FieldState}},
	KindRDSState:         {fields: []string{FieldState, FieldPrevious, FieldFailures, FieldRetryIn, FieldRetryInNs, FieldErr}},
	KindRDSConnect:       {fields: []string{FieldErr}},
	KindRDSHealth:        {fields: []string{FieldErr}},
	KindRDSCommand:       {fields: []string{FieldCmd, FieldErr, FieldOut}},
	KindProbe:            {fields: []string{FieldReady}},
	KindAttachmentEvent:  {fields: []string{FieldType, FieldVolume, FieldNode, FieldOther, FieldMsg}},
	KindK8sEvent:         {fields: []string{FieldType, FieldReason, FieldObject, FieldMsg}},
	KindMetric:           {fields: []string{FieldName, FieldValue}},
	KindRPC:              {fields: []string{FieldMethod, FieldKey, FieldCode}},
	KindVA:               {fields: []string{FieldVolume, FieldNode, FieldOp, FieldCode}},
	KindADC:              {fields: []string{FieldVolume, FieldNode, FieldOp, FieldRetryIn}},
	KindKubelet:          {fields: []string{FieldVolume, FieldNode, FieldOp, FieldCode, FieldMsg}},
	KindPod:              {fields: []string{FieldVolume, FieldNode, FieldOp}},
	KindNVMe:             {fields: []string{FieldVolume, FieldNode, FieldState, FieldAfter}},
	KindNode:             {fields: []string{FieldNode, FieldState}},
	KindKubeVirt:         {fields: []string{FieldVM, FieldFrom, FieldTo, FieldOrder, FieldOp}},
	KindAction:           {fields: []string{FieldAction}, params: true},
	KindActionRefused:    {fields: []string{FieldAction, FieldErr}},
	KindFaultApplied:     {fields: []string{FieldFault}, params: true},
	KindFaultApplyFailed: {fields: []string{FieldFault, FieldErr}, params: true},
	KindFaultEnded:       {fields: []string{FieldFault, FieldErr}},
	KindStep:             {fields: []string{FieldName}},
	KindExpect:           {fields: []string{FieldName, FieldOk, FieldAfter, FieldWithin, FieldMsg}},
	KindInvariant:        {fields: []string{FieldName, FieldOk, FieldMsg}},
	KindTraceError:       {fields: []string{FieldErr}},
}

// Kinds lists every kind of the schema, sorted.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(catalogue))
	for k := range catalogue {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Check says whether e follows the schema: a kind of the catalogue that
// carries only the fields its entry names. An engine writing in other names
// than the report reads fails here, rather than leave a swim lane empty.
func Check(e Event) error {
	entry, ok := catalogue[e.Kind]
	if !ok {
		return fmt.Errorf("trace: kind %q is not in the schema", e.Kind)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) { // the first wrong one, always the same
		if entry.params && strings.HasPrefix(k, ParamPrefix) && len(k) > len(ParamPrefix) {
			continue
		}
		if !slices.Contains(entry.fields, k) {
			return fmt.Errorf("trace: kind %q carries field %q, not in the schema", e.Kind, k)
		}
	}
	return nil
}
