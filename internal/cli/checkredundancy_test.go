package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/policy"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/store"
)

// TestCheckRedundancyLost: a real history with an open redundancy incident
// (an md leg lost under /srv, no file system error) makes the check
// critical with --condition any and redundancy, names the array, and not
// with the errno conditions; resolved, the check is OK again.
func TestCheckRedundancyLost(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	r := &storage.Redundancy{Change: storage.ChangeMemberFaulty, Array: "md0", Level: "raid1", Member: "sdb2", Degraded: 1, RaidDisks: 2}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ev := event.Event{ID: "e1", Kind: event.KindRedundancy, Source: event.SourceMD, Time: event.Time{Time: t0}, ErrorCount: 1,
		Device: "/dev/md0", FSType: "ext4", UUID: "u1", Mountpoints: []string{"/srv"}, Redundancy: r, Message: r.String()}
	eng := policy.New(nil, config.Flood{}, policy.Options{Host: "h"})
	eng.Evaluate(&ev, t0)
	incidents := func() []store.Incident {
		var out []store.Incident
		for _, s := range eng.Changed() {
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, store.Incident{FSKey: s.FSKey, ErrorKind: s.ErrorKind, Opened: s.Opened, LastEvent: s.LastEventTime,
				Events: s.Events, Errors: s.Errors, Resolved: s.Resolved, State: b})
		}
		return out
	}
	if err := st.Commit(ctx, &store.Batch{Events: []event.Event{ev}, Incidents: incidents()}); err != nil {
		t.Fatal(err)
	}
	run := func(cond string) (int, string) {
		res := &checkResult{}
		if err := res.evaluate(ctx, st, dir, checkOptions{condition: cond, window: time.Hour, backlogAge: time.Hour}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		code := res.write(&b, "nagios")
		return code, b.String()
	}
	for _, cond := range []string{condAny, condRedundancy} {
		code, out := run(cond)
		if code != 2 || !strings.Contains(out, "FSHEALTH CRITICAL - /srv (/dev/md0 ext4): redundancy lost since 2026-12-06T10:00:00Z: md array md0 (raid1): member sdb2 faulty") ||
			!strings.Contains(out, "unhealthy=1;") {
			t.Errorf("--condition %s: exit %d, %q", cond, code, out)
		}
	}
	if code, out := run(condIOError); code != 0 {
		t.Errorf("--condition io-error: exit %d, %q", code, out)
	}

	restored := ev
	restored.ID = "e2"
	restored.Redundancy = &storage.Redundancy{Change: storage.ChangeRestored, Array: "md0", Level: "raid1", RaidDisks: 2}
	eng.Evaluate(&restored, t0.Add(time.Hour))
	if err := st.Commit(ctx, &store.Batch{Events: []event.Event{restored}, Incidents: incidents()}); err != nil {
		t.Fatal(err)
	}
	if code, out := run(condRedundancy); code != 0 || !strings.Contains(out, "none with redundancy lost") {
		t.Errorf("after restored: exit %d, %q", code, out)
	}
}
