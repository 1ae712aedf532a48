package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/store"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestStatusShowsScrubProgress: a real btrfs scrub, throttled so that it
// takes seconds, run as the daemon runs an action (started in the history,
// its progress on the daemon's ProgressBoard): `fshealth status --json`
// shows its progress growing while it runs, the table shows it too, and
// once it has finished status shows its outcome and no progress.
func TestStatusShowsScrubProgress(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "btrfs", "btrfs-progs")
	im := testutil.NewImage(t, "btrfs", 512<<20, "")
	data := make([]byte, 96<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	devs, _ := filepath.Glob(filepath.Join("/sys/fs/btrfs/*/devices", im.Name))
	if len(devs) != 1 {
		t.Fatalf("sysfs directory of %s: %v", im.Dev, devs)
	}
	speed := filepath.Join(filepath.Dir(filepath.Dir(devs[0])), "devinfo", "1", "scrub_speed_max")
	if err := os.WriteFile(speed, []byte("8388608"), 0); err != nil { // 8 MiB/s: 12 s
		why := testutil.Missing
		if errors.Is(err, os.ErrNotExist) {
			why = testutil.KernelLacks // scrub_speed_max is from Linux 5.14
		}
		testutil.Skip(t, why, "cannot throttle btrfs scrub: %v", err)
	}
	defer os.WriteFile(speed, []byte("0"), 0)

	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := daemon.AcquireLock(state) // this test is the daemon
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	st, err := store.Open(store.PathIn(state))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	key := store.FSKey("", im.Dev)
	if err := st.SetWatched(ctx, []alert.Filesystem{{Device: im.Dev, FSType: "btrfs", Mountpoints: []string{im.Mountpoint}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, &store.Batch{Actions: []store.Action{{IncidentKey: key + "/test", FSKey: key, EventID: "e1", Name: actions.Scrub}}}); err != nil {
		t.Fatal(err)
	}
	pending, err := st.PendingActions(ctx)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending actions %+v, %v", pending, err)
	}
	id := pending[0].ID
	started := time.Now()
	if err := st.StartAction(ctx, id, started); err != nil {
		t.Fatal(err)
	}

	board := daemon.NewProgressBoard(state, nil)
	r := &actions.Runner{Progress: func(p actions.Progress) { board.Set(id, p) }}
	done := make(chan actions.Result, 1)
	go func() {
		res := r.Run(ctx, actions.Spec{Name: actions.Scrub}, actions.Target{Device: im.Dev, FSType: "btrfs", Mountpoints: []string{im.Mountpoint}})
		if err := st.FinishAction(ctx, id, store.StateDone, res.Outcome, res.Output, res.Started, res.Finished); err != nil {
			t.Error(err)
		}
		board.Clear(id)
		done <- res
	}()

	type lastAction struct {
		State    string            `json:"state"`
		Outcome  string            `json:"outcome"`
		Progress *actions.Progress `json:"progress"`
	}
	status := func() lastAction {
		out, errOut, _ := run(t, "status", "--json", "--state-dir", state)
		var doc struct {
			Filesystems []struct {
				Device     string      `json:"device"`
				LastAction *lastAction `json:"last_action"`
			} `json:"filesystems"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("status --json: %v\n%s%s", err, out, errOut)
		}
		for _, f := range doc.Filesystems {
			if f.Device == im.Dev && f.LastAction != nil {
				return *f.LastAction
			}
		}
		t.Fatalf("status --json has no action for %s:\n%s", im.Dev, out)
		return lastAction{}
	}

	var seen []actions.Progress
	table := ""
	deadline := time.Now().Add(2 * time.Minute)
	var res actions.Result
	for finished := false; !finished; {
		select {
		case res = <-done:
			finished = true
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the scrub did not end in 2 minutes")
		}
		if finished {
			break
		}
		a := status()
		if a.Progress == nil {
			continue
		}
		if a.State != store.StatePending {
			t.Errorf("status shows progress for an action in state %q", a.State)
		}
		if len(seen) == 0 || a.Progress.Done != seen[len(seen)-1].Done {
			seen = append(seen, *a.Progress)
			if table == "" {
				out, _, _ := run(t, "status", "--state-dir", state)
				table = out
			}
		}
	}
	if !res.OK {
		t.Fatalf("scrub: %+v", res)
	}
	t.Logf("status showed %d readings, %v%% to %v%%:\n%s", len(seen), seen[0].Percent, seen[len(seen)-1].Percent, table)
	if len(seen) < 2 {
		t.Fatalf("status showed the progress %d times, want it growing", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Done <= seen[i-1].Done || seen[i].Percent <= seen[i-1].Percent {
			t.Errorf("progress went from %s to %s", seen[i-1], seen[i])
		}
	}
	if p := seen[0]; p.Unit != actions.UnitBytes || p.Total < 96<<20 || p.Total > 100<<20 {
		t.Errorf("progress %+v: want bytes, of about 96.5 MiB", p)
	}
	if !strings.Contains(table, "scrub: running since "+started.Local().Format("15:04:05")+" (") || !strings.Contains(table, " MiB of 96.5 MiB)") {
		t.Errorf("status table while the scrub ran:\n%s", table)
	}
	// At the end: the outcome, no progress.
	a := status()
	if a.State != store.StateDone || a.Progress != nil || a.Outcome != "btrfs scrub of "+im.Mountpoint+" finished: no errors found" {
		t.Errorf("status after the scrub: %+v", a)
	}
	if _, err := os.Stat(daemon.ProgressFile(state)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the progress file is still there after the action ended: %v", err)
	}
}
