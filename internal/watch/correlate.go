package watch

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
)

// DefaultKernelLogHold is how long a kernel log message waits for a
// FAN_FS_ERROR event of its file system before it is reported on its own.
const DefaultKernelLogHold = 2 * time.Second

// kernelMsg is a classified kernel log message about a known file system.
type kernelMsg struct {
	kmsg.Message
	fs *enrich.Filesystem
	// at is when fshealth read the message.
	at time.Time
}

// correlator decides, for each kernel log message about a file system,
// whether it belongs to an error that fanotify reports too — then it is
// attached to that event as its kernel_message, or dropped as part of the
// same trouble — or is an error only the kernel log knows of, which
// becomes an event with source "kmsg" of its own. One error is never
// reported twice.
//
// The rule is a time window per file system: messages and FAN_FS_ERROR
// events of one file system within hold of each other describe the same
// trouble. Each message waits hold. A fanotify event takes the waiting
// message of its file system that fits it best (the kernel logs an error
// before it reports it, and the watcher reads the kernel log before each
// batch of events, so an event's own message is there); the other messages
// wait on, for the events that follow. A message whose hold ends with a
// fanotify event of its file system within hold of it, before or after, is
// dropped; one without becomes an event. Messages that ext4 logs on its own
// error path ("EXT4-fs error ...") always come with a FAN_FS_ERROR event
// and are counted in ext4's errors_count, so they never become events of
// their own: if their event was lost to a queue overflow, reconciliation
// reports them.
//
// A correlator is not safe for concurrent use: the watcher's reader
// goroutine owns it.
type correlator struct {
	hold    time.Duration
	pending []kernelMsg
	// lastEvent is when each file system last had a fanotify event (or an
	// increase of its error counters).
	lastEvent map[*enrich.Filesystem]time.Time
	// corroborate, if set, checks each event made of messages alone
	// against evidence other than the kernel log (Watcher.corroborate).
	corroborate func(e *event.Event, fs *enrich.Filesystem, msgTime time.Time)
	// complete, if set, is given each event made of messages alone once
	// all its messages are in it (Watcher.findKernelLogPath).
	complete func(e *event.Event, fs *enrich.Filesystem)
}

func newCorrelator(hold time.Duration) *correlator {
	if hold <= 0 {
		hold = DefaultKernelLogHold
	}
	return &correlator{hold: hold, lastEvent: map[*enrich.Filesystem]time.Time{}}
}

// message takes a new message.
func (c *correlator) message(m kernelMsg) { c.pending = append(c.pending, m) }

