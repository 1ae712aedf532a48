package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// TestReadsWhileCommitting: two scans in progress and a commit made
// meanwhile each get a connection of their own besides the summary's (the
// pool has room for them), and the connections are kept once idle.
func TestReadsWhileCommitting(t *testing.T) {
	s := openTemp(t)
	commit(t, s, &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EIO", 1)}})
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	inner := 0
	err := s.ScanEvents(c, EventQuery{}, func(*event.Event, []byte) error {
		return s.ScanEvents(c, EventQuery{}, func(*event.Event, []byte) error {
			inner++
			return s.Commit(c, &Batch{Events: []event.Event{errEvent("e2", base.Add(time.Second), fs1, "EIO", 1)}})
		})
	})
	if err != nil || inner != 1 {
		t.Fatalf("a commit within two scans: %v (%d inner calls)", err, inner)
	}
	if n := count(t, s, "events"); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
	if st := s.db.Stats(); st.MaxIdleClosed != 0 || st.Idle < 3 {
		t.Errorf("pool after the scans: %d idle, %d closed as idle; want the 3 kept", st.Idle, st.MaxIdleClosed)
	}
}

// TestNewerSchemaUntouched: a database written by a newer fshealth (here
// one in rollback journal mode) is refused without being changed: it is
// not switched to WAL mode.
func TestNewerSchemaUntouched(t *testing.T) {
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EIO", 1)}})
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE schema_version SET version = 99", "PRAGMA journal_mode = DELETE"} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path); !errors.Is(err, ErrNewerSchema) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a newer database: %v, want ErrNewerSchema", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open changed the newer database")
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open made a write-ahead log for the newer database (%v)", err)
	}
}

// TestActionFSKeyOfIncident: an action without a file system key gets the
// one of its incident's key, everything before the last "/" (a device key
// has slashes of its own), and none for an incident of no file system.
func TestActionFSKeyOfIncident(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{
		{IncidentKey: IncidentKey(fs1.UUID, "EIO"), Name: "a"},
		{IncidentKey: IncidentKey(fs3.Device, "EIO"), Name: "b"},
		{IncidentKey: IncidentKey("", "EIO"), Name: "c"},
		{IncidentKey: "EIO", Name: "d"},
	}}
	commit(t, s, b)
	acts, err := s.PendingActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": fs1.UUID, "b": fs3.Device, "c": "", "d": "EIO"}
	if len(acts) != len(want) {
		t.Fatalf("%d pending actions, want %d", len(acts), len(want))
	}
	for _, a := range acts {
		if a.FSKey != want[a.Name] {
			t.Errorf("action %s of incident %q: file system key %q, want %q", a.Name, a.IncidentKey, a.FSKey, want[a.Name])
		}
	}
}
