package watch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/sys"
)

// waiter is how Run's goroutine waits for work: on the fanotify group, the
// kernel log and an eventfd the other goroutines write to when they need
// Run's goroutine (interrupt). Whether a wait ends, and why, is always
// decided by a ppoll(2) of the three descriptors: ppoll asks each whether it
// is ready, so a kernel log record printed before its FAN_FS_ERROR event was
// queued (ext4 logs, then reports) is seen with the event and never missed,
// and the reader reads the log before a batch only when it has records. (An
// epoll instance's own readiness would not do: it learns of the log's
// records from the log's wake-up, which printk defers, so the event could
// be read, and sent, without its line.)
//
// How it sleeps depends on how busy it is. While the waits are short (the
// last one was ended by something within busyWait), it sleeps in that
// ppoll, in a system call of its own: an event then costs one system call
// less than a wait in the Go poller (no look that finds nothing before the
// wait). After a longer wait it sleeps in the Go poller, on an epoll
// instance holding the three descriptors, and looks at them with a ppoll
// that does not wait when the instance wakes it. That is for the runtime: a goroutine that sleeps in a
// system call for 10 ms has its P taken by the sysmon thread, and its return
// then wakes sysmon, which preempts it and polls every 20 µs for a
// millisecond and more: some 60 context switches and over a millisecond of
// CPU for each isolated error or kernel log line (docs/benchmarks.md,
// seventh round). A goroutine parked in the Go poller holds no P, and
// sysmon goes back to sleep as soon as it is parked again.
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
	// busy is set while the waits are short (busyWait): the next wait is
	// in ppoll, else in the Go poller.
	busy bool
	// ep is the epoll instance of the waits in the Go poller (nil until the
	// first, or if it could not be set up), epfd its descriptor (ep.Fd
	// would take it out of the poller) and epc its raw connection. held
	// are the descriptors it holds: only while the reader waits in the Go
	// poller or is about to again (waitInPoller adds them, a wait in ppoll
	// removes them), else each event would wake the Go poller too.
	// epTried is set once setting it up was tried: if that failed (ep is
	// nil), the reader waits in ppoll alone.
	ep      *os.File
	epc     syscall.RawConn
	epfd    int
	held    []int
	epTried bool
	// op is the state of the wait under way and of the group's read.
	op waitOp
}

// waitOp is the state of one wait and of the group's read that follows,
// and the functions the group's raw connection runs for them, made once:
// closures over readEvents' variables would put those on the heap on
// every wait, and an event would cost half a dozen allocations before its
// line.
type waitOp struct {
	fds     [3]unix.PollFd
	ts      unix.Timespec
	timeout *unix.Timespec
	ready   int
	perr    error
	buf     []byte
	n       int
	rerr    error
	poll    func(fd uintptr)
	read    func(fd uintptr) bool
}

// init makes op's functions.
func (op *waitOp) init() {
	op.poll = func(fd uintptr) {
		op.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		op.ready, op.perr = ppoll(op.fds[:], op.timeout)
	}
	op.read = func(fd uintptr) bool {
		op.n, op.rerr = sys.ReadNonblock(int(fd), op.buf)
		return true // never wait in the Go poller: ppoll did
	}
}

