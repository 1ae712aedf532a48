package kmsg

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFd: a Reader made by NewReader has no descriptor (-1, which poll(2)
// ignores, rather than 1, standard output); one made by Open returns the
// descriptor it reads, until Close.
func TestFd(t *testing.T) {
	if fd := NewReader(strings.NewReader(""), Options{}).Fd(); fd != -1 {
		t.Errorf("NewReader: Fd() = %d, want -1", fd)
	}
	p := filepath.Join(t.TempDir(), "kmsg.txt")
	if err := os.WriteFile(p, []byte(rec(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nowait := range []bool{false, true} {
		r, err := Open(p, Options{Start: StartOldest, NoWait: nowait})
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(r.Fd(), &st); err != nil {
			t.Errorf("NoWait %v: Fd() = %d: %v", nowait, r.Fd(), err)
		} else if fi, err := os.Stat(p); err != nil || st.Ino != fi.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("NoWait %v: Fd() = %d is not the file opened (%v)", nowait, r.Fd(), err)
		}
		r.Close()
	}
}
