// Package scenarios holds the shipped scenario files (incidents/ and the
// files beside this one) and the tests that run each of them: green, the
// same trace for the same seed, and red when a known defect is planted.
// The engine lives in engine/, the file format in spec/, the runner in
// runner/, the random schedules in swarm/, the report in report/.
package scenarios
