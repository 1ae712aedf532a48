package cli

import (
	"errors"
	"strings"
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

// TestStatusShowsARunningAction: an action that started and has not
// finished (a long scrub) shows as running, since when, in the table and
// with its start time in the JSON.
func TestStatusShowsARunningAction(t *testing.T) {
	started := time.Now().Add(-90 * time.Second)
	fss := []store.FilesystemStatus{{Key: "u1", Device: "/dev/sdz1", FSType: "btrfs", Mountpoints: []string{"/data"},
		LastAction: &store.Action{Name: "scrub", State: store.StatePending, Started: started}}}
	var b strings.Builder
	if err := writeStatus(&b, 1, "/state", fss, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := "scrub: running since " + started.Local().Format("15:04:05") + " (1m30s)"
	if !strings.Contains(b.String(), want) {
		t.Errorf("status table lacks %q:\n%s", want, b.String())
	}
	doc := statusJSON(1, "/state", fss, nil)
	if a := doc.Filesystems[0].LastAction; a == nil || a.Started == nil || !a.Started.Equal(started) || a.State != store.StatePending {
		t.Errorf("status JSON last action %+v, want pending with its start time", a)
	}
}
