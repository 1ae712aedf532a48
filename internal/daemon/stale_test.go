package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