// claim is called for each event fanotify (or the btrfs error counters)
// reported for fs, at now: the waiting message of fs that fits ev best is
// attached to it as its kernel message, unless ev has one, and no longer
// waits.
func (c *correlator) claim(ev *event.Event, fs *enrich.Filesystem, now time.Time) {
	c.lastEvent[fs] = now
	best, bestScore := -1, -1
	for i := range c.pending {
		if c.pending[i].fs != fs {
			continue
		}
		if s := fitness(&c.pending[i], ev); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 || ev.KernelMessage != "" {
		return
	}
	ev.KernelMessage = c.pending[best].Text
	c.pending = slices.Delete(c.pending, best, best+1)
}

// covered reports whether a fanotify event of m's file system came within
// hold of m.
func (c *correlator) covered(m *kernelMsg) bool {
	t, ok := c.lastEvent[m.fs]
	return ok && !t.Before(m.at.Add(-c.hold)) && !t.After(m.at.Add(c.hold))
}

// fitness scores how well m describes ev: the same inode first, then the
// same kind of error, then a message of the file system over one of the
// block layer. Ties go to the earlier message.
func fitness(m *kernelMsg, ev *event.Event) int {
	s := 0
	if ev.Inode != nil && m.Inode == *ev.Inode {
		s += 4
	}
	if m.Errno != 0 && int(m.Errno) == ev.Errno || kindErrno(m.Kind) == syscall.Errno(ev.Errno) {
		s += 2
	}
	if m.FSType != kmsg.FSBlock {
		s++
	}
	return s
}

// due returns, appended to out, the events of the messages that waited
// hold without an event of their file system — one event per file system
// and kind of error, counting the messages, those of the same file system
// and kind that came later included — and when the next pending message
// falls due (zero if none is pending).
func (c *correlator) due(now time.Time, out []event.Event) ([]event.Event, time.Time) {
	type key struct {
		fs   *enrich.Filesystem
		kind kmsg.Kind
	}
	// A message is reported when its hold is over, it is not ext4's own
	// and no event covers it; messages of the same file system and kind
	// that came later go with it.
	report := func(m *kernelMsg) bool { return !ext4OwnError(&m.Message) && !c.covered(m) }
	ripe := map[key]bool{}
	for i := range c.pending {
		m := &c.pending[i]
		if !m.at.Add(c.hold).After(now) && report(m) {
			ripe[key{m.fs, m.Kind}] = true
		}
	}
	var next time.Time
	groups := map[key]int{} // index in out
	kept := c.pending[:0]
	for _, m := range c.pending {
		k := key{m.fs, m.Kind}
		deadline := m.at.Add(c.hold)
		if deadline.After(now) && !(ripe[k] && report(&m)) {
			kept = append(kept, m)
			if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
			continue
		}
		if !report(&m) {
			continue
		}
		if i, ok := groups[k]; ok {
			out[i].ErrorCount++
			if out[i].Inode == nil && m.Inode != 0 {
				ino := m.Inode
				out[i].Inode = &ino
			}
			continue
		}
		groups[k] = len(out)
		out = append(out, kmsgEvent(&m))
		if c.corroborate != nil {
			c.corroborate(&out[len(out)-1], m.fs, m.at)
		}
	}
	for k, i := range groups {
		e := &out[i]
		e.Message = fmt.Sprintf("%d %s message(s) in the kernel log; the kernel sent no FAN_FS_ERROR event for them", e.ErrorCount, describeKind(k.kind))
		if c.complete != nil {
			c.complete(e, k.fs)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	// Events older than twice the hold cover no message still waiting.
	for fs, t := range c.lastEvent {
		if now.Sub(t) > 2*c.hold {
			delete(c.lastEvent, fs)
		}
	}
	return out, next
}

// forget drops what the correlator holds about fs, which is gone.
func (c *correlator) forget(fs *enrich.Filesystem) {
	delete(c.lastEvent, fs)
	kept := c.pending[:0]
	for _, m := range c.pending {
		if m.fs != fs {
			kept = append(kept, m)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
}

// ext4OwnError reports whether m is logged by ext4's error path, which
// also sends FAN_FS_ERROR and counts the error in errors_count.
func ext4OwnError(m *kmsg.Message) bool {
	return m.FSType == kmsg.FSExt4 && strings.HasPrefix(m.Text, "EXT4-fs error ")
}

// kmsgEvent is the event of a message no fanotify event came with.
func kmsgEvent(m *kernelMsg) event.Event {
	fs := m.fs
	e := event.Event{Kind: event.KindError, Time: event.Time{Time: m.at}, Source: event.SourceKmsg, ErrorCount: 1,
		Storage: fs.Storage, KernelMessage: m.Text}
	fs.Describe(&e)
	errno := m.Errno
	if errno == 0 {
		errno = kindErrno(m.Kind)
	}
	e.Errno, e.Error, e.ErrorText = int(errno), event.ErrnoName(int(errno)), errno.Error()
	if m.Inode != 0 {
		ino := m.Inode
		e.Inode = &ino
	}
	return e
}

// kindErrno is the errno that stands for a kind of error when the message
// prints none.
func kindErrno(k kmsg.Kind) syscall.Errno {
	switch k {
	case kmsg.KindCorruption:
		return syscall.EUCLEAN // the kernel's EFSCORRUPTED
	case kmsg.KindChecksum:
		return syscall.EBADMSG // the kernel's EFSBADCRC
	case kmsg.KindShutdown:
		return syscall.ESHUTDOWN
	default:
		return syscall.EIO
	}
}

// describeKind names a kind of error in prose.
func describeKind(k kmsg.Kind) string {
	switch k {
	case kmsg.KindCorruption:
		return "corruption"
	case kmsg.KindChecksum:
		return "checksum failure"
	case kmsg.KindShutdown:
		return "shutdown"
	case kmsg.KindIOError:
		return "I/O error"
	case kmsg.KindDeviceError:
		return "device error"
	}
	return "error"
}
