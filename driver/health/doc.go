// Package health turns what the driver sees of a volume into CSI volume
// health (spec v1.13's VolumeHealth, which replaced VolumeCondition): the
// controller's view of the disk on RDS and the node's view of its device and
// mounts each become a list of entries, an empty list meaning healthy.
//
// It decides nothing by itself doing I/O: callers observe, this package
// names what they saw, with one reason per kind of trouble so that
// external-health-monitor events and alerts can match on it.
package health
