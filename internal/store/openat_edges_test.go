package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestOpenInRefusesOtherOwners: a database file, or a file SQLite keeps
// beside it, owned by another user is refused (fshealth runs as root
// here), not opened.
func TestOpenInRefusesOtherOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.Skip(t, testutil.Missing, "needs root to give a file to another user")
	}
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, name := range []string{FileName, FileName + "-wal"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		s, err := OpenIn(fd, dir)
		if err == nil {
			s.Close()
		}
		if err == nil || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Errorf("with %s owned by uid 4242: %v, want it refused", name, err)
		}
		if err := CheckFiles(fd, dir); err == nil {
			t.Errorf("CheckFiles with %s owned by uid 4242 passed", name)
		}
		os.Remove(p)
	}
}

// TestMoveAsideRemovesSharedMemory: MoveAside removes the shared memory
// file and rollback journal of the damaged database, so that the new one
// does not start with them.
func TestMoveAsideRemovesSharedMemory(t *testing.T) {
	dir := t.TempDir()
	for _, suffix := range []string{"", "-shm", "-journal"} {
		if err := os.WriteFile(PathIn(dir)+suffix, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	aside, err := MoveAside(fd, dir, time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(aside); err != nil || string(b) != "garbage" {
		t.Errorf("the database moved aside: %q, %v", b, err)
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(PathIn(dir) + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after MoveAside (%v)", FileName+suffix, err)
		}
	}
}
