// Package bubble runs a function inside a testing/synctest bubble, from a
// test or from a plain binary, so that the scenario engine can ask the Go
// runtime itself whether every goroutine of a simulated world is blocked on
// something only the world can release (synctest.Wait).
//
// synctest.Test needs a running *testing.T. A test binary has one in each
// test (Host registers it); a plain binary gets one from testing.Main, the
// exported entry point kept for programs that run tests outside go test
// (Main). Bubbles hang off that host; nothing else of the testing package
// is used, and a bubble's failures come back as errors, never as test
// failures.
package bubble
