package e2e_test

import (
	"context"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	fsevent "github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/store"
	"github.com/fshealth/fshealth/internal/testutil"
)

// corruptFile creates rel (and its directory) on im, corrupts its inode
// offline (mode 0xff) and mounts im again; it returns the inode number.
func corruptFile(t *testing.T, im *loopfs.Image, rel string) uint64 {
	t.Helper()
	p := filepath.Join(im.Mountpoint, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Debugfs("sif " + rel + " mode 0xff"); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestDaemonFindsPathAfterAlert: the daemon alerts about a corrupted
// inode at once, its path pending (a real webhook receiver gets the alert
// before any path is known); the path, found read-only on the device, is
// then added to the event in the history and shown by status, and a
// later error about the inode is alerted with the path. ext4 counts only
// the errors the test caused: fshealth raises none.
func TestDaemonFindsPathAfterAlert(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	ino := corruptFile(t, im, "dir/bad")
	bad := filepath.Join(im.Mountpoint, "dir/bad")
	dir := t.TempDir()
	wh := newReceiver(t)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+`
[[webhook]]
name = "hq"
url = `+tomlString(wh.URL())+"\n", 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	before, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := os.Lstat(bad); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the corrupted inode: %v, want EUCLEAN", err)
	}
	var first alertBody
	if err := json.Unmarshal(wh.waitAccepted(t, 1)[0].Body, &first); err != nil {
		t.Fatal(err)
	}
	if e := first.Event; e == nil || e.Inode == nil || *e.Inode != ino || e.Path != "" || !e.PathPending {
		t.Fatalf("first alert's event %+v, want inode %d with its path pending", first.Event, ino)
	}

	var evs []event
	eventually(t, func() string {
		return "the history's event has no path: " + strings.TrimSpace(mustRun(t, "events", "--json", "--state-dir", state))
	},
		func() bool { evs = events(t, state); return len(evs) == 1 && evs[0].Path == bad })
	if evs[0].PathPending || evs[0].PathError != "" || evs[0].ID != first.Event.ID {
		t.Errorf("history event %+v, want the alerted event with its path and nothing pending", evs[0])
	}
	st := getStatus(t, state)
	if len(st.Filesystems) != 1 || st.Filesystems[0].LastPath != bad || st.Filesystems[0].LastInode == nil || *st.Filesystems[0].LastInode != ino {
		t.Errorf("status %+v, want the last error's path %s", st.Filesystems, bad)
	}
	if table := statusOut(t, "--state-dir", state); !strings.Contains(table, " EUCLEAN "+bad) {
		t.Errorf("the status table does not show the path:\n%s", table)
	}

	// Looked up again: the alert carries the path at once.
	os.Lstat(bad)
	var second *alertBody
	eventually(t, func() string { return "no second alert about the inode" }, func() bool {
		for _, a := range wh.accepted(t) {
			if a.Event != nil && a.Event.ID != first.Event.ID {
				second = &a
				return true
			}
		}
		return false
	})
	if e := second.Event; e.Inode == nil || *e.Inode != ino || e.Path != bad || e.PathPending {
		t.Errorf("second alert's event %+v, want the path %s at once", e, bad)
	}

	// A marker error: once it is in the history, ext4 has published its
	// count, with every error before it.
	trigger(t, im, "e2e: marker")
	evs = waitErrors(t, state, 3)
	after, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	if after != before+3 || len(evs) != 3 {
		t.Errorf("errors_count %d -> %d with %d events in the history, want +3 (two lookups, one marker): fshealth must raise no error", before, after, len(evs))
	}
	d.stop()
}

// TestPendingPathLookupResumed: lookups a daemon did not finish before it
// stopped (died, or was stopped while debugfs ran) stay "path_pending" in
// the history; the next daemon looks them up again and records the path,
// or, for a file system it does not watch now, says why not. The history
// is written with the store package as that daemon left it, so that the
// lookup is surely unfinished.
func TestPendingPathLookupResumed(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	file := filepath.Join(im.Mountpoint, "dir", "file")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// ext4's file handle is the inode number and generation, 32 bits each.
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, file, 0)
	if err != nil || len(h.Bytes()) != 8 {
		t.Fatalf("file handle of %s: %v (%d bytes)", file, err, len(h.Bytes()))
	}
	ino, gen := uint64(bin.NativeEndian.Uint32(h.Bytes())), bin.NativeEndian.Uint32(h.Bytes()[4:])
	uuid := ext4UUID(t, im)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	db, err := store.Open(store.PathIn(state))
	if err != nil {
		t.Fatal(err)
	}
	pending := func(id, uuid, dev string) fsevent.Event {
		i, g := ino, gen
		return fsevent.Event{ID: id, Kind: fsevent.KindError, Time: fsevent.Time{Time: time.Now()}, Source: fsevent.SourceFanotify,
			Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 1, Device: dev, FSType: "ext4",
			UUID: uuid, Mountpoints: []string{im.Mountpoint}, Inode: &i, Generation: &g, PathPending: true}
	}
	gone := "6f1c7f2e-8d7a-4a8e-9c55-3f0b1d2e4a61" // a file system not mounted now
	err = db.Commit(context.Background(), &store.Batch{Events: []fsevent.Event{pending("e1", uuid, im.Dev), pending("e2", gone, "/dev/gone")}})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint), 0o600)
	d := startDaemon(t, cfg, state)
	d.waitLog("resuming path lookups left pending", 1)
	var evs []event
	eventually(t, func() string { return fmt.Sprintf("history %+v: want the path %s on e1, and why not on e2", evs, file) },
		func() bool {
			evs = events(t, state)
			return len(evs) == 2 && evs[0].Path == file && !evs[0].PathPending && evs[1].PathError != "" && !evs[1].PathPending
		})
	if !strings.Contains(evs[1].PathError, "not watched now") {
		t.Errorf("e2's path_error %q, want it to say the file system is not watched", evs[1].PathError)
	}
	d.stop()
}
