package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// TestActionProgressPublished: the action runner publishes a running
// action's progress (here a command writing e2fsck's progress format to
// {progress_fd}) for `fshealth status`, by the action's id, and takes it
// back when the action ends.
func TestActionProgressPublished(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := openHistory(t.TempDir(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev := "/dev/fshealth-test"
	key := store.FSKey("", dev)
	if err := h.SetWatched(ctx, []alert.Filesystem{{Device: dev, FSType: "ext4"}}); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "gate")
	script := `echo "2 5 10 the device" >&"$0" && while ! [ -e "$1" ]; do sleep 0.05; done`
	if err := h.Commit(ctx, &store.Batch{Actions: []store.Action{{IncidentKey: key + "/test", FSKey: key, EventID: "e1",
		Name: actions.Command, Argv: []string{"/bin/sh", "-c", script, "{progress_fd}", gate}, Timeout: time.Minute}}}); err != nil {
		t.Fatal(err)
	}
	r := &actionRunner{store: h, log: log, metrics: metrics.New("test"), runner: func() *actions.Runner { return &actions.Runner{Logger: log} },
		target: func(string) (actions.Target, bool) { return actions.Target{Device: dev, FSType: "ext4"}, true },
		wake:   make(chan struct{}, 1), progress: NewProgressBoard(h.dir, log)}
	ran := make(chan struct{})
	go func() { r.run(ctx); close(ran) }()

	var got map[int64]actions.Progress
	deadline := time.Now().Add(30 * time.Second)
	for got == nil && time.Now().Before(deadline) {
		if got, err = ReadActionProgress(h.dir); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fss, err := h.Filesystems(ctx)
	if err != nil || len(fss) != 1 || fss[0].LastAction == nil {
		t.Fatalf("file systems %+v, %v", fss, err)
	}
	a := fss[0].LastAction
	if p, ok := got[a.ID]; !ok || len(got) != 1 || p.String() != "pass 2 of 5: 50% (5 of 10)" || a.State != store.StatePending || a.Started.IsZero() {
		t.Fatalf("published progress %+v for the running action %+v", got, a)
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for a.State == store.StatePending && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if fss, err = h.Filesystems(ctx); err != nil {
			t.Fatal(err)
		}
		a = fss[0].LastAction
	}
	if a.State != store.StateDone {
		t.Fatalf("action %+v, want done", a)
	}
	// Taken back when the action ended (just after it was recorded).
	for ; got != nil && time.Now().Before(deadline); got, _ = ReadActionProgress(h.dir) {
		time.Sleep(10 * time.Millisecond)
	}
	if got != nil {
		t.Errorf("progress still published after the action ended: %+v", got)
	}
	if _, err := os.Stat(ProgressFile(h.dir)); !os.IsNotExist(err) {
		t.Errorf("progress file: %v, want it removed", err)
	}
	cancel()
	<-ran
}

// TestReadActionProgressOfAnotherDaemon: progress published for another
// state directory, or by a daemon that is gone, is not shown.
func TestReadActionProgressOfAnotherDaemon(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	dir := t.TempDir()
	b := NewProgressBoard(dir, nil)
	b.Set(3, actions.Progress{Done: 1, Total: 2, Percent: 50})
	if got, err := ReadActionProgress(dir); err != nil || got[3].Percent != 50 {
		t.Fatalf("own progress: %+v, %v", got, err)
	}
	for _, c := range []struct {
		name string
		doc  string
	}{
		{"another state directory", `{"pid":` + strconv.Itoa(os.Getpid()) + `,"state_dir":"/elsewhere","actions":{"3":{"done":1,"total":2}}}`},
		{"a daemon that is gone", `{"pid":2147483647,"state_dir":"` + dir + `","actions":{"3":{"done":1,"total":2}}}`},
	} {
		if err := os.WriteFile(ProgressFile(dir), []byte(c.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadActionProgress(dir); err != nil || got != nil {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
	}
	if err := os.WriteFile(ProgressFile(dir), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadActionProgress(dir); err == nil {
		t.Error("a damaged file gave no error")
	}
	b.Clear(3)
	if _, err := os.Stat(ProgressFile(dir)); !os.IsNotExist(err) {
		t.Errorf("progress file after the last action cleared: %v", err)
	}
}
