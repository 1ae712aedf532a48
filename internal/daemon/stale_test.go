package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// TestLockCurrent: the lock sees when its state directory's path leads to
// another directory, or to none.
func TestLockCurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Current(); err != nil {
		t.Fatalf("fresh lock: %v", err)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := l.Current(); !errors.Is(err, ErrStale) {
		t.Errorf("directory moved away: %v, want ErrStale", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := l.Current(); !errors.Is(err, ErrStale) {
		t.Errorf("another directory at the path: %v, want ErrStale", err)
	}
}

// TestMayCreate: a retry creates a missing state directory in its parent
// as it was, not in a directory on another device that is no mount point
// (where a file system is mounted while it is not), and never creates an
// existing one.
func TestMayCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	dev := parentDev(dir)
	if dev == 0 {
		t.Fatal("no device for the parent")
	}
	if !mayCreate(dir, dev) {
		t.Error("missing, parent on its device: not created")
	}
	if mayCreate(dir, dev+1) {
		t.Error("missing, parent on another device and no mount point: created")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if mayCreate(dir, dev) {
		t.Error("existing directory: to be created")
	}
}

// TestAcquireLockNoCreate: without create, a missing state directory is an
// error and is not made.
func TestAcquireLockNoCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if l, err := acquireLock(dir, false); !errors.Is(err, os.ErrNotExist) {
		l.Release()
		t.Fatalf("acquireLock of a missing directory without create: %v, want not exist", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory was made: %v", err)
	}
}

// TestLockCurrentDB: the lock sees when the database file it noted was
// replaced or removed.
func TestLockCurrentDB(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	db := filepath.Join(dir, store.FileName)
	if err := os.WriteFile(db, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.NoteDB(); err != nil {
		t.Fatal(err)
	}
	if err := l.Current(); err != nil {
		t.Fatalf("noted database: %v", err)
	}
	if err := os.WriteFile(db+".new", []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(db+".new", db); err != nil {
		t.Fatal(err)
	}
	if err := l.Current(); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("database replaced: %v, want ErrStale saying replaced", err)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if err := l.Current(); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("database removed: %v, want ErrStale saying gone", err)
	}
}

// TestHistoryFollowsPath: a history whose state directory is moved away
// and replaced by an empty one degrades at its check, and its retry
// records in the directory at the path what the one it held had, once.
func TestHistoryFollowsPath(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	h, err := openHistory(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	now := time.Now()
	ev := event.Event{ID: "e1", Time: event.Time{Time: now}, Kind: event.KindError, Source: event.SourceFanotify, UUID: "u1", FSType: "ext4",
		Device: "/dev/x", Errno: 117, ErrorCount: 1}
	if err := h.Commit(ctx, &store.Batch{Events: []event.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	h.checkStale()
	if g := h.Degraded(); g != nil {
		t.Fatalf("degraded with the path unchanged: %+v", g)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.checkStale()
	g := h.Degraded()
	if g == nil || !strings.Contains(g.Cause, "mounted over it") {
		t.Fatalf("path replaced: degraded %+v, want a cause saying so", g)
	}
	if !h.recover(ctx) || h.Degraded() != nil {
		t.Fatalf("not recovered: %+v", h.Degraded())
	}
	if pid, _ := RunningPID(dir); pid != os.Getpid() {
		t.Errorf("the lock at the path is held by pid %d, want %d", pid, os.Getpid())
	}
	evs, err := h.Store().Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != "e1" {
		t.Errorf("history at the path %+v, want e1 once", evs)
	}
	if got := h.Store().Path(); got != filepath.Join(dir, store.FileName) {
		t.Errorf("store at %s, want the path's", got)
	}
}
