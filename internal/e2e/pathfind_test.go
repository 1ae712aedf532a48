package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/loopfs"
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
	if table := mustRun(t, "status", "--state-dir", state); !strings.Contains(table, " EUCLEAN "+bad) {
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

// TestPathLookupResumedAfterKill: when the daemon dies before a lookup it
// started ends, the event stays "path_pending" in the history; the next
// daemon looks the path up again and records it. The daemon is killed the
// moment the webhook receives the alert, which is nearly always before the
// lookup ends; each of three corrupted files gives one chance to catch it so.
func TestPathLookupResumedAfterKill(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	mnt := im.Mountpoint
	var files []string
	var inos []uint64
	for i := range 3 {
		p := filepath.Join(mnt, fmt.Sprintf("bad%d", i))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		files, inos = append(files, p), append(inos, st.Ino)
	}
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if err := im.Debugfs(fmt.Sprintf("sif bad%d mode 0xff", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}

	var armed atomic.Pointer[daemon]
	wh := newInspectingReceiver(t, func([]byte) {
		if d := armed.Swap(nil); d != nil {
			d.cmd.Process.Kill()
		}
	})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(mnt)+`
[[webhook]]
name = "hq"
url = `+tomlString(wh.URL())+"\n", 0o600)
	state := filepath.Join(dir, "state")

	caught := -1
	for i := range files {
		d := startDaemon(t, cfg, state)
		armed.Store(d)
		if _, err := os.Lstat(files[i]); !errors.Is(err, syscall.EUCLEAN) {
			t.Fatalf("looking up %s: %v, want EUCLEAN", files[i], err)
		}
		d.waitExit()
		for _, e := range events(t, state) {
			if e.Inode != nil && *e.Inode == inos[i] && e.PathPending {
				caught = i
			}
		}
		if caught >= 0 {
			break
		}
		t.Logf("round %d: the lookup ended before the daemon was killed", i)
	}
	if caught < 0 {
		t.Fatal("in three rounds the lookup always ended before the daemon was killed")
	}
	d := startDaemon(t, cfg, state)
	d.waitLog("resuming path lookups left pending", 1)
	var evs []event
	eventually(t, func() string {
		return fmt.Sprintf("history %+v: the path of %s was not recorded after the restart", evs, files[caught])
	},
		func() bool {
			evs = events(t, state)
			for _, e := range evs {
				if e.Inode != nil && *e.Inode == inos[caught] {
					return e.Path == files[caught] && !e.PathPending
				}
			}
			return false
		})
	d.stop()
}
