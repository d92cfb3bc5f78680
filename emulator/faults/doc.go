// Package faults holds the emulator's deliberate misbehaviour: the switches that
// make an RDS slow, wrong, stuck or unreachable on purpose.
//
// Real outages are what rds-csi is built for, so every failure mode the driver must
// survive needs a way to happen on demand, repeatably, in tests and in the scenario
// runner. The Injector is consulted by the SSH front end before each command and
// each new connection; crash and restart (which need the listener) live on the
// Emulator itself. The chaos/ catalogue drives these switches, in-process or through
// the emulator's control endpoint.
package faults
