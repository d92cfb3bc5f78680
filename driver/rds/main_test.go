package rds

import (
	"testing"

	"github.com/rds-csi/rds-csi/internal/quietlog"
)

// TestMain keeps klog quiet unless -v is given (the benchmarks' figures
// were lost among the manager's and client's log lines).
func TestMain(m *testing.M) { quietlog.Main(m) }
