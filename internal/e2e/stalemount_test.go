package e2e_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestStateMountReplaced: while the daemon records its history, the file
// system holding the state directory is unmounted lazily (the daemon holds
// files in it, so only lazily) and a fresh one is mounted at the same
// path. The daemon notices that its state directory is no longer the one
// at the path, says so (degraded, one critical alert), moves to the new
// file system with what the old database had, and lets go of the old one:
// status says it runs, and the history at the path has every event once.
func TestStateMountReplaced(t *testing.T) {
	im := newFS(t)
	old := testutil.NewImage(t, "ext4", 32<<20, "errors=continue")
	mp := old.Mountpoint
	state := filepath.Join(mp, "state")
	f := startFaultDaemon(t, im, state, "")
	f.trigger("e2e: before the mount is replaced")
	waitErrors(t, state, 1)

	oldFile, err := filepath.EvalSymlinks(old.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		t.Fatalf("unmounting %s lazily: %v", mp, err)
	}
	// Detached: the loop device goes once the daemon lets go of it;
	// old's cleanup only removes its file.
	old.Dev, old.Name, old.Mountpoint = "", "", ""
	fresh, err := loopfs.Create(t.TempDir(), "ext4", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fresh.Remove(); err != nil {
			t.Errorf("removing the new state file system: %v", err)
		}
	})
	if err := fresh.Mount(mp, "errors=continue"); err != nil {
		t.Fatal(err)
	}

	f.waitStateAlert("was unmounted or another was mounted over it")
	f.waitRecovered()
	// The daemon let go of the old file system: its loop device is gone.
	eventually(t, func() string {
		return fmt.Sprintf("the old state file system %s is still in use; daemon log:\n%s", oldFile, f.d.stderr.String())
	}, func() bool {
		files, err := loopfs.BackingFiles()
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.TrimSuffix(file, " (deleted)") == oldFile {
				return false
			}
		}
		return true
	})
	f.trigger("e2e: after the mount is replaced")
	f.checkHistory()
	if n := len(f.stateAlerts()); n != 2 {
		t.Errorf("%d alerts about the state, want 2 (degraded, resolved): %+v", n, f.stateAlerts())
	}
	f.d.stop()
}
