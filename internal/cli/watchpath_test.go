package cli_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

// TestWatchPrintsPathLater: `fshealth watch` prints the error about a
// corrupted inode at once with its path pending, then a "path" line (kind
// path in JSON) naming the inode and its path, found read-only on the
// device; the text form says the same.
func TestWatchPrintsPathLater(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	mnt := im.Mountpoint
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(mnt, "dir", "bad")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Debugfs("sif dir/bad mode 0xff"); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	for _, asJSON := range []bool{true, false} {
		args := []string{mnt}
		if asJSON {
			args = append([]string{"--json"}, args...)
		}
		sock, notes := notifySocket(t)
		p := startWatch(t, []string{"NOTIFY_SOCKET=" + sock}, args...)
		waitReady(t, notes)
		if _, err := os.Lstat(bad); !errors.Is(err, syscall.EUCLEAN) {
			t.Fatalf("looking up the corrupted inode: %v, want EUCLEAN", err)
		}
		// The error, then its path and ext4's record of it, each on a line
		// of its own, in the order they were found.
		first, second, record := p.line(t), p.line(t), p.line(t)
		if strings.Contains(second, " EXT4 RECORD of ") || strings.Contains(second, `"kind":"ext4"`) {
			second, record = record, second
		}
		if !strings.Contains(record, " EXT4 RECORD of ") && !strings.Contains(record, `"kind":"ext4"`) ||
			!strings.Contains(record, "ext4_lookup") {
			t.Errorf("ext4 record line %q, want ext4's record of the lookup's error", record)
		}
		if !asJSON {
			if !strings.Contains(first, " EUCLEAN ") || !strings.Contains(first, "(path pending: looked up read-only from the device)") {
				t.Errorf("error line %q", first)
			}
			if !strings.Contains(second, " PATH of inode ") || !strings.HasSuffix(strings.SplitN(second, " (found", 2)[0], ": "+bad) {
				t.Errorf("path line %q, want it to name %s", second, bad)
			}
			p.stop(t, syscall.SIGTERM)
			continue
		}
		var e, pe struct {
			Kind        string  `json:"kind"`
			Source      string  `json:"source"`
			Error       string  `json:"error"`
			Inode       *uint64 `json:"inode"`
			Generation  *uint32 `json:"generation"`
			Path        string  `json:"path"`
			PathPending bool    `json:"path_pending"`
			Device      string  `json:"device"`
		}
		if err := json.Unmarshal([]byte(first), &e); err != nil {
			t.Fatalf("%q: %v", first, err)
		}
		if err := json.Unmarshal([]byte(second), &pe); err != nil {
			t.Fatalf("%q: %v", second, err)
		}
		if e.Kind != "error" || e.Error != "EUCLEAN" || e.Inode == nil || !e.PathPending || e.Path != "" {
			t.Errorf("error event %s, want EUCLEAN about an inode, path pending", first)
		}
		if pe.Kind != "path" || pe.Source != "pathfind" || pe.Inode == nil || e.Inode == nil || *pe.Inode != *e.Inode ||
			*pe.Generation != *e.Generation || pe.Path != bad || pe.Device != im.Dev || pe.PathPending {
			t.Errorf("path event %s, want the path %s of the error's inode", second, bad)
		}
		p.stop(t, syscall.SIGTERM)
	}
}
