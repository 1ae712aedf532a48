package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestXFSKernelLogPathFromParentPointers: before Linux 7.0 an XFS
// corruption is known from the kernel log alone, which names the corrupt
// inode but not its generation. On an XFS with parent pointers (made by
// Debian 13's mkfs.xfs) the event goes out at once with its path pending,
// and the path read from the device (Debian 13's xfs_db, read-only)
// follows as a path event about the same inode. From 7.0, where XFS
// reports the corruption through FAN_FS_ERROR, the event's inode (if the
// kernel names one) gets the same treatment.
func TestXFSKernelLogPathFromParentPointers(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireXFSParentPointers(t)
	x := testutil.NewXFSProgs(t)
	im := testutil.NewImage(t, "xfs", xfsSize, "")
	mp := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	x.Run(t, "mkfs.xfs", "-q", "-f", "-n", "parent=1", im.File)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mp, "srv", "data; $(reboot)")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "table\n.db")
	if err := os.WriteFile(file, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := inodeNumber(t, file)
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	// The mode given no valid file type (xfs_db keeps the checksum right):
	// XFS's inode verifier fails when the inode is read in.
	x.Run(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", ino), "-c", "write -d core.mode 0170644", im.File)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold, OnPath: wantPaths,
		XFSDB: x.Command("xfs_db")}, false)
	if _, err := os.ReadFile(file); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("reading the corrupt inode: %v, want EUCLEAN", err)
	}
	e := c.next()
	onFS(t, e, im, "xfs")
	if e.Error != "EUCLEAN" {
		t.Errorf("corruption event: %s", event.AppendText(nil, &e))
	}
	if e.Inode == nil {
		if e.Source == event.SourceFanotify {
			// A kernel that reports it through FAN_FS_ERROR without the
			// inode (as 7.3.4 does) has nothing to look up.
			testutil.Skip(t, testutil.KernelLacks, "this kernel reports the corruption through FAN_FS_ERROR without the inode: no path to find")
		}
		t.Fatalf("the event names no inode: %s", event.AppendText(nil, &e))
	}
	if *e.Inode != ino {
		t.Fatalf("the event names inode %d, want %d", *e.Inode, ino)
	}
	if e.Path != "" || !e.PathPending || e.PathError != "" {
		t.Errorf("path %q pending %v path_error %q: want the path pending, the event not held back for it", e.Path, e.PathPending, e.PathError)
	}
	p := c.nextPath()
	if p.Inode == nil || *p.Inode != ino || p.Path != file || p.PathError != "" {
		t.Errorf("path event: inode %v path %q path_error %q, want %d %q", p.Inode, p.Path, p.PathError, ino, file)
	}
	if p.FSKey() != e.FSKey() || p.Gen() != e.Gen() {
		t.Errorf("path event about %s generation %d, the error event %s generation %d: they must match", p.FSKey(), p.Gen(), e.FSKey(), e.Gen())
	}
}
