package hostnqn

import (
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined over SHA-1; it names, it does not protect.
	"errors"
	"fmt"
	"regexp"
)

// Prefix is what every derived host NQN starts with.
const Prefix = "nqn.2026-12.io.rds-csi:node:"

// Nobody is the allow-list value of an export that no node holds: RouterOS
// reads an empty nvme-tcp-server-allow-host-name as "any host", so "no
// host" has to be a name that no node presents. It has the shape of a
// host NQN and the ':' that no derived node NQN has after Prefix's node
// part.
const Nobody = "nqn.2026-12.io.rds-csi:nobody"

// maxNQNLen is the NVMe base specification's NQN field size.
const maxNQNLen = 223

// nodeIDRE is a Kubernetes node name (RFC 1123 subdomain, lower case).
var nodeIDRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// ErrInvalidNodeID: the node ID cannot be turned into a host NQN.
var ErrInvalidNodeID = errors.New("hostnqn: node ID cannot name an NVMe host")

// For returns the host NQN of node.
func For(node string) (string, error) {
	if !nodeIDRE.MatchString(node) || len(Prefix)+len(node) > maxNQNLen {
		return "", fmt.Errorf("%w: %q must be a lower-case RFC 1123 name of at most %d bytes", ErrInvalidNodeID,
			truncate(node, 64), maxNQNLen-len(Prefix))
	}
	return Prefix + node, nil
}

// Node returns the node ID a host NQN derived by For names, or false for
// any other NQN (Nobody, a hand-set name, another scheme).
func Node(nqn string) (string, bool) {
	if len(nqn) <= len(Prefix) || nqn[:len(Prefix)] != Prefix {
		return "", false
	}
	node := nqn[len(Prefix):]
	if _, err := For(node); err != nil {
		return "", false
	}
	return node, true
}

// namespace is the UUIDv5 namespace of host IDs (a random UUID, fixed
// forever: changing it changes every node's host ID).
var namespace = [16]byte{0x3c, 0x1f, 0x8e, 0x52, 0x6a, 0x0b, 0x4d, 0x4e, 0x9b, 0x27, 0x5e, 0x81, 0xc4, 0x0d, 0x72, 0x19}

// HostID returns the host ID (a UUID, lower-case hex with dashes) that goes
// with the host NQN of node.
func HostID(node string) (string, error) {
	nqn, err := For(node)
	if err != nil {
		return "", err
	}
	h := sha1.New() //nolint:gosec // see the import
	h.Write(namespace[:])
	h.Write([]byte(nqn))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
