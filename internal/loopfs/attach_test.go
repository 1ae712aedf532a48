package loopfs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestAttachHoldsUntilClosed: Attach attaches the file, and closing the
// handle (the only user) detaches it.
func TestAttachHoldsUntilClosed(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "img")
	if err := os.WriteFile(file, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, hold, err := loopfs.Attach(file)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(dev)
	if files, err := loopfs.BackingFiles(); err != nil || files[name] != file {
		hold.Close()
		t.Fatalf("%s backs %q (%v), want %s", dev, files[name], err, file)
	}
	if err := hold.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if files, err := loopfs.BackingFiles(); err == nil && files[name] != file {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still attached to %s after closing its only handle", dev, file)
		}
	}
}
