package watch

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/sys"
)

// waiter is how Run's goroutine waits for work: in epoll_wait(2) on an
// epoll instance of its own, holding the fanotify group, the kernel log and
// an eventfd the other goroutines write to when they need Run's goroutine
// (interrupt). Waiting there rather than in the Go poller costs an event
// one system call less (no read that fails with EAGAIN before the wait),
// and the kernel log's readiness comes with the event's: the reader reads
// the log before a batch only when it has records. A record printed before
// its FAN_FS_ERROR event was queued (ext4 logs, then reports) is in the
// log's buffer when the wait sees the event, so it is never missed. The
// descriptors are registered once, not passed to the kernel on every wait
// as with ppoll(2), whose per-wait set-up and tear-down of three wait
// queues is most of the wait's cost on a virtual machine.
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
	// ep is the epoll instance (-1 once closed); kmsgFD is the kernel
	// log's descriptor registered in it (-1: none), groupAdded whether the
	// group's is.
	ep         int
	kmsgFD     int
	groupAdded bool
}

// The epoll registrations' tags (EpollEvent.Fd).
const (
	tagGroup = iota
	tagInterrupt
	tagKmsg
)

func newWaiter() (*waiter, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tagInterrupt}); err != nil {
		unix.Close(efd)
		unix.Close(ep)
		return nil, fmt.Errorf("epoll_ctl: adding the eventfd: %w", err)
	}
	return &waiter{efd: efd, ep: ep, kmsgFD: -1}, nil
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

// close releases the eventfd and the epoll instance; later interrupts do
// nothing. Run's goroutine calls it once it no longer waits.
func (q *waiter) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.efd >= 0 {
		unix.Close(q.efd)
		q.efd = -1
	}
	if q.ep >= 0 {
		unix.Close(q.ep)
		q.ep = -1
	}
}

// register brings the epoll instance's set up to date: the group's
// descriptor gfd once, and the kernel log's current descriptor (-1 once it
// is no longer read).
func (q *waiter) register(gfd, kmsgFD int) error {
	if !q.groupAdded {
		if err := unix.EpollCtl(q.ep, unix.EPOLL_CTL_ADD, gfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tagGroup}); err != nil {
			return fmt.Errorf("epoll_ctl: adding the fanotify group: %w", err)
		}
		q.groupAdded = true
	}
	if kmsgFD == q.kmsgFD {
		return nil
	}
	if q.kmsgFD >= 0 {
		// ENOENT or EBADF if the descriptor was closed, which removed
		// it: nothing to undo then.
		unix.EpollCtl(q.ep, unix.EPOLL_CTL_DEL, q.kmsgFD, nil)
		q.kmsgFD = -1
	}
	if kmsgFD >= 0 {
		if err := unix.EpollCtl(q.ep, unix.EPOLL_CTL_ADD, kmsgFD, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tagKmsg}); err != nil {
			return fmt.Errorf("epoll_ctl: adding the kernel log: %w", err)
		}
		q.kmsgFD = kmsgFD
	}
	return nil
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
		var evs [3]unix.EpollEvent
		var n int
		var werr error
		cerr := rc.Control(func(fd uintptr) {
			if werr = q.register(int(fd), kmsgFD); werr != nil {
				return
			}
			for {
				if n, werr = unix.EpollWait(q.ep, evs[:], waitMillis(deadline, time.Now())); werr != unix.EINTR {
					return
				}
			}
		})
		if cerr != nil {
			return dst, os.ErrClosed
		}
		if werr != nil {
			return dst, fmt.Errorf("waiting for events: %w", werr)
		}
		if n == 0 {
			q.timedOut = true
			return dst, errInterrupted
		}
		var groupReady, interrupted bool
		for _, e := range evs[:n] {
			switch e.Fd {
			case tagGroup:
				groupReady = e.Events&(unix.EPOLLIN|unix.EPOLLERR) != 0
			case tagInterrupt:
				interrupted = true
			case tagKmsg:
				q.kmsgReady = true
			}
		}
		if interrupted {
			if q.isClosed() {
				return dst, os.ErrClosed // the eventfd stays readable
			}
			var b [8]byte
			sys.ReadNonblock(q.efd, b[:])
			return dst, errInterrupted
		}
		if !groupReady {
			if q.kmsgReady {
				return dst, errInterrupted
			}
			continue
		}
		var rerr error
		cerr = rc.Read(func(fd uintptr) bool {
			n, rerr = sys.ReadNonblock(int(fd), buf)
			return true // never wait in the Go poller: epoll_wait did
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

// waitMillis is epoll_wait's timeout, at now, for a wait until deadline:
// -1 (none) for the zero time, else the milliseconds left, rounded up so
// that the wait never ends before the deadline, and 0 once it passed.
func waitMillis(deadline, now time.Time) int {
	if deadline.IsZero() {
		return -1
	}
	d := deadline.Sub(now)
	if d <= 0 {
		return 0
	}
	return int(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
}
