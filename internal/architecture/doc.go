// Package architecture holds the tests that keep the module's shape: the
// layers only point down (cmd → scenarios → chaos → driver, emulator →
// internal), and the controller is assembled in one place
// (driver/controlplane), so the scenario runner runs what the binary runs.
//
// It has no code of its own; the rules are its tests, over the parsed
// source of the whole module.
package architecture
