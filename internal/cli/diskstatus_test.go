package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/smart"
)

// TestDiskStatus: fshealth status lists each disk's health, sorted, with
// hostile strings quoted, and nothing when no disk was read.
func TestDiskStatus(t *testing.T) {
	var b bytes.Buffer
	writeDiskStatus(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no disks: %q", b.String())
	}
	yes, no, pending := true, false, uint64(3)
	writeDiskStatus(&b, map[string]*smart.Health{
		"/dev/sdb": {Device: "/dev/sdb", Model: "EVIL\nDISK", Serial: "S2", Passed: &no, Pending: &pending, Checked: time.Unix(0, 0)},
		"/dev/sda": {Device: "/dev/sda", Model: "GOOD DISK", Serial: "S1", Passed: &yes, Checked: time.Unix(0, 0)},
	})
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DISK") || !strings.HasPrefix(lines[1], "/dev/sda") || !strings.HasPrefix(lines[2], "/dev/sdb") {
		t.Fatalf("status:\n%s", out)
	}
	if !strings.Contains(lines[1], "PASSED") || !strings.Contains(lines[2], "FAILED, 3 pending") || !strings.Contains(lines[2], `"EVIL\nDISK"`) {
		t.Errorf("status:\n%s", out)
	}
}
