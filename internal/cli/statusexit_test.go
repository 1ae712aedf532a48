package cli

import (
	"errors"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/store"
)

// TestStatusExit: status exits 1 when a file system is unhealthy or the
// history is not recorded, else 3 when the daemon is not running, else 0.
func TestStatusExit(t *testing.T) {
	healthy := store.FilesystemStatus{}
	sick := store.FilesystemStatus{FirstError: time.Unix(1, 0)}
	degraded := &daemon.RuntimeStatus{Degraded: &daemon.Degraded{}}
	for _, tc := range []struct {
		name string
		pid  int
		rt   *daemon.RuntimeStatus
		fss  []store.FilesystemStatus
		want int
	}{
		{"healthy, running", 42, nil, []store.FilesystemStatus{healthy, healthy}, 0},
		{"nothing watched, running", 42, nil, nil, 0},
		{"one unhealthy, running", 42, nil, []store.FilesystemStatus{healthy, sick}, 1},
		{"unhealthy, stopped", 0, nil, []store.FilesystemStatus{sick}, 1},
		{"healthy, stopped", 0, nil, []store.FilesystemStatus{healthy}, 3},
		{"history degraded", 42, degraded, []store.FilesystemStatus{healthy}, 1},
	} {
		err := statusExit(tc.pid, tc.rt, tc.fss)
		got := 0
		var ee *exitError
		if errors.As(err, &ee) {
			got = ee.code
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}
