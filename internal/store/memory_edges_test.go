package store

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestMemoryIDsFromFloor: an in-memory store numbers its outbox rows and
// actions from its floor up, one by one, and on from above the highest id
// SeedMemory copied, so that MergeInto can add them to the database under
// the same ids.
func TestMemoryIDsFromFloor(t *testing.T) {
	mem := openMem(t, 100)
	b := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a1"}}, {Channel: "hq", Alert: alert.Alert{ID: "a2"}}}}
	commit(t, mem, b)
	if b.Deliveries[0].ID != 100 || b.Deliveries[1].ID != 101 {
		t.Errorf("delivery ids %d, %d; want 100, 101", b.Deliveries[0].ID, b.Deliveries[1].ID)
	}
	a := &Batch{Actions: []Action{{IncidentKey: "k/EIO", Name: "remount-ro"}}}
	commit(t, mem, a)
	if a.Actions[0].ID != 102 {
		t.Errorf("action id %d, want 102", a.Actions[0].ID)
	}

	// A database whose ids reach above the floor: the seeded store goes on
	// right above them.
	disk := openTemp(t)
	for i := 0; i < 3; i++ {
		commit(t, disk, &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "d"}}}})
	}
	seeded := openMem(t, 2)
	if err := disk.SeedMemory(ctx, seeded); err != nil {
		t.Fatal(err)
	}
	c := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "m"}}}}
	commit(t, seeded, c)
	if c.Deliveries[0].ID != 4 {
		t.Errorf("id after seeding from ids 1 to 3: %d, want 4", c.Deliveries[0].ID)
	}
}

// TestMergeDamagedFiles: the damaged files of the events kept in memory are
// in the database once merged, as if the events had been committed to it.
func TestMergeDamagedFiles(t *testing.T) {
	evs := history()
	direct := openTemp(t)
	commit(t, direct, &Batch{Events: evs})
	want, err := direct.DamagedFiles(ctx, "")
	if err != nil || len(want) != 3 {
		t.Fatalf("damaged files committed directly: %+v %v, want 3", want, err)
	}

	disk := openTemp(t)
	commit(t, disk, &Batch{Events: evs[:2]})
	mem := openMem(t, 1000)
	if err := disk.SeedMemory(ctx, mem); err != nil {
		t.Fatal(err)
	}
	commit(t, mem, &Batch{Events: evs[2:]})
	if _, err := disk.MergeInto(ctx, mem); err != nil {
		t.Fatal(err)
	}
	got, err := disk.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("damaged files after the merge:\n%+v\nwant\n%+v", got, want)
	}
}

// TestMemoryTrimOutbox: Trim keeps the newest maxEvents delivered or
// given-up outbox rows of an in-memory store, and every pending one.
func TestMemoryTrimOutbox(t *testing.T) {
	mem := openMem(t, 1)
	var ds []Delivery
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		ds = append(ds, Delivery{Channel: "hq", Alert: alert.Alert{ID: id}})
	}
	b := &Batch{Deliveries: ds}
	commit(t, mem, b)
	now := time.Now()
	for _, i := range []int{0, 1, 2} {
		if err := mem.MarkDelivered(ctx, b.Deliveries[i].ID, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.MarkGaveUp(ctx, b.Deliveries[3].ID, "refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Trim(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rows, err := mem.db.QueryContext(ctx, `SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kept []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, id)
	}
	// Delivered 1, 2, 3 and given up 4: the newest two of them stay, with
	// the pending 5 and 6.
	if want := []int64{3, 4, 5, 6}; !reflect.DeepEqual(kept, want) {
		t.Errorf("outbox rows kept %v, want %v", kept, want)
	}
}

// TestIsCorrupt: a damaged database is corrupt, a storage fault and said
// so; no error, or a mistake of the caller that SQLite refuses (a
// duplicate event id), is neither.
func TestIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for i := 0; i < 200; i++ {
		evs = append(evs, fullEvent(fmt.Sprintf("e%d", i), base.Add(time.Duration(i)*time.Second)))
	}
	commit(t, s, &Batch{Events: evs})
	dup := s.Commit(ctx, &Batch{Events: []event.Event{fullEvent("e0", base)}})
	if dup == nil {
		t.Fatal("a duplicate event id was committed")
	}
	for _, e := range []error{nil, dup} {
		if IsCorrupt(e) || IsStorageFault(e) {
			t.Errorf("IsCorrupt(%v) = %v, IsStorageFault = %v; want false", e, IsCorrupt(e), IsStorageFault(e))
		}
	}
	if err := s.QuickCheck(ctx); err != nil {
		t.Fatalf("QuickCheck of a sound database: %v", err)
	}
	s.Close()

	// Every page after the first (the header and schema) is overwritten.
	f, err := os.OpenFile(PathIn(dir), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xa5}, int(st.Size())-4096)
	if _, err := f.WriteAt(junk, 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err = Open(PathIn(dir))
	if err == nil {
		defer s.Close()
		err = s.QuickCheck(ctx)
	}
	if !IsCorrupt(err) || !IsStorageFault(err) || Cause(err) != "database corrupt" {
		t.Errorf("the damaged database: %v: IsCorrupt %v, IsStorageFault %v, Cause %q; want a corrupt database",
			err, IsCorrupt(err), IsStorageFault(err), Cause(err))
	}
}

