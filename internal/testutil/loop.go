package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// NewLoopDevice attaches a new zeroed file of size bytes to a free loop
// device (loopfs.Attach, autoclear) and returns the device's path; the
// device goes when the test ends.
func NewLoopDevice(t testing.TB, size int64) string {
	t.Helper()
	RequireRoot(t)
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	dev, hold, err := loopfs.Attach(img)
	if err != nil {
		t.Fatalf("attaching %s to a loop device: %v", img, err)
	}
	t.Cleanup(func() { hold.Close() })
	return dev
}
