// Package control is a running emulator's switchboard: a small HTTP API on a
// local address that crashes, restarts and breaks the emulator on purpose.
//
// It exists so that faults can be injected from outside the process: from a shell
// during a demo, from chaos tooling on a kind cluster, or from an end-to-end test
// that runs the emulator as a separate binary. In-process callers use the
// emulator's Go API directly.
package control
