package watch

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestWaiterFollowsTheKernelLogDescriptor: the waiter's epoll set holds the
// kernel log's descriptor while Run passes it, and drops it when Run passes
// -1 (the log is no longer read): a log with records then no longer ends a
// wait. A pipe stands in for /dev/kmsg.
func TestWaiterFollowsTheKernelLogDescriptor(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	g, err := fanotify.New(fanotify.Config{Class: fanotify.ClassNotif, Report: fanotify.ReportFID, OwnPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	q, err := newWaiter()
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, fanotify.ReadBufferSize)

	if _, err := unix.Write(p[1], []byte("6,1,2,-;record\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.readEvents(g, p[0], buf, nil); !errors.Is(err, errInterrupted) || !q.kmsgReady {
		t.Fatalf("with a record in the log: %v, kmsgReady %v; want errInterrupted, true", err, q.kmsgReady)
	}

	// The record is still unread, but the log is no longer passed.
	done := make(chan error, 1)
	go func() {
		_, err := q.readEvents(g, -1, buf, nil)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a wait without the kernel log returned at once: %v, kmsgReady %v", err, q.kmsgReady)
	case <-time.After(200 * time.Millisecond):
	}
	q.interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) || q.kmsgReady {
			t.Errorf("interrupted: %v, kmsgReady %v; want errInterrupted, false", err, q.kmsgReady)
		}
	case <-time.After(waitTimeout):
		t.Fatal("an interrupt did not end the wait")
	}

	// Passed again, it ends waits again; after shutdown every wait ends
	// with os.ErrClosed.
	if _, err := q.readEvents(g, p[0], buf, nil); !errors.Is(err, errInterrupted) || !q.kmsgReady {
		t.Errorf("the log passed again: %v, kmsgReady %v; want errInterrupted, true", err, q.kmsgReady)
	}
	q.shutdown()
	if _, err := q.readEvents(g, p[0], buf, nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after shutdown: %v, want os.ErrClosed", err)
	}
}
