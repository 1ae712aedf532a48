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

// TestWaiterFollowsTheKernelLogDescriptor: the waiter waits for the kernel
// log's descriptor while Run passes it, and no longer when Run passes -1
// (the log is no longer read): a log with records then no longer ends a
// wait. A pipe stands in for /dev/kmsg. No wait here can hang: each has a
// deadline or something that ends it at once.
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
		if got := pollTimeout(now.Add(c.in), now); got == nil || *got != c.want {
			t.Errorf("pollTimeout(now%+v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := pollTimeout(time.Time{}, now); got != nil {
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
