package watch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestWaiterFollowsTheKernelLogDescriptor: the waiter waits for the kernel
// log's descriptor while Run passes it, and no longer when Run passes -1
// (the log is no longer read): a log with records then no longer ends a
// wait. A pipe stands in for /dev/kmsg. No wait here can hang: each has a
// deadline or something that ends it at once.
func TestWaiterFollowsTheKernelLogDescriptor(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	g, q := newTestWaiter(t)
	p := testLog(t)
	buf := make([]byte, fanotify.ReadBufferSize)

	if _, err := unix.Write(p[1], []byte("6,1,2,-;record\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.readEvents(g, p[0], time.Time{}, buf, nil); !errors.Is(err, errInterrupted) || !q.kmsgReady {
		t.Fatalf("with a record in the log: %v, kmsgReady %v; want errInterrupted, true", err, q.kmsgReady)
	}

	// The record is still unread, but the log is no longer passed: a
	// wait ends at its deadline, never before it.
	deadline := time.Now().Add(30 * time.Millisecond)
	if _, err := q.readEvents(g, -1, deadline, buf, nil); !errors.Is(err, errInterrupted) || !q.timedOut || q.kmsgReady {
		t.Errorf("without the log, with a deadline: %v, timedOut %v, kmsgReady %v; want errInterrupted, true, false", err, q.timedOut, q.kmsgReady)
	}
	if now := time.Now(); now.Before(deadline) {
		t.Errorf("the wait ended %v before its deadline", deadline.Sub(now))
	}
	// An interrupt ends a wait that has no deadline.
	q.interrupt()
	if _, err := q.readEvents(g, -1, time.Time{}, buf, nil); !errors.Is(err, errInterrupted) || q.timedOut || q.kmsgReady {
		t.Errorf("interrupted: %v, timedOut %v, kmsgReady %v; want errInterrupted, false, false", err, q.timedOut, q.kmsgReady)
	}

	// Passed again, it ends waits again; after shutdown every wait ends
	// with os.ErrClosed.
	if _, err := q.readEvents(g, p[0], time.Time{}, buf, nil); !errors.Is(err, errInterrupted) || !q.kmsgReady {
		t.Errorf("the log passed again: %v, kmsgReady %v; want errInterrupted, true", err, q.kmsgReady)
	}
	q.shutdown()
	if _, err := q.readEvents(g, p[0], time.Time{}, buf, nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after shutdown: %v, want os.ErrClosed", err)
	}
}

func TestPollTimeout(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		in   time.Duration
		want unix.Timespec
	}{
		{-time.Second, unix.Timespec{}},
		{0, unix.Timespec{}},
		{time.Nanosecond, unix.Timespec{Nsec: 1}},
		{1500 * time.Millisecond, unix.Timespec{Sec: 1, Nsec: 500_000_000}},
		{1000 * time.Hour, unix.Timespec{Sec: 3_600_000}},
	} {
		var ts unix.Timespec
		if got := pollTimeout(&ts, now.Add(c.in), now); got != &ts || ts != c.want {
			t.Errorf("pollTimeout(now%+v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := pollTimeout(new(unix.Timespec), time.Time{}, now); got != nil {
		t.Errorf("pollTimeout(zero) = %v, want nil (no deadline)", got)
	}
}

// TestWaiterYieldsAtMostEveryYieldEvery: the reader lets the scheduler run
// on its first wait and then once per yieldEvery, however often it waits,
// so that the runtime never takes it for a goroutine running too long
// (yieldEvery's doc) and yet does not pay a yield on every event.
func TestWaiterYieldsAtMostEveryYieldEvery(t *testing.T) {
	var q waiter
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		after time.Duration
		want  bool
	}{
		{0, true},
		{time.Microsecond, false},
		{yieldEvery - time.Nanosecond, false},
		{yieldEvery, true},
		{yieldEvery + time.Millisecond, false},
		{3 * yieldEvery, true},
		{3*yieldEvery + yieldEvery/2, false},
		{4 * yieldEvery, true},
	}
	for _, s := range steps {
		if got := q.yield(t0.Add(s.after)); got != s.want {
			t.Errorf("yield at t0+%v = %v, want %v", s.after, got, s.want)
		}
	}
	if forcePreempt := 10 * time.Millisecond; yieldEvery >= forcePreempt {
		t.Errorf("yieldEvery = %v: not under the runtime's %v, after which it preempts", yieldEvery, forcePreempt)
	}
}

// TestWaiterInBothWaits: whichever way the reader sleeps (in ppoll while
// busy, in the Go poller after a longer wait; see waiter), a wait ends for
// the same reasons, each coming while it sleeps: a fanotify event (read
// and decoded), a kernel log record (a pipe stands in for /dev/kmsg), an
// interrupt, its deadline, shutdown. In the Go poller the epoll instance
// holds the descriptors passed; a wait in ppoll empties it (alternating),
// so that events no longer wake the Go poller; a new log descriptor
// replaces the old. Every wait has a deadline, so none can hang.
func TestWaiterInBothWaits(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"in ppoll", "in the Go poller", "alternating"} {
		t.Run(mode, func(t *testing.T) {
			n := 0
			busy := false
			g, q := newTestWaiter(t)
			if err := g.Mark(fanotify.TargetInode, file, fanotify.Modify, 0); err != nil {
				t.Fatal(err)
			}
			logs := [2][2]int{testLog(t), testLog(t)}
			buf := make([]byte, fanotify.ReadBufferSize)
			// wait makes one wait on the log kmsg, after doing do from
			// another goroutine a moment after the wait began.
			wait := func(kmsg int, deadline time.Time, do func()) ([]fanotify.Event, error) {
				t.Helper()
				n++
				busy = mode == "in ppoll" || mode == "alternating" && n%2 == 0
				q.busy = busy
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(20 * time.Millisecond)
					do()
				}()
				defer func() { <-done }()
				evs, err := q.readEvents(g, kmsg, deadline, buf, nil)
				if held := len(q.held) > 0; held == busy {
					t.Errorf("after the wait, the epoll instance holds %v: want held %v", q.held, !busy)
				}
				return evs, err
			}
			soon := func() time.Time { return time.Now().Add(5 * time.Second) }
			nothing := func() {}

			// An event: one write(2), one FAN_MODIFY.
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			evs, err := wait(logs[0][0], soon(), func() {
				if _, err := f.Write([]byte("x")); err != nil {
					t.Error(err)
				}
			})
			if err != nil || len(evs) != 1 || evs[0].Mask&fanotify.Modify == 0 {
				t.Fatalf("an event: %v, %+v; want one FAN_MODIFY event", err, evs)
			}
			if !busy && !slices.Equal(q.held, []int{groupFD(t, g), q.efd, logs[0][0]}) {
				t.Errorf("the epoll instance holds %v: want the group, the eventfd and the log", q.held)
			}
			// A record in the log.
			if _, err := wait(logs[0][0], soon(), func() { unix.Write(logs[0][1], []byte("6,1,2,-;record\n")) }); !errors.Is(err, errInterrupted) || !q.kmsgReady || q.timedOut {
				t.Fatalf("a log record: %v, kmsgReady %v, timedOut %v; want errInterrupted, true, false", err, q.kmsgReady, q.timedOut)
			}
			// Another log: the record still unread in the first no
			// longer ends a wait; one in the new one does.
			if _, err := wait(logs[1][0], soon(), func() { unix.Write(logs[1][1], []byte("6,2,3,-;record\n")) }); !errors.Is(err, errInterrupted) || !q.kmsgReady {
				t.Fatalf("a record in the new log: %v, kmsgReady %v; want errInterrupted, true", err, q.kmsgReady)
			}
			if !busy && !slices.Contains(q.held, logs[1][0]) || slices.Contains(q.held, logs[0][0]) {
				t.Errorf("the epoll instance holds %v: want the new log %d, not the old %d", q.held, logs[1][0], logs[0][0])
			}
			// Without a log, a deadline: the wait ends then, not before.
			deadline := time.Now().Add(60 * time.Millisecond)
			if _, err := wait(-1, deadline, nothing); !errors.Is(err, errInterrupted) || !q.timedOut || q.kmsgReady {
				t.Errorf("at the deadline: %v, timedOut %v, kmsgReady %v; want errInterrupted, true, false", err, q.timedOut, q.kmsgReady)
			}
			if now := time.Now(); now.Before(deadline) {
				t.Errorf("the wait ended %v before its deadline", deadline.Sub(now))
			}
			// An interrupt.
			if _, err := wait(-1, soon(), q.interrupt); !errors.Is(err, errInterrupted) || q.timedOut || q.kmsgReady {
				t.Errorf("an interrupt: %v, timedOut %v, kmsgReady %v; want errInterrupted, false, false", err, q.timedOut, q.kmsgReady)
			}
			// Shutdown.
			if _, err := wait(-1, soon(), q.shutdown); !errors.Is(err, os.ErrClosed) {
				t.Errorf("shutdown: %v, want os.ErrClosed", err)
			}
		})
	}
}

