package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/testutil"
)

var ctx = context.Background()

// openTemp opens a new database in a temporary directory, closed with the
// test.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(PathIn(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// base is the time the test events are about.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// fs1 and fs2 have UUIDs; fs3 is known by its device only.
var (
	fs1 = alert.Filesystem{UUID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", Device: "/dev/sda1", FSType: "ext4", Mountpoints: []string{"/data", "/srv/data"}, Label: "data"}
	fs2 = alert.Filesystem{UUID: "6f1c7f2e-8d7a-4a8e-9c55-3f0b1d2e4a61", Device: "/dev/sdb1", FSType: "xfs", Mountpoints: []string{"/backup"}}
	fs3 = alert.Filesystem{Device: "/dev/loop7", FSType: "ext4", Mountpoints: []string{"/mnt/scratch"}}
)

// errEvent returns a minimal error event on f.
func errEvent(id string, at time.Time, f alert.Filesystem, errno string, count uint32) event.Event {
	return event.Event{
		ID: id, Kind: event.KindError, Time: event.Time{Time: at}, Source: event.SourceFanotify,
		Errno: 117, Error: errno, ErrorText: "structure needs cleaning", ErrorCount: count, PID: 42,
		FSID: "1234:5678", Device: f.Device, FSType: f.FSType, UUID: f.UUID, Label: f.Label,
		Mountpoints: f.Mountpoints,
	}
}

// fullEvent returns an event with every field set.
func fullEvent(id string, at time.Time) event.Event {
	ino, gen := uint64(1<<40+12), uint32(0xdeadbeef)
	e := errEvent(id, at, fs1, "EUCLEAN", 3)
	e.DeviceNumber = "8:1"
	e.Inode, e.Generation = &ino, &gen
	e.Handle = &event.Handle{Type: 0x81, Bytes: "0c0000000000000001"}
	e.Path = "/data/a dir/with \"quotes\"\nand newline $(id)"
	e.PathError = "partial: ENOENT"
	e.Ext4 = &ext4.State{
		ErrorsCount: 7,
		FirstError:  &ext4.ErrorInfo{Time: time.Unix(1700000000, 0).UTC(), Function: "ext4_lookup", Line: 1855, Inode: 12, Block: 0, Code: 5, Error: "EUCLEAN"},
		LastError:   &ext4.ErrorInfo{Time: time.Unix(1700000100, 0).UTC(), Function: "__ext4_get_inode_loc", Line: 4563, Inode: 13, Block: 1 << 33, Code: 2, Error: "EIO"},
	}
	e.Message = "ünïcode ✓ and \t control"
	return e
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func commit(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := PathIn(dir)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	commit(t, s, &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EIO", 1)}})
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "auto_vacuum": "2",
		"busy_timeout": "10000", "journal_size_limit": fmt.Sprint(walSizeLimit),
	} {
		var got string
		if err := s.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	var v int
	if err := s.db.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("schema version %d, %v; want %d", v, err, SchemaVersion)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening migrates nothing and keeps the data.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("after reopening: %d events, %v", len(evs), err)
	}
	var rows int
	s.db.QueryRow("SELECT count(*) FROM schema_version").Scan(&rows)
	if rows != 1 {
		t.Errorf("schema_version has %d rows", rows)
	}
}

func TestEventsRoundTrip(t *testing.T) {
	s := openTemp(t)
	east := time.FixedZone("", 5*3600+30*60)
	in := []event.Event{
		fullEvent("ev-full", base),
		errEvent("ev-min", base.Add(time.Second).In(east), fs2, "EIO", 1),
		{ID: "ev-overflow", Kind: event.KindOverflow, Time: event.Time{Time: base.Add(2 * time.Second)}, Source: event.SourceFanotify,
			Mountpoints: []string{}, Message: "the kernel's event queue overflowed: errors were lost"},
		{ID: "ev-nil-mounts", Kind: event.KindError, Time: event.Time{Time: base.Add(3 * time.Second).Local()}, Device: "/dev/x"},
	}
	commit(t, s, &Batch{Events: in})
	out, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d events back, want %d", len(out), len(in))
	}
	for i := range in {
		want, got := mustJSON(t, &in[i]), mustJSON(t, &out[i])
		if !bytes.Equal(want, got) {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
	// The raw stored object is exactly what was marshalled.
	i := 0
	err = s.ScanEvents(ctx, EventQuery{}, func(e *event.Event, raw []byte) error {
		if want := mustJSON(t, &in[i]); !bytes.Equal(raw, want) {
			t.Errorf("raw event %d:\n got %s\nwant %s", i, raw, want)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every field of the full event survived (a zero field would marshal
	// differently, but check the pointers too).
	full := out[0]
	if full.Inode == nil || *full.Inode != 1<<40+12 || full.Generation == nil || full.Handle == nil || full.Ext4 == nil ||
		full.Ext4.LastError == nil || full.Ext4.LastError.Block != 1<<33 || full.ID != "ev-full" {
		t.Errorf("full event lost fields: %+v", full)
	}
	// A stop in the callback stops the scan.
	stop := errors.New("stop")
	n := 0
	if err := s.ScanEvents(ctx, EventQuery{}, func(*event.Event, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ScanEvents with a stopping callback: %v after %d", err, n)
	}
}

func ids(evs []event.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.ID)
	}
	return strings.Join(s, ",")
}

func TestEventsQuery(t *testing.T) {
	s := openTemp(t)
	var evs []event.Event
	for i, f := range []alert.Filesystem{fs1, fs2, fs3, fs1, fs2, fs3} {
		evs = append(evs, errEvent(fmt.Sprintf("e%d", i), base.Add(time.Duration(i)*time.Minute), f, "EIO", 1))
	}
	evs = append(evs, event.Event{ID: "ov", Kind: event.KindOverflow, Time: event.Time{Time: base.Add(10 * time.Minute)}})
	// Committed out of time order: the query orders by time.
	commit(t, s, &Batch{Events: evs[3:]})
	commit(t, s, &Batch{Events: evs[:3]})
	// fs1 moves to another device and mount point later: its old names
	// still find it.
	moved := fs1
	moved.Device, moved.Mountpoints = "/dev/sdc1", []string{"/data2"}
	commit(t, s, &Batch{Events: []event.Event{errEvent("e7", base.Add(11*time.Minute), moved, "EIO", 1)}})

	for _, c := range []struct {
		q    EventQuery
		want string
	}{
		{EventQuery{}, "e0,e1,e2,e3,e4,e5,ov,e7"},
		{EventQuery{Since: base.Add(4 * time.Minute)}, "e4,e5,ov,e7"},
		{EventQuery{Since: base.Add(4*time.Minute + 1)}, "e5,ov,e7"},
		{EventQuery{FS: "/data"}, "e0,e3,e7"},
		{EventQuery{FS: "/data/"}, "e0,e3,e7"},
		{EventQuery{FS: "/srv/data"}, "e0,e3,e7"},
		{EventQuery{FS: "/data2"}, "e0,e3,e7"},
		{EventQuery{FS: fs1.UUID}, "e0,e3,e7"},
		{EventQuery{FS: "/dev/sda1"}, "e0,e3,e7"},
		{EventQuery{FS: "/dev/sdb1"}, "e1,e4"},
		{EventQuery{FS: fs2.UUID, Since: base.Add(2 * time.Minute)}, "e4"},
		{EventQuery{FS: "/dev/loop7"}, "e2,e5"},
		{EventQuery{FS: "/mnt/scratch"}, "e2,e5"},
		{EventQuery{FS: "/nowhere"}, ""},
		{EventQuery{Limit: 3}, "e5,ov,e7"},
		{EventQuery{Limit: 1, FS: "/backup"}, "e4"},
		{EventQuery{Limit: 100, Since: base.Add(5 * time.Minute)}, "e5,ov,e7"},
		{EventQuery{Limit: 7, FS: "/data"}, "e0,e3,e7"},
	} {
		// Limits up to reverseMax are read newest first and reversed,
		// larger ones sorted by SQLite: both ways give the same.
		for _, max := range []int{10000, 0} {
			reverseMax = max
			got, err := s.Events(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != c.want {
				t.Errorf("Events(%+v) with reverseMax %d = %s, want %s", c.q, max, ids(got), c.want)
			}
		}
		reverseMax = 10000
	}
}

func TestCommitAtomic(t *testing.T) {
	s := openTemp(t)
	good := &Batch{
		Events:       []event.Event{errEvent("a1", base, fs1, "EIO", 2)},
		Deliveries:   []Delivery{{Channel: "hook", Alert: alert.Alert{ID: "al1"}}},
		Incidents:    []Incident{{FSKey: fs1.UUID, ErrorKind: "EIO", Opened: base, Events: 1, Errors: 2}},
		Ext4Reported: map[string]uint64{fs1.UUID: 2},
	}
	commit(t, s, good)
	if good.Incidents[0].Key != fs1.UUID+"/EIO" {
		t.Errorf("incident key %q", good.Incidents[0].Key)
	}
	before, err := s.Filesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tables := []string{"events", "outbox", "actions", "incidents", "ext4_reported", "filesystems", "fs_names"}
	counts := map[string]int{}
	for _, tb := range tables {
		counts[tb] = count(t, s, tb)
	}

	for name, bad := range map[string]*Batch{
		"duplicate of a committed id": {
			Events: []event.Event{
				errEvent("b1", base.Add(time.Second), fs2, "EUCLEAN", 5),
				errEvent("a1", base.Add(2*time.Second), fs3, "EIO", 1),
			},
			Deliveries:   []Delivery{{Channel: "webhook", Alert: alert.Alert{ID: "al2"}}},
			Actions:      []Action{{IncidentKey: fs2.UUID + "/EUCLEAN", Name: "remount-ro"}},
			Incidents:    []Incident{{Key: fs1.UUID + "/EIO", Opened: base, Events: 99}},
			Ext4Reported: map[string]uint64{fs1.UUID: 99, fs2.UUID: 1},
		},
		"duplicate within the batch": {
			Events: []event.Event{
				errEvent("c1", base.Add(time.Second), fs1, "EIO", 5),
				errEvent("c1", base.Add(2*time.Second), fs1, "EIO", 1),
			},
			Deliveries: []Delivery{{Channel: "webhook", Alert: alert.Alert{ID: "al3"}}},
		},
		"event without id": {
			Events:     []event.Event{errEvent("d1", base, fs2, "EIO", 1), errEvent("", base, fs2, "EIO", 1)},
			Deliveries: []Delivery{{Channel: "webhook", Alert: alert.Alert{ID: "al4"}}},
		},
		"delivery without channel": {
			Events:     []event.Event{errEvent("d2", base, fs2, "EIO", 1)},
			Deliveries: []Delivery{{Alert: alert.Alert{ID: "al5"}}},
		},
	} {
		err := s.Commit(ctx, bad)
		if err == nil {
			t.Fatalf("%s: Commit succeeded", name)
		}
		if !strings.Contains(err.Error(), s.Path()) {
			t.Errorf("%s: error %q does not name the database", name, err)
		}
		if bad.Deliveries[0].ID != 0 {
			t.Errorf("%s: failed commit set a delivery id", name)
		}
		for _, tb := range tables {
			if n := count(t, s, tb); n != counts[tb] {
				t.Errorf("%s: %s has %d rows after the failed commit, want %d", name, tb, n, counts[tb])
			}
		}
		after, err := s.Filesystems(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s: file systems changed:\n%+v\n%+v", name, before, after)
		}
	}
	err = s.Commit(ctx, &Batch{Events: []event.Event{errEvent("a1", base, fs1, "EIO", 1)}})
	if err == nil || !strings.Contains(err.Error(), "a1") || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("duplicate id: error %v should name the event and the constraint", err)
	}
	if n, _, _ := s.Ext4Reported(ctx, fs1.UUID); n != 2 {
		t.Errorf("ext4 reported %d after failed commits, want 2", n)
	}
	if in, _ := s.OpenIncidents(ctx); len(in) != 1 || in[0].Events != 1 {
		t.Errorf("incidents after failed commits: %+v", in)
	}
	// An empty batch is fine and does nothing.
	if err := s.Commit(ctx, &Batch{}); err != nil {
		t.Error(err)
	}
	if err := s.Commit(ctx, nil); err != nil {
		t.Error(err)
	}
}

func TestCommitCanceled(t *testing.T) {
	s := openTemp(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Commit(c, &Batch{Events: []event.Event{errEvent("x", base, fs1, "EIO", 1)}}); err == nil {
		t.Fatal("Commit with a canceled context succeeded")
	}
	if n := count(t, s, "events"); n != 0 {
		t.Errorf("%d events after a canceled commit", n)
	}
}

func findFS(t *testing.T, s *Store, key string) FilesystemStatus {
	t.Helper()
	all, err := s.Filesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.Key == key {
			return f
		}
	}
	t.Fatalf("no file system %s in %+v", key, all)
	return FilesystemStatus{}
}

func TestHealth(t *testing.T) {
	s := openTemp(t)
	if err := s.SetWatched(ctx, []alert.Filesystem{fs1, fs2}); err != nil {
		t.Fatal(err)
	}
	f := findFS(t, s, fs2.UUID)
	if !f.Watched || f.Health != HealthOK || f.Errors != 0 || !f.FirstError.IsZero() || f.Device != "/dev/sdb1" ||
		f.FSType != "xfs" || !reflect.DeepEqual(f.Mountpoints, []string{"/backup"}) || f.LastAction != nil {
		t.Errorf("fresh watched fs: %+v", f)
	}

	t0 := base
	commit(t, s, &Batch{Events: []event.Event{
		errEvent("h1", t0, fs1, "EIO", 3),
		errEvent("h2", t0.Add(time.Second), fs1, "EUCLEAN", 4),
		{ID: "h3", Kind: event.KindOverflow, Time: event.Time{Time: t0.Add(2 * time.Second)}, UUID: fs1.UUID, Device: fs1.Device},
	}})
	commit(t, s, &Batch{Events: []event.Event{errEvent("h4", t0.Add(time.Minute), fs1, "EIO", 1)}})
	f = findFS(t, s, fs1.UUID)
	if f.Health != HealthErrors || f.Errors != 8 || f.TotalErrors != 8 || f.Events != 4 ||
		!f.FirstError.Equal(t0) || !f.LastError.Equal(t0.Add(time.Minute)) || f.LastErrno != "EIO" || f.LastEventID != "h4" ||
		f.Label != "data" || !f.Watched {
		t.Errorf("fs1 after errors: %+v", f)
	}
	if f := findFS(t, s, fs2.UUID); f.Health != HealthOK || f.Events != 0 {
		t.Errorf("fs2 has no errors: %+v", f)
	}

	// Unwatched (e.g. unmounted): history and health stay.
	if err := s.SetWatched(ctx, []alert.Filesystem{fs2, fs3}); err != nil {
		t.Fatal(err)
	}
	f = findFS(t, s, fs1.UUID)
	if f.Watched || f.Health != HealthErrors || f.Errors != 8 || f.LastEventID != "h4" {
		t.Errorf("unwatched fs1: %+v", f)
	}
	if f := findFS(t, s, fs3.Device); !f.Watched || f.UUID != "" {
		t.Errorf("fs3 keyed by device: %+v", f)
	}
	if evs, _ := s.Events(ctx, EventQuery{FS: "/data"}); len(evs) != 4 {
		t.Errorf("unwatched fs1 has %d events in the history, want 4", len(evs))
	}

	// A recovery action shows as the last action.
	b := &Batch{Actions: []Action{
		{IncidentKey: fs1.UUID + "/EIO", EventID: "h1", Name: "remount-ro", Argv: []string{"mount", "-o", "remount,ro", "/data"}},
		{IncidentKey: fs1.UUID + "/EIO", EventID: "h4", Name: "fsck-at-boot", DryRun: true},
	}}
	commit(t, s, b)
	f = findFS(t, s, fs1.UUID)
	if f.LastAction == nil || f.LastAction.ID != b.Actions[1].ID || f.LastAction.Name != "fsck-at-boot" || !f.LastAction.DryRun {
		t.Errorf("last action of fs1: %+v", f.LastAction)
	}

	// Marked healthy (e2fsck ran): ok again, totals kept.
	healed := t0.Add(time.Hour)
	if err := s.MarkHealthy(ctx, fs1.UUID, healed); err != nil {
		t.Fatal(err)
	}
	f = findFS(t, s, fs1.UUID)
	if f.Health != HealthOK || f.Errors != 0 || !f.FirstError.IsZero() || f.TotalErrors != 8 || !f.HealthySince.Equal(healed) ||
		!f.LastError.Equal(t0.Add(time.Minute)) {
		t.Errorf("fs1 marked healthy: %+v", f)
	}
	commit(t, s, &Batch{Events: []event.Event{errEvent("h5", t0.Add(2*time.Hour), fs1, "EROFS", 2)}})
	f = findFS(t, s, fs1.UUID)
	if f.Health != HealthErrors || f.Errors != 2 || f.TotalErrors != 10 || !f.FirstError.Equal(t0.Add(2*time.Hour)) || f.LastErrno != "EROFS" {
		t.Errorf("fs1 with new errors: %+v", f)
	}
	err := s.MarkHealthy(ctx, "no-such-fs", healed)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("MarkHealthy of an unknown fs: %v", err)
	}
	if err := s.SetWatched(ctx, []alert.Filesystem{{FSType: "tmpfs"}}); err == nil {
		t.Error("SetWatched accepted a file system without UUID or device")
	}
}

func TestOutbox(t *testing.T) {
	s := openTemp(t)
	t0 := time.Now().Add(-time.Hour).Round(0)
	a := func(id string) alert.Alert {
		e := fullEvent("ev-"+id, base)
		return alert.Alert{ID: id, Type: alert.TypeError, Severity: alert.SeverityCritical, Rule: "default", Host: "h",
			Time: base, Summary: "EUCLEAN on /data", Filesystem: fs1, ErrorKind: "EUCLEAN", Count: 3, Since: base, Event: &e}
	}
	b := &Batch{Deliveries: []Delivery{
		{Channel: "webhook", Alert: a("x1"), Created: t0, NextAttempt: t0.Add(10 * time.Minute)},
		{Channel: "smtp", Alert: a("x1"), Created: t0, NextAttempt: t0},
		{Channel: "webhook", Alert: a("x2"), Created: t0.Add(time.Minute)}, // due at Created
		{Channel: "webhook", Alert: a("x3"), Created: t0, NextAttempt: t0.Add(2 * time.Hour)},
	}}
	commit(t, s, b)
	for i, d := range b.Deliveries {
		if d.ID == 0 || d.State != StatePending {
			t.Errorf("delivery %d after Commit: %+v", i, d)
		}
	}
	next, ok, err := s.NextDue(ctx)
	if err != nil || !ok || !next.Equal(t0) {
		t.Errorf("NextDue = %v, %v, %v; want %v", next, ok, err, t0)
	}
	due, err := s.DueDeliveries(ctx, t0.Add(10*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, d := range due {
		got = append(got, d.ID)
	}
	// Oldest (first added) first; x3 is not due.
	want := []int64{b.Deliveries[0].ID, b.Deliveries[1].ID, b.Deliveries[2].ID}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("due: %v, want %v", got, want)
	}
	if !bytes.Equal(mustJSON(t, &due[0].Alert), mustJSON(t, &b.Deliveries[0].Alert)) {
		t.Errorf("alert does not round-trip:\n%s\n%s", mustJSON(t, &due[0].Alert), mustJSON(t, &b.Deliveries[0].Alert))
	}
	if d := due[2]; !d.Created.Equal(t0.Add(time.Minute)) || !d.NextAttempt.Equal(d.Created) || d.Attempts != 0 || d.State != StatePending {
		t.Errorf("due row: %+v", d)
	}
	if due, _ := s.DueDeliveries(ctx, t0.Add(10*time.Minute), 2); len(due) != 2 || due[0].ID != want[0] {
		t.Errorf("limited due: %+v", due)
	}

	// The webhook is down: retry x1 and x2 later.
	id1, id2, id3, id4 := b.Deliveries[0].ID, b.Deliveries[1].ID, b.Deliveries[2].ID, b.Deliveries[3].ID
	if err := s.MarkRetry(ctx, id1, t0.Add(20*time.Minute), "connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRetry(ctx, id3, t0.Add(30*time.Minute), "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, id2, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if next, ok, _ := s.NextDue(ctx); !ok || !next.Equal(t0.Add(20*time.Minute)) {
		t.Errorf("NextDue after retries = %v, %v", next, ok)
	}
	due, _ = s.DueDeliveries(ctx, t0.Add(25*time.Minute), 0)
	if len(due) != 1 || due[0].ID != id1 || due[0].Attempts != 1 || due[0].LastError != "connection refused" {
		t.Errorf("due after retry: %+v", due)
	}
	if err := s.MarkRetry(ctx, id1, t0.Add(40*time.Minute), "connection refused again"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkGaveUp(ctx, id1, "gave up after 2 attempts: connection refused"); err != nil {
		t.Fatal(err)
	}
	bl, err := s.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// smtp has everything delivered: it is not in the backlog.
	wantBL := []Backlog{
		{Channel: "webhook", Pending: 2, Failed: 1, Oldest: t0, LastError: "503 Service Unavailable"},
	}
	if len(bl) != 1 || bl[0].Channel != "webhook" || bl[0].Pending != 2 || bl[0].Failed != 1 ||
		!bl[0].Oldest.Equal(t0) || bl[0].LastError != wantBL[0].LastError {
		t.Errorf("backlog:\n got %+v\nwant %+v", bl, wantBL)
	}
	// x3 (id4) is the newest row with an error after this retry.
	s.MarkRetry(ctx, id4, t0.Add(3*time.Hour), "timeout")
	if bl, _ := s.Backlog(ctx); bl[0].LastError != "timeout" {
		t.Errorf("backlog last error %q", bl[0].LastError)
	}

	// Finished rows cannot be marked again; unknown ones are not found.
	for _, err := range []error{
		s.MarkDelivered(ctx, id1, time.Now()),
		s.MarkRetry(ctx, id2, time.Now(), "x"),
	} {
		if err == nil || !strings.Contains(err.Error(), "not pending") || !strings.Contains(err.Error(), s.Path()) {
			t.Errorf("marking a finished delivery: %v", err)
		}
	}
	if err := s.MarkGaveUp(ctx, 12345, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("marking an unknown delivery: %v", err)
	}

	// The rows survive a restart.
	s.Close()
	s2, err := Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	due, _ = s2.DueDeliveries(ctx, t0.Add(4*time.Hour), 0)
	if len(due) != 2 || due[0].ID != id3 || due[1].ID != id4 {
		t.Errorf("due after reopening: %+v", due)
	}
	s2.MarkDelivered(ctx, id3, time.Now())
	s2.MarkDelivered(ctx, id4, time.Now())
	if _, ok, err := s2.NextDue(ctx); ok || err != nil {
		t.Errorf("NextDue with nothing pending: %v, %v", ok, err)
	}
	bl, _ = s2.Backlog(ctx)
	if len(bl) != 1 || bl[0].Channel != "webhook" || bl[0].Pending != 0 || bl[0].Failed != 1 || !bl[0].Oldest.IsZero() {
		t.Errorf("backlog when only the failed row is left: %+v", bl)
	}
}

func TestIncidents(t *testing.T) {
	s := openTemp(t)
	t0 := base
	in := Incident{
		FSKey: fs3.Device, ErrorKind: "EUCLEAN", Opened: t0, LastEvent: t0.Add(time.Second), LastAlert: t0,
		NextReminder: t0.Add(time.Hour), FoldedSince: t0.Add(time.Second), Events: 2, Errors: 5, Folded: 4,
		RemindersSent: 1, ActionsRun: []string{"remount-ro"},
	}
	other := Incident{Key: IncidentKey(fs1.UUID, "EIO"), ErrorKind: "EIO", Opened: t0}
	commit(t, s, &Batch{Incidents: []Incident{in, other}})
	open, err := s.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in.Key = "/dev/loop7/EUCLEAN"
	other.FSKey = fs1.UUID
	if len(open) != 2 || !sameIncident(open[0], in) || !sameIncident(open[1], other) {
		t.Fatalf("open incidents:\n got %+v\nwant %+v and %+v", open, in, other)
	}
	// Upsert: the same key replaces the row.
	in.Events, in.Errors, in.Folded, in.RemindersSent = 10, 50, 0, 2
	in.ActionsRun = append(in.ActionsRun, "fsck-at-boot")
	in.NextReminder = t0.Add(2 * time.Hour)
	other.Resolved = t0.Add(time.Minute)
	commit(t, s, &Batch{Incidents: []Incident{in, other}})
	s.Close()
	s, err = Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open, err = s.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || !sameIncident(open[0], in) {
		t.Errorf("after upsert and reopen:\n got %+v\nwant %+v", open, in)
	}
	got, ok, err := s.Incident(ctx, other.Key)
	if err != nil || !ok || !sameIncident(got, other) {
		t.Errorf("resolved incident: %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.Incident(ctx, "nope/EIO"); ok || err != nil {
		t.Errorf("unknown incident: %v, %v", ok, err)
	}
	if err := s.Commit(ctx, &Batch{Incidents: []Incident{{Opened: t0}}}); err == nil {
		t.Error("an incident without key was accepted")
	}
}

func sameIncident(a, b Incident) bool {
	return a.Key == b.Key && a.FSKey == b.FSKey && a.ErrorKind == b.ErrorKind &&
		a.Opened.Equal(b.Opened) && a.LastEvent.Equal(b.LastEvent) && a.LastAlert.Equal(b.LastAlert) &&
		a.NextReminder.Equal(b.NextReminder) && a.FoldedSince.Equal(b.FoldedSince) && a.Resolved.Equal(b.Resolved) &&
		a.Events == b.Events && a.Errors == b.Errors && a.Folded == b.Folded && a.RemindersSent == b.RemindersSent &&
		reflect.DeepEqual(a.ActionsRun, b.ActionsRun)
}

func TestActions(t *testing.T) {
	s := openTemp(t)
	b := &Batch{
		Events: []event.Event{errEvent("a-ev", base, fs3, "EUCLEAN", 1)},
		Actions: []Action{
			{IncidentKey: "/dev/loop7/EUCLEAN", EventID: "a-ev", Name: "remount-ro", Argv: []string{"mount", "-o", "remount,ro", "/mnt/scratch"}},
			{IncidentKey: "/dev/loop7/EUCLEAN", EventID: "a-ev", Name: "command", Argv: []string{"/usr/local/bin/page", "it's $(bad)"}, DryRun: true},
			{IncidentKey: fs1.UUID + "/EIO", FSKey: fs1.UUID, EventID: "x", Name: "scrub"},
		},
	}
	commit(t, s, b)
	pend, err := s.PendingActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 3 {
		t.Fatalf("%d pending actions", len(pend))
	}
	for i, a := range pend {
		w := b.Actions[i]
		if a.ID != w.ID || a.IncidentKey != w.IncidentKey || a.EventID != w.EventID || a.Name != w.Name ||
			!reflect.DeepEqual(a.Argv, w.Argv) || a.DryRun != w.DryRun || a.State != StatePending || a.Created.IsZero() ||
			!a.Started.IsZero() || !a.Finished.IsZero() {
			t.Errorf("pending action %d:\n got %+v\nwant %+v", i, a, w)
		}
	}
	if pend[0].FSKey != "/dev/loop7" || pend[2].FSKey != fs1.UUID {
		t.Errorf("fs keys: %q, %q", pend[0].FSKey, pend[2].FSKey)
	}
	started := time.Now().Add(-time.Second).Round(0)
	if err := s.StartAction(ctx, pend[0].ID, started); err != nil {
		t.Fatal(err)
	}
	// Interrupted (crash): still pending, with a start time.
	pend, _ = s.PendingActions(ctx)
	if !pend[0].Started.Equal(started) || pend[0].State != StatePending {
		t.Errorf("started action: %+v", pend[0])
	}
	finished := started.Add(300 * time.Millisecond)
	if err := s.FinishAction(ctx, pend[0].ID, StateDone, "remounted read-only", "ok\n", started, finished); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", MaxOutput) // 2 bytes each
	if err := s.StartAction(ctx, pend[1].ID, started); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAction(ctx, pend[1].ID, StateFailed, "exit status 1", long, time.Time{}, finished); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAction(ctx, pend[0].ID, StateFailed, "", "", started, finished); err == nil || !strings.Contains(err.Error(), "already done") {
		t.Errorf("finishing twice: %v", err)
	}
	if err := s.FinishAction(ctx, 999, StateDone, "", "", started, finished); !errors.Is(err, ErrNotFound) {
		t.Errorf("finishing an unknown action: %v", err)
	}
	if err := s.FinishAction(ctx, pend[2].ID, "weird", "", "", started, finished); err == nil {
		t.Error("an unknown state was accepted")
	}
	pend, _ = s.PendingActions(ctx)
	if len(pend) != 1 || pend[0].Name != "scrub" {
		t.Errorf("pending after finishing two: %+v", pend)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("Actions: %d, %v", len(all), err)
	}
	if a := all[0]; a.State != StateDone || a.Outcome != "remounted read-only" || a.Output != "ok\n" || !a.Finished.Equal(finished) {
		t.Errorf("done action: %+v", a)
	}
	if a := all[1]; a.State != StateFailed || !a.Started.Equal(started) || len(a.Output) > MaxOutput || !strings.HasSuffix(a.Output, "[output truncated]") ||
		!strings.HasPrefix(a.Output, "éé") || !utf8Valid(a.Output) {
		t.Errorf("failed action output: %d bytes, suffix %q", len(a.Output), a.Output[len(a.Output)-30:])
	}
	last2, _ := s.Actions(ctx, 2)
	if len(last2) != 2 || last2[0].ID != all[1].ID || last2[1].ID != all[2].ID {
		t.Errorf("Actions(2): %+v", last2)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestExt4Reported(t *testing.T) {
	s := openTemp(t)
	if _, ok, err := s.Ext4Reported(ctx, fs1.UUID); ok || err != nil {
		t.Errorf("before: %v, %v", ok, err)
	}
	if err := s.SetExt4Reported(ctx, fs1.UUID, 7); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Ext4Reported: map[string]uint64{fs1.UUID: 9, fs2.UUID: 1}})
	for uuid, want := range map[string]uint64{fs1.UUID: 9, fs2.UUID: 1} {
		if n, ok, err := s.Ext4Reported(ctx, uuid); !ok || err != nil || n != want {
			t.Errorf("%s: %d, %v, %v; want %d", uuid, n, ok, err, want)
		}
	}
}

func TestBtrfsCounters(t *testing.T) {
	s := openTemp(t)
	if devs, err := s.BtrfsCounters(ctx, fs1.UUID); devs != nil || err != nil {
		t.Errorf("before: %v, %v", devs, err)
	}
	want := []btrfs.DeviceStats{{DevID: 1, Path: "/dev/sdb", CorruptionErrs: 3}, {DevID: 2, WriteErrs: 1}}
	commit(t, s, &Batch{Events: []event.Event{errEvent("b1", base, fs1, "EBADMSG", 3)},
		BtrfsCounters: map[string][]btrfs.DeviceStats{fs1.UUID: {{DevID: 1}}}})
	commit(t, s, &Batch{BtrfsCounters: map[string][]btrfs.DeviceStats{fs1.UUID: want, fs2.UUID: {}}})
	if devs, err := s.BtrfsCounters(ctx, fs1.UUID); err != nil || !reflect.DeepEqual(devs, want) {
		t.Errorf("after: %+v, %v; want %+v", devs, err, want)
	}
	if devs, err := s.BtrfsCounters(ctx, fs2.UUID); err != nil || devs == nil || len(devs) != 0 {
		t.Errorf("an empty reading: %#v, %v; want recorded and empty", devs, err)
	}
}

func TestPrune(t *testing.T) {
	s := openTemp(t)
	old, cut, recent := base, base.Add(24*time.Hour), base.Add(48*time.Hour)
	commit(t, s, &Batch{
		Events: []event.Event{errEvent("old1", old, fs1, "EIO", 2), errEvent("old2", old.Add(time.Second), fs2, "EIO", 1)},
		Deliveries: []Delivery{
			{Channel: "w", Alert: alert.Alert{ID: "d-old-delivered"}, Created: old},
			{Channel: "w", Alert: alert.Alert{ID: "d-old-failed"}, Created: old},
			{Channel: "w", Alert: alert.Alert{ID: "d-old-pending"}, Created: old},
			{Channel: "w", Alert: alert.Alert{ID: "d-new-delivered"}, Created: recent},
		},
		Actions: []Action{
			{IncidentKey: fs1.UUID + "/EIO", Name: "old-done"},
			{IncidentKey: fs1.UUID + "/EIO", Name: "old-pending"},
			{IncidentKey: fs1.UUID + "/EIO", Name: "new-done"},
		},
		Incidents: []Incident{
			{Key: fs1.UUID + "/EIO", Opened: old, Resolved: old.Add(time.Hour)},
			{Key: fs2.UUID + "/EIO", Opened: old},
			{Key: fs1.UUID + "/ENOSPC", Opened: old, Resolved: recent},
		},
	})
	commit(t, s, &Batch{Events: []event.Event{errEvent("new1", recent, fs1, "EUCLEAN", 3)}})
	d, _ := s.DueDeliveries(ctx, time.Now().Add(time.Hour), 0)
	s.MarkDelivered(ctx, d[0].ID, old)
	s.MarkGaveUp(ctx, d[1].ID, "nope")
	s.MarkDelivered(ctx, d[3].ID, recent)
	a, _ := s.PendingActions(ctx)
	s.FinishAction(ctx, a[0].ID, StateDone, "", "", old, old)
	s.FinishAction(ctx, a[2].ID, StateDone, "", "", recent, recent)

	before, _ := s.Filesystems(ctx)
	st, err := s.Prune(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 2 || st.Deliveries != 2 || st.Actions != 1 || st.Incidents != 1 || st.Size == 0 {
		t.Errorf("prune stats: %+v", st)
	}
	if evs, _ := s.Events(ctx, EventQuery{}); ids(evs) != "new1" {
		t.Errorf("events after prune: %s", ids(evs))
	}
	if due, _ := s.DueDeliveries(ctx, time.Now().Add(time.Hour), 0); len(due) != 1 || due[0].Alert.ID != "d-old-pending" {
		t.Errorf("pending deliveries after prune: %+v", due)
	}
	if n := count(t, s, "outbox"); n != 2 {
		t.Errorf("%d outbox rows after prune, want 2", n)
	}
	if all, _ := s.Actions(ctx, 0); len(all) != 2 || all[0].Name != "old-pending" || all[1].Name != "new-done" {
		t.Errorf("actions after prune: %+v", all)
	}
	if n := count(t, s, "incidents"); n != 2 {
		t.Errorf("%d incidents after prune, want 2", n)
	}
	after, _ := s.Filesystems(ctx)
	for i := range before {
		b, a := before[i], after[i]
		b.LastAction, a.LastAction = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Errorf("prune changed a health row:\n%+v\n%+v", b, a)
		}
	}
	if f := findFS(t, s, fs2.UUID); f.Errors != 1 || f.Health != HealthErrors || f.LastEventID != "old2" {
		t.Errorf("fs2 lost its counters: %+v", f)
	}
	// The names stay too: a pruned file system's later events are found.
	if st, _ := s.Prune(ctx, cut); st.Events+st.Deliveries+st.Actions+st.Incidents != 0 {
		t.Errorf("second prune deleted %+v", st)
	}
}

// dbSize is the size of the database and its WAL.
func dbSize(t testing.TB, path string) int64 {
	t.Helper()
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err == nil {
			n += fi.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return n
}

func TestPruneBoundsSize(t *testing.T) {
	if testing.Short() {
		testutil.Skip(t, testutil.Missing, "slow: runs without -short")
	}
	s := openTemp(t)
	const (
		cycles   = 25
		perCycle = 2000
		batch    = 200
	)
	msg := strings.Repeat("x", 300) // bulk up the events
	var sizes []int64
	for c := 0; c < cycles; c++ {
		at := base.Add(time.Duration(c) * time.Hour)
		for i := 0; i < perCycle; i += batch {
			b := &Batch{}
			for j := 0; j < batch; j++ {
				e := fullEvent(fmt.Sprintf("c%d-%d", c, i+j), at.Add(time.Duration(i+j)*time.Millisecond))
				e.Message = msg
				b.Events = append(b.Events, e)
			}
			b.Deliveries = []Delivery{{Channel: "w", Alert: alert.Alert{ID: fmt.Sprintf("c%d-%d", c, i), Summary: msg}, Created: at}}
			commit(t, s, b)
			s.MarkDelivered(ctx, b.Deliveries[0].ID, at)
		}
		// Keep one cycle's worth.
		st, err := s.Prune(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if c > 0 && st.Events != perCycle {
			t.Fatalf("cycle %d: pruned %d events, want %d", c, st.Events, perCycle)
		}
		sizes = append(sizes, dbSize(t, s.Path()))
	}
	peak := sizes[2]
	for _, n := range sizes[:3] {
		peak = max(peak, n)
	}
	t.Logf("sizes (KiB) per cycle: %v", kib(sizes))
	for c := 3; c < cycles; c++ {
		if sizes[c] > 2*peak+int64(walSizeLimit) {
			t.Errorf("cycle %d: %d bytes, more than twice the early peak %d plus the WAL limit: the file grows", c, sizes[c], peak)
		}
	}
	if n := count(t, s, "events"); n != perCycle {
		t.Errorf("%d events kept, want %d", n, perCycle)
	}
	f := findFS(t, s, fs1.UUID)
	if f.Events != cycles*perCycle || f.Errors != 3*cycles*perCycle {
		t.Errorf("counters after pruning: %+v", f)
	}

	// Pruning everything gives the space back to the file system.
	st, err := s.Prune(ctx, base.Add(1000*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// The next commit resets the WAL, truncating it to walSizeLimit.
	commit(t, s, &Batch{Events: []event.Event{errEvent("last", base.Add(1000*time.Hour), fs1, "EIO", 1)}})
	commit(t, s, &Batch{Events: []event.Event{errEvent("last2", base.Add(1000*time.Hour), fs1, "EIO", 1)}})
	db, _ := os.Stat(s.Path())
	wal, _ := os.Stat(s.Path() + "-wal")
	t.Logf("after pruning everything: %+v; database %d KiB, WAL %d KiB", st, db.Size()>>10, wal.Size()>>10)
	if st.FreedPages == 0 || db.Size() > 1<<20 || wal.Size() > walSizeLimit {
		t.Errorf("space not given back: %+v, database %d bytes, WAL %d bytes", st, db.Size(), wal.Size())
	}
}

func kib(n []int64) []int64 {
	out := make([]int64, len(n))
	for i, v := range n {
		out[i] = v >> 10
	}
	return out
}

func TestNewerSchema(t *testing.T) {
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("UPDATE schema_version SET version = ?", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, open := range map[string]func(string) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
		s, err := open(path)
		if err == nil {
			s.Close()
			t.Fatalf("%s of a newer schema succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "newer fshealth") {
			t.Errorf("%s: error %q should say the schema is newer and name %s", name, err, path)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	// Not a database.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 512), 0o600)
	for name, open := range map[string]func(string) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
		if s, err := open(junk); err == nil {
			s.Close()
			t.Errorf("%s of a non-database succeeded", name)
		} else if !strings.Contains(err.Error(), junk) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	// Some other SQLite database.
	other := filepath.Join(dir, "other.db")
	s, err := Open(filepath.Join(dir, "tmp.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec("VACUUM INTO ?", other); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(other)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Exec("DROP TABLE schema_version")
	s.Close()
	if s, err := Open(other); err == nil || !strings.Contains(err.Error(), "not an fshealth database") || !strings.Contains(err.Error(), other) {
		t.Errorf("Open of a foreign database: %v", err)
		if s != nil {
			s.Close()
		}
	}
	// Missing file, read-only.
	missing := PathIn(filepath.Join(dir, "nostate"))
	_, err = OpenReadOnly(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNoHistory) ||
		!strings.Contains(err.Error(), "no history at "+missing) || !strings.Contains(err.Error(), "--state-dir "+filepath.Dir(missing)) {
		t.Errorf("OpenReadOnly of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}
	// Unwritable directory.
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if _, err := Open(PathIn(ro)); err == nil || !strings.Contains(err.Error(), ro) {
			t.Errorf("Open in a read-only directory: %v", err)
		}
	}
}

func TestReadOnlyConcurrent(t *testing.T) {
	w := openTemp(t)
	commit(t, w, &Batch{Events: []event.Event{errEvent("r1", base, fs1, "EIO", 1)}})

	// The writer holds the write lock with an uncommitted transaction.
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO events (id, time, kind, errno, error_count, json) VALUES ('uncommitted', 1, 'error', '', 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := r.Events(ctx, EventQuery{})
	if err != nil || ids(evs) != "r1" {
		t.Errorf("reader during a write transaction: %s, %v", ids(evs), err)
	}
	if fss, err := r.Filesystems(ctx); err != nil || len(fss) != 1 || fss[0].Errors != 1 {
		t.Errorf("reader's file systems: %+v, %v", fss, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The reader sees each new commit, and cannot write.
	commit(t, w, &Batch{Events: []event.Event{errEvent("r2", base.Add(time.Second), fs1, "EIO", 1)}})
	if evs, _ := r.Events(ctx, EventQuery{}); ids(evs) != "r1,r2" {
		t.Errorf("reader after a commit: %s", ids(evs))
	}
	err = r.Commit(ctx, &Batch{Events: []event.Event{errEvent("r3", base, fs1, "EIO", 1)}})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Commit on a read-only store: %v", err)
	}
	if _, err := r.db.Exec(`DELETE FROM events`); err == nil {
		t.Error("the read-only connection could delete")
	}
	// With the daemon stopped (WAL checkpointed and removed), the history
	// is still readable.
	r.Close()
	w.Close()
	if _, err := os.Stat(w.Path() + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WAL still there after close: %v", err)
	}
	r2, err := OpenReadOnly(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if evs, err := r2.Events(ctx, EventQuery{}); err != nil || ids(evs) != "r1,r2" {
		t.Errorf("reader with the daemon stopped: %s, %v", ids(evs), err)
	}
}

func TestMigrations(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(migrations), SchemaVersion)
	}
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Events: []event.Event{errEvent("m1", base, fs1, "EIO", 1)}})
	s.Close()

	// A newer fshealth adds a migration: opening applies it, keeping the
	// data, and the read-only opener of the old database is told to wait
	// for the daemon.
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(append([]string(nil), saved...), `ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated'`)
	if _, err := OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), "older") || !strings.Contains(err.Error(), path) {
		t.Errorf("read-only open of an old schema: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	var note string
	s.db.QueryRow("SELECT version FROM schema_version").Scan(&v)
	if err := s.db.QueryRow("SELECT note FROM events WHERE id = 'm1'").Scan(&note); err != nil || note != "migrated" || v != SchemaVersion+1 {
		t.Errorf("after the migration: version %d, note %q, %v", v, note, err)
	}
	if evs, _ := s.Events(ctx, EventQuery{}); ids(evs) != "m1" {
		t.Errorf("events after the migration: %s", ids(evs))
	}

	// A migration that fails leaves the database as it was.
	s.Close()
	migrations = append(migrations, `CREATE TABLE t1 (x); THIS IS NOT SQL`)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migration to version %d", SchemaVersion+2)) || !strings.Contains(err.Error(), path) {
		t.Errorf("failing migration: %v", err)
	}
	migrations = migrations[:len(migrations)-1]
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	s.db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 't1'").Scan(&n)
	s.db.QueryRow("SELECT version FROM schema_version").Scan(&v)
	if n != 0 || v != SchemaVersion+1 {
		t.Errorf("after a failed migration: t1 exists %d, version %d", n, v)
	}
	s.Close()
}

func TestConcurrentUse(t *testing.T) {
	s := openTemp(t)
	const writers, batches = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				b := &Batch{
					Events:     []event.Event{errEvent(fmt.Sprintf("w%d-%d", w, i), time.Now(), []alert.Filesystem{fs1, fs2, fs3}[i%3], "EIO", 2)},
					Deliveries: []Delivery{{Channel: "w", Alert: alert.Alert{ID: fmt.Sprintf("w%d-%d", w, i)}}},
				}
				if err := s.Commit(ctx, b); err != nil {
					errs <- err
					return
				}
				if i%4 == 0 {
					if err := s.MarkDelivered(ctx, b.Deliveries[0].ID, time.Now()); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Events(ctx, EventQuery{FS: "/data", Limit: 10}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Filesystems(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := s.Backlog(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := s.Prune(ctx, base); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, s, "events"); n != writers*batches {
		t.Errorf("%d events, want %d", n, writers*batches)
	}
	var errors uint64
	fss, _ := s.Filesystems(ctx)
	for _, f := range fss {
		errors += f.Errors
	}
	if errors != 2*writers*batches {
		t.Errorf("health rows count %d errors, want %d", errors, 2*writers*batches)
	}
	if bl, _ := s.Backlog(ctx); len(bl) != 1 || bl[0].Pending != writers*batches*3/4 {
		t.Errorf("backlog: %+v", bl)
	}
}

func TestRequests(t *testing.T) {
	s := openTemp(t)
	commit(t, s, &Batch{Events: []event.Event{errEvent("r1", base, fs1, "EIO", 1)}})
	for _, name := range []string{fs1.UUID, fs1.Device, fs1.Mountpoints[0], fs1.Mountpoints[0] + "/"} {
		if keys, err := s.FSKeys(ctx, name); err != nil || len(keys) != 1 || keys[0] != fs1.UUID {
			t.Errorf("FSKeys(%q) = %v, %v", name, keys, err)
		}
	}
	if keys, err := s.FSKeys(ctx, "/nowhere"); err != nil || len(keys) != 0 {
		t.Errorf("FSKeys of an unknown name = %v, %v", keys, err)
	}
	id, err := s.AddRequest(ctx, RequestResolve, fs1.UUID, "repaired")
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := s.PendingRequests(ctx); err != nil || len(rs) != 1 || rs[0].ID != id || rs[0].FSKey != fs1.UUID || rs[0].Note != "repaired" || !rs[0].Done.IsZero() {
		t.Fatalf("pending: %+v, %v", rs, err)
	}
	if err := s.FinishRequest(ctx, id, "done it", base); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRequest(ctx, id, "again", base); !errors.Is(err, ErrNotFound) {
		t.Errorf("finishing twice: %v", err)
	}
	r, err := s.Request(ctx, id)
	if err != nil || r.Outcome != "done it" || !r.Done.Equal(base) {
		t.Errorf("request after finishing: %+v, %v", r, err)
	}
	if rs, _ := s.PendingRequests(ctx); len(rs) != 0 {
		t.Errorf("still pending: %+v", rs)
	}
}
