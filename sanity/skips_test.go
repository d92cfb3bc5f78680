package sanity

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadSkips(t *testing.T) {
	l, err := ReadSkips("skips.txt")
	if err != nil || len(l) == 0 {
		t.Fatalf("shipped list: %d entries, %v", len(l), err)
	}
	if l.Reason("ModifyVolume [Controller Server] should fail if no volume id is given") == "" || l.Reason("Node Service NodePublishVolume should work") != "" {
		t.Fatal("Reason matches the wrong specs")
	}
	bad := filepath.Join(t.TempDir(), "skips.txt")
	if err := os.WriteFile(bad, []byte("# ok\nModifyVolume\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSkips(bad); err == nil {
		t.Fatal("a skip without a reason was accepted")
	}
}
