// Package quietlog is the TestMain of packages whose code logs through klog:
// the log stays out of a passing run's output unless the run is verbose.
//
// It is test support: only _test.go files import it.
package quietlog
