package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/smart"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = testutil.SyncBuffer

// runDiskHealth starts h's goroutine until the test ends.
func runDiskHealth(t *testing.T, h *diskHealth) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDiskHealthPublished: the disk under an event is read with the real
// smartctl, in the background, and published in the state directory for
// `fshealth status`; a loop device has no health to give, which is said.
// A second ask within the cache's age runs no new query.
func TestDiskHealthPublished(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "smartctl", "smartmontools")
	dev := testutil.NewLoopDevice(t, 1<<20)
	dir := t.TempDir()
	var logs syncBuffer
	h := newDiskHealth(slog.New(slog.NewTextHandler(&logs, nil)), dir)
	runDiskHealth(t, h)
	stack := []storage.Layer{{Name: filepath.Base(dev), Kind: storage.KindDisk, Node: dev}}
	h.ask(stack)
	var got map[string]*smart.Health
	waitFor(t, "disk health file", func() bool {
		m, err := ReadDiskHealth(dir)
		if err != nil {
			t.Fatal(err)
		}
		got = m
		return m[dev] != nil
	})
	if r := got[dev]; r.Unsupported == "" || r.Passed != nil || r.Device != dev || r.Checked.IsZero() {
		t.Errorf("health of %s: %+v", dev, r)
	}
	if !strings.Contains(logs.String(), "disk health") || !strings.Contains(logs.String(), "no health data") {
		t.Errorf("log: %s", logs.String())
	}
	before := got[dev].Checked
	h.ask(stack)
	waitFor(t, "the second ask taken", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.pending) == 0
	})
	if m, _ := ReadDiskHealth(dir); !m[dev].Checked.Equal(before) {
		t.Errorf("re-read within the cache's age: %v then %v", before, m[dev].Checked)
	}
}

// TestDiskHealthWithoutSmartctl: a missing smartctl is said once, at info
// level, never as an error, and nothing is published.
func TestDiskHealthWithoutSmartctl(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	h := newDiskHealth(slog.New(slog.NewTextHandler(&logs, nil)), dir)
	h.checker.Path = filepath.Join(dir, "no-smartctl")
	for _, d := range []string{"/dev/sda", "/dev/sdb"} {
		h.check(context.Background(), d)
	}
	if n := strings.Count(logs.String(), "smartctl (smartmontools) is not installed"); n != 1 || strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("log: %s", logs.String())
	}
	if m, err := ReadDiskHealth(dir); m != nil || err != nil {
		t.Errorf("published %v %v", m, err)
	}
}
