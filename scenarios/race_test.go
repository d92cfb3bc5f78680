//go:build race

package scenarios

// Under the race detector every run is several times slower; the full
// 20-run determinism check runs in the race-free scenario lane (make
// scenarios), which CI also runs.
const raceEnabled = true
