package controlplane_test

import (
	"testing"

	"github.com/rds-csi/rds-csi/internal/quietlog"
)

// TestMain keeps klog quiet unless -v is given.
func TestMain(m *testing.M) { quietlog.Main(m) }
