package spec

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// maxGlobs bounds the glob alternatives of one volume pattern ("{1..9}-*" has
// nine), each of which is matched against every volume.
const maxGlobs = 100

// Defaults for what a scenario file may leave out.
const (
	DefaultPool              = "storage-pool"
	DefaultPoolSize          = int64(8) << 40 // 8 TiB, the emulator's default
	DefaultReplicas          = 1
	DefaultGracePeriod       = 30 * time.Second
	DefaultReconcileInterval = 5 * time.Minute
	DefaultMigrationWindow   = 5 * time.Minute
	DefaultAccess            = RWO
	DefaultMode              = Filesystem
)

// Scenario is one parsed scenario file: the world at time zero, what happens
// to it and when, and what must hold.
type Scenario struct {
	Name        string
	Description string
	// Seed feeds every random choice of the run (latency jitter, backoff
	// jitter); the same scenario and seed give the same trace. Default 0.
	Seed     int64
	Topology Topology
	// Volumes exist, and are attached as declared, at time zero.
	Volumes []VolumeSet
	// Timeline is ordered by At; steps may share an instant and then run in
	// file order.
	Timeline []Step
	// Invariants are names from KnownInvariants, checked throughout the run.
	Invariants []string
}

// Topology is the cluster at time zero.
type Topology struct {
	// Nodes are the Kubernetes nodes, each running the node plugin; at least one.
	Nodes      []string
	RDS        RDSSpec
	Controller ControllerSpec
}

// RDSSpec is the storage server.
type RDSSpec struct {
	Pool string // default DefaultPool
	Size int64  // bytes; default DefaultPoolSize
}

// ControllerSpec is the controller deployment and its timing.
type ControllerSpec struct {
	Replicas int // default DefaultReplicas; more than one elect a leader
	// GracePeriod is how long a detach is held back in case the node comes
	// back (default DefaultGracePeriod).
	GracePeriod time.Duration
	// ReconcileInterval is the period of the attachment reconciler (default
	// DefaultReconcileInterval).
	ReconcileInterval time.Duration
	// MigrationWindow is how long an RWX volume may stay attached to two nodes
	// during a live migration (default DefaultMigrationWindow).
	MigrationWindow time.Duration
	// RestrictHosts runs the controller and the node plugins with
	// --restrict-hosts (storage-side access control; default false): the
	// simulated target then refuses and cuts hosts the export does not
	// allow, and data-plane-single-writer is checked.
	RestrictHosts bool
}

// Access is a volume's access mode.
type Access string

// Access modes.
const (
	RWO Access = "RWO" // ReadWriteOnce: one node at a time
	RWX Access = "RWX" // ReadWriteMany: two nodes during a live migration
)

// Mode is a volume's mode.
type Mode string

// Volume modes.
const (
	Filesystem Mode = "filesystem"
	Block      Mode = "block"
)

// VolumeSet is one entry of the volumes list: a name pattern and the volumes
// it stands for.
type VolumeSet struct {
	// Pattern is the name as written, braces and all: "db-{1..6}".
	Pattern string
	// Volumes are the concrete volumes, in expansion order, sharing every
	// attribute but the name.
	Volumes []Volume
	Line    int
}

// Volume is one concrete volume.
type Volume struct {
	Name   string
	Size   int64 // bytes
	Access Access
	Mode   Mode
	// AttachedTo is the node the volume is attached to at time zero; empty
	// when it is not attached.
	AttachedTo string
}

// Step is one instant of the timeline: an action, expectations, or both.
// The action runs first; the expectations are checked from the same instant.
type Step struct {
	// At is the virtual time since the start of the run. A file gives either
	// at (absolute) or after (relative to the previous step); both resolve here.
	At time.Duration
	Do *Action // nil when the step only expects
	// For, when not zero, is how long the action's fault lasts: the runner
	// undoes it at At+For. Zero means it lasts until undone by another action
	// or the end of the run. Only actions whose spec is Undoable take it.
	For    time.Duration
	Expect []Expectation
	Line   int
}

// Action is one entry of the catalogue (KnownActions) with its parameters,
// as written: the runner, or chaos.Lookup for faults, applies defaults and
// reads the values. Volume parameters may be patterns (see MatchVolumes).
type Action struct {
	Name   string
	Params map[string]string
	Line   int
}

// Duration is the virtual time the run lasts: the latest instant any step
// reaches, counting how long its fault lasts (For) and how long its
// expectations watch (Within, For).
func (s *Scenario) Duration() time.Duration {
	var end time.Duration
	for _, st := range s.Timeline {
		end = max(end, st.At+st.For)
		for _, e := range st.Expect {
			end = max(end, st.At+e.Window())
		}
	}
	return end
}

// AllVolumes lists every concrete volume, in file order.
func (s *Scenario) AllVolumes() []Volume {
	var out []Volume
	for _, vs := range s.Volumes {
		out = append(out, vs.Volumes...)
	}
	return out
}

// Volume returns the volume called name.
func (s *Scenario) Volume(name string) (Volume, bool) {
	for _, vs := range s.Volumes {
		for _, v := range vs.Volumes {
			if v.Name == name {
				return v, true
			}
		}
	}
	return Volume{}, false
}

// MatchVolumes returns the volumes a pattern names, in file order: a name, a
// glob ("db-*", "vm-[12]", as path.Match reads it), or a brace pattern of
// either ("db-{1,3}", "{db,vm}-*"). Every alternative must match at least one
// volume, so that a typo is an error, not an empty set.
func (s *Scenario) MatchVolumes(pattern string) ([]Volume, error) {
	alts, err := Expand(pattern)
	if err != nil {
		return nil, err
	}
	all := s.AllVolumes()
	hit := make([]bool, len(all))
	byName := make(map[string]int, len(all))
	for i, v := range all {
		byName[v.Name] = i
	}
	globs := 0
	for _, a := range alts {
		found := false
		if !strings.ContainsAny(a, `*?[\`) {
			if i, ok := byName[a]; ok {
				hit[i], found = true, true
			}
		} else if globs++; globs > maxGlobs {
			return nil, fmt.Errorf("%q stands for more than %d globs", pattern, maxGlobs)
		} else {
			if _, err := path.Match(a, ""); err != nil {
				return nil, fmt.Errorf("bad pattern %q: %v", a, err)
			}
			for i, v := range all {
				if ok, _ := path.Match(a, v.Name); ok {
					hit[i], found = true, true
				}
			}
		}
		if !found {
			if a == pattern {
				return nil, fmt.Errorf("%q matches no volume", pattern)
			}
			return nil, fmt.Errorf("%q (from %q) matches no volume", a, pattern)
		}
	}
	var out []Volume
	for i, v := range all {
		if hit[i] {
			out = append(out, v)
		}
	}
	return out, nil
}
