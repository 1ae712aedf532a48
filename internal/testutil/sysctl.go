package testutil

import (
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// SetSysctl writes value to the /proc/sys file path and returns a function
// that writes the old value back; it also runs at cleanup. From the write
// until the restore, it holds an exclusive flock(2) on the file: go test
// runs packages in parallel, and two tests that set and restore the same
// machine-wide value must not interleave (one test's restore, landing
// between another's write and its use, undid that write).
func SetSysctl(t testing.TB, path, value string) (restore func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("locking %s: %v", path, err)
	}
	old, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(path, []byte(value), 0o644)
	}
	if err != nil {
		f.Close() // releases the lock
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Errorf("restoring %s: %v", path, err)
			}
			f.Close()
		})
	}
	t.Cleanup(restore)
	return restore
}