// groupFD returns the group's descriptor.
func groupFD(t *testing.T, g *fanotify.Group) int {
	t.Helper()
	rc, err := g.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestWaiterBusyAfterShortWaits: a wait that something ended within
// busyWait makes the next one a wait in ppoll (busy), a longer one a wait
// in the Go poller; one that ended at its deadline, however soon or late,
// leaves the choice as it was.
func TestWaiterBusyAfterShortWaits(t *testing.T) {
	testutil.RequireRoot(t)
	g, q := newTestWaiter(t)
	buf := make([]byte, fanotify.ReadBufferSize)
	q.interrupt()
	if _, err := q.readEvents(g, -1, time.Now().Add(time.Second), buf, nil); !errors.Is(err, errInterrupted) || !q.busy {
		t.Errorf("a wait that ended at once: %v, busy %v; want errInterrupted, true", err, q.busy)
	}
	for _, d := range []time.Duration{busyWait / 10, 2 * busyWait} {
		for _, busy := range []bool{true, false} {
			q.busy = busy
			if _, err := q.readEvents(g, -1, time.Now().Add(d), buf, nil); !errors.Is(err, errInterrupted) || !q.timedOut || q.busy != busy {
				t.Errorf("a wait that ended at its deadline after %v, busy before %v: %v, timedOut %v, busy %v; want errInterrupted, true, %v", d, busy, err, q.timedOut, q.busy, busy)
			}
		}
	}
	// Something that comes after busyWait.
	go func() {
		time.Sleep(busyWait + 5*time.Millisecond)
		q.interrupt()
	}()
	if _, err := q.readEvents(g, -1, time.Now().Add(5*time.Second), buf, nil); !errors.Is(err, errInterrupted) || q.timedOut || q.busy {
		t.Errorf("an interrupt after busyWait: %v, timedOut %v, busy %v; want errInterrupted, false, false", err, q.timedOut, q.busy)
	}
	if busyWait > 10*time.Millisecond {
		t.Errorf("busyWait = %v: a wait in ppoll longer than 10 ms has the runtime take the reader's P (waiter)", busyWait)
	}
}

// newTestWaiter returns a fanotify group (FID reports, polled by the
// waiter) and a waiter, both closed when the test ends.
func newTestWaiter(t *testing.T) (*fanotify.Group, *waiter) {
	t.Helper()
	g, err := fanotify.New(fanotify.Config{Class: fanotify.ClassNotif, Report: fanotify.ReportFID, OwnPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	q, err := newWaiter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.close)
	return g, q
}

// testLog returns a non-blocking pipe, read end first, that stands in for
// /dev/kmsg; it is closed when the test ends.
func testLog(t *testing.T) [2]int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p
}