// busyWait is the longest wait after which the next is still made in ppoll
// (waiter), if something ended it (a wait that ended at its deadline
// changes nothing): events, log records or interrupts coming faster than
// this keep the reader on the path of fewest system calls. It is the
// runtime's 10 ms: a wait in ppoll longer than that loses its P anyway.
const busyWait = 10 * time.Millisecond

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
	return &waiter{efd: efd, epfd: -1}, nil
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
	if q.ep != nil {
		q.ep.Close()
		q.ep, q.epfd = nil, -1
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
// log message, ext4's record): ppoll's timeout, or in the Go poller the
// epoll instance's read deadline, whose timer the thread that sleeps in
// the poller runs itself. (A timer of its own would take another thread to
// wake the reader.)
func (q *waiter) readEvents(g *fanotify.Group, kmsgFD int, deadline time.Time, buf []byte, dst []fanotify.Event) ([]fanotify.Event, error) {
	if q.rc == nil {
		rc, err := g.SyscallConn()
		if err != nil {
			return dst, err
		}
		q.rc = rc
		q.op.init()
	}
	rc, op := q.rc, &q.op
	fds := &op.fds
	for {
		q.kmsgReady, q.timedOut = false, false
		if q.isClosed() {
			return dst, os.ErrClosed
		}
		*fds = [3]unix.PollFd{{Fd: -1}, {Fd: int32(q.efd), Events: unix.POLLIN}, {Fd: int32(kmsgFD), Events: unix.POLLIN}}
		var ready int
		var perr, cerr error
		start := time.Now()
		q.yield(start)
		if !q.busy && q.pollerReady() {
			ready, perr, cerr = q.waitInPoller(rc, fds, deadline)
		} else {
			q.release()
			op.timeout = pollTimeout(&op.ts, deadline, time.Now())
			cerr = rc.Control(op.poll)
			ready, perr = op.ready, op.perr
		}
		// Busy: something came within busyWait. A wait that ended at its
		// deadline leaves it as it was: the reader's own timed work (ext4's
		// record looked at again 1, 2, 4… ms after an error) neither keeps
		// it in ppoll, and the runtime's sysmon awake, after an isolated
		// error, nor takes it out of ppoll between errors that come fast.
		if ready > 0 {
			q.busy = time.Since(start) < busyWait
		}
		if errors.Is(cerr, os.ErrDeadlineExceeded) {
			cerr, ready = nil, 0
		}
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
		op.buf = buf
		cerr = rc.Read(op.read)
		n, rerr := op.n, op.rerr
		op.buf, op.rerr = nil, nil
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

// pollerReady reports whether the epoll instance of the waits in the Go
// poller is set up, setting it up on the first call. If that fails, the
// reader waits in ppoll alone: the runtime's extra work for an isolated
// event, nothing lost.
func (q *waiter) pollerReady() bool {
	if q.epTried {
		return q.ep != nil
	}
	q.epTried = true
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if unix.SetNonblock(epfd, true) != nil {
		unix.Close(epfd)
		return false
	}
	// Non-blocking, so os.NewFile puts it in the Go poller; a file that
	// is not in it takes no deadline.
	f := os.NewFile(uintptr(epfd), "epoll")
	c, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close()
		return false
	}
	q.ep, q.epc, q.epfd = f, c, epfd
	return true
}

// hold makes the epoll instance hold exactly fds (the group's, the
// eventfd, the log's; -1 is none), and reports whether it does. A number
// it holds is taken for the same file: each of the three is opened once.
func (q *waiter) hold(fds *[3]unix.PollFd) bool {
	var want [3]int
	n := 0
	for _, p := range fds {
		if p.Fd >= 0 {
			want[n] = int(p.Fd)
			n++
		}
	}
	if slices.Equal(want[:n], q.held) {
		return true
	}
	q.release()
	for _, fd := range want[:n] {
		if unix.EpollCtl(q.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}) != nil {
			q.release()
			return false
		}
		q.held = append(q.held, fd)
	}
	return true
}

// release empties the epoll instance (nothing to do if it holds nothing).
func (q *waiter) release() {
	for _, fd := range q.held {
		unix.EpollCtl(q.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	q.held = q.held[:0]
}

// waitInPoller parks in the Go poller until the epoll instance wakes it or
// deadline (zero: none) passes, looking at fds (the group's set from rc)
// with a ppoll that does not wait, until one is ready. It returns ppoll's
// result, and cerr: os.ErrDeadlineExceeded at the deadline, another error
// once the group or the instance is closed.
func (q *waiter) waitInPoller(rc syscall.RawConn, fds *[3]unix.PollFd, deadline time.Time) (ready int, perr, cerr error) {
	if err := q.ep.SetReadDeadline(deadline); err != nil {
		return 0, nil, err
	}
	rerr := q.epc.Read(func(uintptr) bool {
		cerr = rc.Control(func(fd uintptr) {
			fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			if !q.hold(fds) {
				// Wait in ppoll, then.
				var ts unix.Timespec
				ready, perr = ppoll(fds[:], pollTimeout(&ts, deadline, time.Now()))
				return
			}
			var zero unix.Timespec
			ready, perr = ppoll(fds[:], &zero)
		})
		return ready > 0 || perr != nil || cerr != nil || len(q.held) == 0
	})
	if rerr != nil && cerr == nil {
		cerr = rerr
	}
	return ready, perr, cerr
}

// ppoll is unix.Ppoll without a signal mask, made again after EINTR with
// the time left, which ppoll writes back into timeout.
func ppoll(fds []unix.PollFd, timeout *unix.Timespec) (int, error) {
	for {
		n, err := unix.Ppoll(fds, timeout, nil)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// pollTimeout is ppoll's timeout, at now, for a wait until deadline: nil
// (none) for the zero time, else ts set to the time left, zero once it
// passed.
func pollTimeout(ts *unix.Timespec, deadline, now time.Time) *unix.Timespec {
	if deadline.IsZero() {
		return nil
	}
	*ts = unix.NsecToTimespec(max(deadline.Sub(now), 0).Nanoseconds())
	return ts
}
