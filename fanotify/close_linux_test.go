package fanotify

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelRelease checks that kernelRelease is uname -r.
func TestKernelRelease(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kernelRelease(), strings.TrimSpace(string(b)); got != want {
		t.Errorf("kernelRelease() = %q, want %q", got, want)
	}
}

// TestEventClose closes descriptors 0 (a /dev/null put there for the test)
// and reports close errors, for FD and PIDFD alike.
func TestEventClose(t *testing.T) {
	saved, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		unix.Dup2(saved, 0)
		unix.Close(saved)
	}()
	null := func() {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fd == 0 { // 0 was free
			return
		}
		if err := unix.Dup2(fd, 0); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	closed := func() bool {
		_, err := unix.FcntlInt(0, unix.F_GETFD, 0)
		return err == unix.EBADF
	}
	for _, ev := range []Event{{FD: 0}, {FD: NoFD, Records: HasPIDFD, PIDFD: 0}} {
		null()
		if err := ev.Close(); err != nil || !closed() || ev.FD != NoFD || ev.Records&HasPIDFD != 0 && ev.PIDFD != NoPIDFD {
			t.Errorf("Close of %+v: %v, descriptor 0 closed: %v", ev, err, closed())
		}
	}
	null()
	if err := (&Event{FD: NoFD, PIDFD: 0}).Close(); err != nil || closed() {
		t.Errorf("Close of an event without a pidfd record closed descriptor 0 (%v)", err)
	}
	const bad = 1 << 20 // beyond any descriptor limit: EBADF
	for _, ev := range []Event{{FD: bad}, {FD: NoFD, Records: HasPIDFD, PIDFD: bad}, {FD: bad, Records: HasPIDFD, PIDFD: bad}} {
		err := ev.Close()
		if err == nil || !strings.Contains(err.Error(), "closing an event's descriptors") || !errors.Is(err, syscall.EBADF) ||
			ev.FD != NoFD || ev.Records&HasPIDFD != 0 && ev.PIDFD != NoPIDFD {
			t.Errorf("Close of bad descriptors: %v, event %+v", err, ev)
		}
	}
}