// TestSeedFrom: an in-memory store seeded from a database file it only
// reads gets its pending outbox rows under their ids and numbers its own
// above every id there; a database of another schema version, and a store
// on disk, are refused.
func TestSeedFrom(t *testing.T) {
	dir := t.TempDir()
	disk, err := Open(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a1"}}, {Channel: "hq", Alert: alert.Alert{ID: "a2"}}},
		Actions: []Action{{IncidentKey: "k/EIO", Name: "remount-ro"}}}
	commit(t, disk, b)
	if err := disk.MarkDelivered(ctx, b.Deliveries[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := disk.SeedFrom(ctx, PathIn(dir)); err == nil || !strings.Contains(err.Error(), "not an in-memory store") {
		t.Errorf("SeedFrom into a store on disk: %v", err)
	}
	disk.Close()

	mem := openMem(t, 1)
	if err := mem.SeedFrom(ctx, PathIn(dir)); err != nil {
		t.Fatal(err)
	}
	due, err := mem.DueDeliveries(ctx, time.Now().Add(time.Hour), 0)
	if err != nil || len(due) != 1 || due[0].ID != b.Deliveries[1].ID || due[0].Alert.ID != "a2" {
		t.Errorf("seeded deliveries %+v %v, want a2 under id %d", due, err, b.Deliveries[1].ID)
	}
	if acts, err := mem.PendingActions(ctx); err != nil || len(acts) != 1 || acts[0].ID != b.Actions[0].ID {
		t.Errorf("seeded actions %+v %v, want the pending one under id %d", acts, err, b.Actions[0].ID)
	}
	top := max(b.Deliveries[1].ID, b.Actions[0].ID)
	c := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "m"}}}}
	commit(t, mem, c)
	if c.Deliveries[0].ID != top+1 {
		t.Errorf("first id after seeding: %d, want %d", c.Deliveries[0].ID, top+1)
	}

	// A database of an older schema is not read.
	disk, err = Open(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disk.db.Exec(`UPDATE schema_version SET version = 5`); err != nil {
		t.Fatal(err)
	}
	disk.Close()
	old := openMem(t, 1)
	if err := old.SeedFrom(ctx, PathIn(dir)); err == nil || !strings.Contains(err.Error(), "schema version 5, not 6") {
		t.Errorf("SeedFrom a database of schema version 5: %v", err)
	}
}

// TestSeedFromReadOnlyFS: on a read-only file system (a read-only bind
// mount here), where SQLite cannot make the shared-memory file a read-only
// open of a WAL database needs, SeedFrom reads the database as immutable
// when no write-ahead log is left to read: none, or an empty one.
func TestSeedFromReadOnlyFS(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.Skip(t, testutil.Missing, "needs root to mount")
	}
	dir := t.TempDir()
	disk, err := Open(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{Deliveries: []Delivery{{Channel: "hq", Alert: alert.Alert{ID: "a1"}}}}
	commit(t, disk, b)
	disk.Close()
	ro := t.TempDir()
	if err := unix.Mount(dir, ro, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(ro, 0); err != nil {
			t.Errorf("unmounting %s: %v", ro, err)
		}
	})
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for _, wal := range []string{"none", "empty"} {
		if wal == "empty" {
			// Written through the writable path, seen read-only.
			if err := os.WriteFile(PathIn(dir)+"-wal", nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mem := openMem(t, 1)
		if err := mem.SeedFrom(ctx, PathIn(ro)); err != nil {
			t.Errorf("SeedFrom on a read-only file system, WAL %s: %v", wal, err)
			continue
		}
		due, err := mem.DueDeliveries(ctx, time.Now().Add(time.Hour), 0)
		if err != nil || len(due) != 1 || due[0].ID != b.Deliveries[0].ID {
			t.Errorf("WAL %s: seeded deliveries %+v %v, want a1 under id %d", wal, due, err, b.Deliveries[0].ID)
		}
	}
}
