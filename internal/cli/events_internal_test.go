package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// TestEventsDefaultLimit: without --limit, `fshealth events` shows the
// newest defaultEventLimit events, oldest first, and says that older ones
// may be left out; --limit 0 shows every one and says nothing.
func TestEventsDefaultLimit(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range defaultEventLimit + 1 {
		evs = append(evs, event.Event{ID: fmt.Sprintf("e%04d", i), Kind: event.KindError, Time: event.Time{Time: base.Add(time.Duration(i) * time.Second)},
			Source: event.SourceFanotify, Error: "EIO", ErrorCount: 1, Device: "/dev/sdb1", FSType: "ext4", UUID: "u1", Mountpoints: []string{"/srv"}})
	}
	if err := st.Commit(context.Background(), &store.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	events := func(args ...string) (ids []string, stderr string) {
		t.Helper()
		var out, errb bytes.Buffer
		g := &globals{stateDirFlag: dir, stdout: &out, stderr: &errb}
		cmd := newEventsCmd(g)
		cmd.SetArgs(append([]string{"--json"}, args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("events %v: %v", args, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if i := strings.Index(l, `"id":"`); i >= 0 {
				ids = append(ids, l[i+6:i+11])
			}
		}
		return ids, errb.String()
	}
	ids, stderr := events()
	if len(ids) != defaultEventLimit || ids[0] != "e0001" || ids[len(ids)-1] != fmt.Sprintf("e%04d", defaultEventLimit) {
		t.Errorf("default: %d events from %v to %v, want the newest %d, oldest first", len(ids), ids[:1], ids[len(ids)-1:], defaultEventLimit)
	}
	if !strings.Contains(stderr, fmt.Sprintf("the newest %d events are shown", defaultEventLimit)) {
		t.Errorf("default: stderr %q, want the note that older events may be left out", stderr)
	}
	ids, stderr = events("--limit", "0")
	if len(ids) != defaultEventLimit+1 || ids[0] != "e0000" || stderr != "" {
		t.Errorf("--limit 0: %d events, first %v, stderr %q; want all %d and no note", len(ids), ids[:1], stderr, defaultEventLimit+1)
	}
}
