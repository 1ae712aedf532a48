package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/actions"
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
	if err := writeStatus(&b, 1, "/state", fss, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := "scrub: running since " + started.Local().Format("15:04:05") + " (1m30s)"
	if !strings.Contains(b.String(), want) {
		t.Errorf("status table lacks %q:\n%s", want, b.String())
	}
	doc := statusJSON(1, "/state", fss, nil, nil)
	if a := doc.Filesystems[0].LastAction; a == nil || a.Started == nil || !a.Started.Equal(started) || a.State != store.StatePending {
		t.Errorf("status JSON last action %+v, want pending with its start time", a)
	}
}

// TestStatusShowsProgress: a running action's progress, as its daemon
// published it, follows its start in the table and is in the JSON; a
// finished action, or a running one the daemon has no progress of, shows
// none.
func TestStatusShowsProgress(t *testing.T) {
	started := time.Now().Add(-192 * time.Second)
	p := actions.Progress{Done: 13250000000, Total: 32212254720, Unit: actions.UnitBytes, Percent: 41.13, Updated: time.Now()}
	progress := map[int64]actions.Progress{7: p, 8: p}
	fss := []store.FilesystemStatus{
		{Key: "u1", Device: "/dev/sdz1", FSType: "btrfs", Mountpoints: []string{"/srv"},
			LastAction: &store.Action{ID: 7, Name: "scrub", State: store.StatePending, Started: started}},
		{Key: "u2", Device: "/dev/sdy1", FSType: "btrfs", Mountpoints: []string{"/data"},
			LastAction: &store.Action{ID: 8, Name: "scrub", State: store.StateDone, Outcome: "btrfs scrub of /data finished: no errors found", Started: started, Finished: time.Now()}},
		{Key: "u3", Device: "/dev/sdx1", FSType: "btrfs", Mountpoints: []string{"/home"},
			LastAction: &store.Action{ID: 9, Name: "scrub", State: store.StatePending, Started: started}},
	}
	var b strings.Builder
	if err := writeStatus(&b, 1, "/state", fss, nil, nil, progress); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	want := "scrub: running since " + started.Local().Format("15:04:05") + " (3m12s), 41% (12.3 GiB of 30.0 GiB)"
	for _, c := range []struct{ dev, want string }{
		{"/dev/sdz1", want},
		{"/dev/sdy1", "scrub: btrfs scrub of /data finished: no errors found"},
		{"/dev/sdx1", "scrub: running since " + started.Local().Format("15:04:05") + " (3m12s)"},
	} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, c.dev) })
		if i < 0 || !strings.HasSuffix(lines[i], c.want) {
			t.Errorf("status table, %s: want it to end with %q:\n%s", c.dev, c.want, b.String())
		}
	}
	doc := statusJSON(1, "/state", fss, nil, progress)
	if a := doc.Filesystems[0].LastAction; a.Progress == nil || *a.Progress != p {
		t.Errorf("status JSON, running: progress %+v, want %+v", a.Progress, p)
	}
	if a := doc.Filesystems[1].LastAction; a.Progress != nil {
		t.Errorf("status JSON, finished: progress %+v, want none", a.Progress)
	}
	if a := doc.Filesystems[2].LastAction; a.Progress != nil {
		t.Errorf("status JSON, no progress published: %+v, want none", a.Progress)
	}
}
