package watch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/sys"
)

// waiter is how Run's goroutine waits for work: one ppoll(2) on the
// fanotify group, the kernel log and an eventfd the other goroutines
// write to when they need Run's goroutine (interrupt). Waiting in ppoll
// rather than in the Go poller costs an event one system call less (no
// read that fails with EAGAIN before the wait), and the kernel log's
// readiness comes with the event's: the reader reads the log before a
// batch only when it has records. A record printed before its FAN_FS_ERROR
// event was queued (ext4 logs, then reports) is in the log's buffer when
// ppoll sees the event, so it is never missed: ppoll asks every descriptor
// whether it is ready when it wakes. (An epoll instance would not: it
// learns of the log's records from the log's wake-up, which printk defers,
// so the event could be read, and sent, without its line.)
type waiter struct {
	mu  sync.Mutex
	efd int // -1 once closed
	// closed is set by shutdown: every wait returns os.ErrClosed.
	closed bool
	// kmsgReady is set by readEvents when the kernel log had records,
	// timedOut when its wait ended at its deadline.
	kmsgReady, timedOut bool
	// rc is the group's descriptor, taken on the first readEvents.
	rc syscall.RawConn
	// yielded is when readEvents last let the scheduler run (yield).
	yielded time.Time
}

// yieldEvery is how often, at most, readEvents lets the Go scheduler run
// (runtime.Gosched) before it waits. The runtime's sysmon thread takes a
// goroutine that has not been through the scheduler for 10 ms to be
// running too long, whether it computes or waits in a system call: it
// preempts it, takes its P away in the middle of the wait and, with every
// P then idle, sleeps until the wait's return wakes it again, after which
// it polls every 20 µs for a millisecond or more. A reader busy with
// events never passes through the scheduler on its own (a wait that
// returns at once keeps its P), so under a storm of errors that cycle
// repeated every 10 ms, and sysmon's polling added a context switch for
// every second event (docs/benchmarks.md, sixth round); a yield more often
// than that keeps it from starting. A yield costs a wake-up of an idle
// thread, so it is not made on every wait.
const yieldEvery = 5 * time.Millisecond

// yield lets the scheduler run if it has not since yieldEvery before now,
// and reports whether it did.
func (q *waiter) yield(now time.Time) bool {
	if now.Sub(q.yielded) < yieldEvery {
		return false
	}
	q.yielded = now
	runtime.Gosched()
	return true
}

func newWaiter() (*waiter, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &waiter{efd: efd}, nil
}

// interrupt makes the pending or the next wait return errInterrupted. It
// may be called from any goroutine, also after close.
func (q *waiter) interrupt() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.efd >= 0 {
		unix.Write(q.efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// shutdown makes the pending and every later wait return os.ErrClosed, so
// that the group can be closed (its Close waits until no wait uses it).
func (q *waiter) shutdown() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.interrupt()
}

// isClosed reports whether shutdown was called.
func (q *waiter) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// close releases the eventfd; later interrupts do nothing.
func (q *waiter) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.efd >= 0 {
		unix.Close(q.efd)
		q.efd = -1
	}
}

// errInterrupted is what readEvents returns when another goroutine asked
// for Run's goroutine (waiter.interrupt), the kernel log alone has records,
// or the wait's deadline passed.
var errInterrupted = os.ErrDeadlineExceeded

// readEvents waits for the group's next events and reads and decodes one
// batch of them, appended to dst, like fanotify.Group.ReadEvents. It
// returns errInterrupted instead when an interrupt came, only the kernel
// log (kmsgFD, -1 for none) has records, or deadline (zero: none) passed
// first (timedOut), and os.ErrClosed once the group is closed. The
// deadline is how Run's goroutine does what is due later (a held kernel
// log message, ext4's record) without a runtime timer, whose firing would
// wake another thread to wake this one.
func (q *waiter) readEvents(g *fanotify.Group, kmsgFD int, deadline time.Time, buf []byte, dst []fanotify.Event) ([]fanotify.Event, error) {
	if q.rc == nil {
		rc, err := g.SyscallConn()
		if err != nil {
			return dst, err
		}
		q.rc = rc
	}
	rc := q.rc
	for {
		q.kmsgReady, q.timedOut = false, false
		if q.isClosed() {
			return dst, os.ErrClosed
		}
		fds := [3]unix.PollFd{{Fd: -1}, {Fd: int32(q.efd), Events: unix.POLLIN}, {Fd: int32(kmsgFD), Events: unix.POLLIN}}
		var ready int
		var perr error
		q.yield(time.Now())
		cerr := rc.Control(func(fd uintptr) {
			fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			for {
				if ready, perr = unix.Ppoll(fds[:], pollTimeout(deadline, time.Now()), nil); perr != unix.EINTR {
					return
				}
			}
		})
		if cerr != nil {
			return dst, os.ErrClosed
		}
		if perr != nil {
			return dst, fmt.Errorf("ppoll: %w", perr)
		}
		if ready == 0 {
			q.timedOut = true
			return dst, errInterrupted
		}
		q.kmsgReady = fds[2].Revents&unix.POLLIN != 0
		if fds[1].Revents&unix.POLLIN != 0 {
			if q.isClosed() {
				return dst, os.ErrClosed // the eventfd stays readable
			}
			var b [8]byte
			sys.ReadNonblock(q.efd, b[:])
			return dst, errInterrupted
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return dst, os.ErrClosed
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLERR) == 0 {
			if q.kmsgReady {
				return dst, errInterrupted
			}
			continue
		}
		var n int
		var rerr error
		cerr = rc.Read(func(fd uintptr) bool {
			n, rerr = sys.ReadNonblock(int(fd), buf)
			return true // never wait in the Go poller: ppoll did
		})
		switch {
		case cerr != nil:
			return dst, os.ErrClosed
		case errors.Is(rerr, syscall.EAGAIN):
			continue
		case rerr != nil:
			return dst, fmt.Errorf("fanotify: read: %w", rerr)
		}
		return fanotify.Parse(dst, buf[:n])
	}
}

// pollTimeout is ppoll's timeout, at now, for a wait until deadline: nil
// (none) for the zero time, else the time left, zero once it passed.
func pollTimeout(deadline, now time.Time) *unix.Timespec {
	if deadline.IsZero() {
		return nil
	}
	ts := unix.NsecToTimespec(max(deadline.Sub(now), 0).Nanoseconds())
	return &ts
}
