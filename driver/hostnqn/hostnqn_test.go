package hostnqn

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/driver/rds"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		node, want string
	}{
		{"node-1", Prefix + "node-1"},
		{"worker.example.com", Prefix + "worker.example.com"},
		{"a", Prefix + "a"},
		{strings.Repeat("a", maxNQNLen-len(Prefix)), Prefix + strings.Repeat("a", maxNQNLen-len(Prefix))},
	} {
		got, err := For(tc.node)
		if err != nil || got != tc.want {
			t.Errorf("For(%q) = %q, %v; want %q", tc.node, got, err, tc.want)
			continue
		}
		// What For returns must pass the driver's own NQN rule: it goes
		// on RouterOS and nvme-cli command lines.
		if err := rds.ValidateNQN(got); err != nil {
			t.Errorf("For(%q) = %q, which rds.ValidateNQN refuses: %v", tc.node, got, err)
		}
		if back, ok := Node(got); !ok || back != tc.node {
			t.Errorf("Node(%q) = %q, %v; want %q", got, back, ok, tc.node)
		}
	}
}

func TestForRefuses(t *testing.T) {
	for _, node := range []string{"", "Node-1", "-a", "a-", "a b", `a"b`, "a;b", "a$b", "a:b", "a/b", "ü",
		strings.Repeat("a", maxNQNLen-len(Prefix)+1)} {
		if got, err := For(node); !errors.Is(err, ErrInvalidNodeID) {
			t.Errorf("For(%q) = %q, %v; want ErrInvalidNodeID", node, got, err)
		}
		if _, err := HostID(node); !errors.Is(err, ErrInvalidNodeID) {
			t.Errorf("HostID(%q): %v; want ErrInvalidNodeID", node, err)
		}
	}
}

func TestNodeRefusesOtherNames(t *testing.T) {
	for _, nqn := range []string{Nobody, "", Prefix, "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		Prefix + "Upper", Prefix + "a:b"} {
		if n, ok := Node(nqn); ok {
			t.Errorf("Node(%q) = %q, true; want false", nqn, n)
		}
	}
	if err := rds.ValidateNQN(Nobody); err != nil {
		t.Errorf("Nobody %q is not a valid NQN: %v", Nobody, err)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestHostIDIsStableAndDistinct(t *testing.T) {
	a1, err := HostID("node-a")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := HostID("node-a")
	b, _ := HostID("node-b")
	if a1 != a2 {
		t.Errorf("HostID(node-a) changed between calls: %s, %s", a1, a2)
	}
	if a1 == b {
		t.Errorf("node-a and node-b share host ID %s", a1)
	}
	if !uuidRE.MatchString(a1) {
		t.Errorf("HostID = %q, not a version-5 UUID", a1)
	}
	// Pinned: a change of derivation gives every node a new identity,
	// which a target holding the old one may refuse.
	if want := "6bc0bd83-e7eb-5b80-b33c-11a7da608b3f"; a1 != want {
		t.Errorf("HostID(node-a) = %s, was %s: every node's host ID would change on upgrade", a1, want)
	}
}
