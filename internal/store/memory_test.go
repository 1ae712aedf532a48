package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

func openMem(t *testing.T, floor int64) *Store {
	t.Helper()
	m, err := OpenMemory(floor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestMemoryMerge: what the in-memory store records while the database is
// unusable — events, counters, outbox rows created there and those carried
// over from the database and then delivered, actions — ends up in the
// database once, under the same ids.
func TestMemoryMerge(t *testing.T) {
	disk := openTemp(t)
	now := time.Now()
	b := &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EUCLEAN", 2)},
		Deliveries:   []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a1"}}, {Channel: "hq", Alert: alert.Alert{ID: "a2"}}},
		Actions:      []Action{{IncidentKey: "k/EUCLEAN", Name: "remount-ro", EventID: "e1"}},
		Ext4Reported: map[string]uint64{fs1.UUID: 2}}
	commit(t, disk, b)
	if err := disk.MarkDelivered(ctx, b.Deliveries[1].ID, now); err != nil {
		t.Fatal(err)
	}

	mem := openMem(t, now.UnixMicro())
	if err := disk.SeedMemory(ctx, mem); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := mem.Ext4Reported(ctx, fs1.UUID); err != nil || !ok || n != 2 {
		t.Errorf("seeded ext4 reported = %d %v %v, want 2", n, ok, err)
	}
	due, err := mem.DueDeliveries(ctx, now.Add(time.Hour), 0)
	if err != nil || len(due) != 1 || due[0].ID != b.Deliveries[0].ID {
		t.Fatalf("seeded deliveries %+v %v, want the pending one under its id %d", due, err, b.Deliveries[0].ID)
	}
	// The carried-over delivery and action finish in memory; new ones are
	// made there.
	if err := mem.MarkDelivered(ctx, due[0].ID, now); err != nil {
		t.Fatal(err)
	}
	if err := mem.FinishAction(ctx, b.Actions[0].ID, StateDone, "remounted", "", now, now); err != nil {
		t.Fatal(err)
	}
	mb := &Batch{Events: []event.Event{errEvent("e2", base.Add(time.Second), fs1, "EUCLEAN", 3), errEvent("e3", base.Add(2*time.Second), fs2, "EIO", 1)},
		Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a3"}}}, Ext4Reported: map[string]uint64{fs1.UUID: 5}}
	commit(t, mem, mb)
	if mb.Deliveries[0].ID <= b.Deliveries[1].ID {
		t.Errorf("memory id %d not above the database's %d", mb.Deliveries[0].ID, b.Deliveries[1].ID)
	}

	st, err := disk.MergeInto(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 2 || st.Deliveries != 2 {
		t.Errorf("merged %+v, want 2 events and 2 deliveries", st)
	}
	if n := count(t, disk, "events"); n != 3 {
		t.Errorf("%d events, want 3", n)
	}
	if n := count(t, disk, "outbox"); n != 3 {
		t.Errorf("%d outbox rows, want 3 (none doubled)", n)
	}
	pending, err := disk.DueDeliveries(ctx, now.Add(time.Hour), 0)
	if err != nil || len(pending) != 1 || pending[0].Alert.ID != "a3" || pending[0].ID != mb.Deliveries[0].ID {
		t.Errorf("pending after merge %+v %v, want a3 under id %d", pending, err, mb.Deliveries[0].ID)
	}
	if acts, err := disk.PendingActions(ctx); err != nil || len(acts) != 0 {
		t.Errorf("pending actions %+v %v, want none (finished in memory)", acts, err)
	}
	if f := findFS(t, disk, fs1.UUID); f.Errors != 5 || f.TotalErrors != 5 || f.Events != 2 {
		t.Errorf("fs1 after merge: %+v, want 5 errors in 2 events", f)
	}
	if n, _, _ := disk.Ext4Reported(ctx, fs1.UUID); n != 5 {
		t.Errorf("ext4 reported %d, want 5", n)
	}
	// New rows continue above the merged ids.
	nb := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a4"}}}}
	commit(t, disk, nb)
	if nb.Deliveries[0].ID <= mb.Deliveries[0].ID {
		t.Errorf("new id %d not above merged %d", nb.Deliveries[0].ID, mb.Deliveries[0].ID)
	}
}

// TestMemoryTrim: the in-memory store keeps the newest events.
func TestMemoryTrim(t *testing.T) {
	mem := openMem(t, 1)
	for i := 0; i < 5; i++ {
		commit(t, mem, &Batch{Events: []event.Event{errEvent(string(rune('a'+i)), base, fs1, "EIO", 1)}})
	}
	n, err := mem.Trim(ctx, 3)
	if err != nil || n != 2 {
		t.Fatalf("Trim = %d, %v; want 2 dropped", n, err)
	}
	if c, _ := mem.CountEvents(ctx); c != 3 {
		t.Errorf("%d events kept, want 3", c)
	}
}

// TestOpenInRefusesLinks: a symbolic link in place of a database file is
// refused, not followed, by OpenIn and Open.
func TestOpenInRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm", FileName + "-journal"} {
		link := filepath.Join(dir, name)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		_, err := OpenIn(fd, dir)
		if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("with %s a symlink: %v", name, err)
		}
		if _, err := Open(PathIn(dir)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open with %s a symlink: %v", name, err)
		}
		os.Remove(link)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link target was changed: %q", b)
	}
	s, err := OpenIn(fd, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path() = %s", s.Path())
	}
	s.Close()
}

// TestMoveAside: a garbage database is recognised as corrupt and moved
// aside under a timestamped name, with its WAL.
func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(PathIn(dir), []byte(strings.Repeat("garbage", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(PathIn(dir))
	if !IsCorrupt(err) || !IsStorageFault(err) {
		t.Fatalf("Open of garbage: %v, want a corrupt-database error", err)
	}
	if err := os.WriteFile(PathIn(dir)+"-wal", []byte("wal"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	aside, err := MoveAside(fd, dir, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "fshealth.db.corrupt-20261206T093000.000000Z"); aside != want {
		t.Errorf("moved to %s, want %s", aside, want)
	}
	if b, _ := os.ReadFile(aside + "-wal"); string(b) != "wal" {
		t.Error("the WAL was not moved with it")
	}
	if got := MovedAside(dir); len(got) != 1 || got[0] != aside {
		t.Errorf("MovedAside = %v", got)
	}
	s, err := OpenIn(fd, dir)
	if err != nil {
		t.Fatalf("a new database: %v", err)
	}
	s.Close()
}
