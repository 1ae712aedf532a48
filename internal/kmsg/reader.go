package kmsg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/sys"
)

// DefaultPath is the kernel log device.
const DefaultPath = "/dev/kmsg"

// Start says where in the kernel log a Reader begins.
type Start int

const (
	// StartEnd begins after the newest record present when the Reader is
	// opened: only what the kernel logs from then on is read.
	StartEnd Start = iota
	// StartOldest begins with the oldest record still in the kernel's
	// ring buffer, which is what happened since boot unless the buffer
	// has wrapped.
	StartOldest
	// StartSeq begins with the record whose sequence number is
	// Options.Seq: older records are skipped, and if that record has been
	// overwritten already, the Reader first returns a Gap saying how many
	// were lost. Sequence numbers restart at 0 on every boot: use StartSeq
	// only with a number saved during the current boot (compare BootID).
	StartSeq
)

// Options configures a Reader.
type Options struct {
	// Start says where to begin; the zero value is StartEnd.
	Start Start
	// Seq is the first sequence number to read with StartSeq.
	Seq uint64
	// NoWait, for Open, makes Next return an error wrapping ErrNoRecord
	// at once when nothing is ready to be read, instead of waiting. The
	// caller waits for the descriptor (Fd) to become readable itself, with
	// poll(2): this lets one goroutine drain the kernel log on demand,
	// for instance right before it handles an event the kernel reported
	// elsewhere, so that what the kernel logged first is read first.
	NoWait bool
}

// ErrNoRecord is returned (wrapped) by Next on a Reader opened with
// Options.NoWait when no record is ready to be read.
var ErrNoRecord = errors.New("no kernel log record ready")

// Item is what Reader.Next returns: a Record or a Gap.
type Item interface {
	item()
}

func (Record) item() {}

// Gap reports kernel log records that a Reader could not read because the
// kernel overwrote them in its ring buffer before they were read (the
// kernel's "messages dropped" condition: read(2) on /dev/kmsg failed with
// EPIPE), or that are otherwise missing from the sequence.
type Gap struct {
	// From is the sequence number of the first missed record; it is 0
	// when Missed is 0.
	From uint64
	// Next is the sequence number of the first record read after the gap.
	Next uint64
	// Missed is the number of records lost, Next-From. It is 0 when the
	// number is not known: the kernel reported a loss before the Reader
	// had read any record to count from.
	Missed uint64
}

func (Gap) item() {}

// String describes the gap.
func (g Gap) String() string {
	if g.Missed == 0 {
		return fmt.Sprintf("lost kernel log records before record %d (number unknown)", g.Next)
	}
	return fmt.Sprintf("lost %d kernel log records (%d to %d)", g.Missed, g.From, g.Next-1)
}

// readBufferSize is the size of the buffer handed to read(2). The kernel
// fails the read with EINVAL, dropping the record, when a record does not
// fit; records are at most a few KiB (the text is limited to 1 KiB before
// escaping, plus the header and dictionary).
const readBufferSize = 32 << 10

// Reader reads kernel log records. Next must not be called concurrently
// with itself; Close may be called at any time from any goroutine and makes
// a pending Next return.
type Reader struct {
	src      io.Reader
	fd       int  // the descriptor opened by Open, else -1
	stream   bool // records may span reads (regular files)
	buf      []byte
	partial  []byte // stream mode: bytes of records not yet complete
	queue    []entry
	next     uint64 // sequence number expected next, if haveNext
	haveNext bool
	skipping bool // StartSeq: still dropping records before next
	lost     bool // read(2) failed with EPIPE since the last record
	eof      bool
	closed   atomic.Bool
}

// entry is a queued result of Next: an item or a parse error.
type entry struct {
	item Item
	err  error
}

// Open opens the kernel log device at path (normally DefaultPath) for
// reading, non-blocking and driven by the Go runtime's poller, so that a
// pending Next uses no thread, honours SetReadDeadline and returns when the
// Reader is closed.
//
// On a character device (the kernel log) every read(2) returns one record.
// A FIFO is read the same way, for tests: each write to it must hold whole
// records (up to PIPE_BUF bytes are written atomically). A regular file is
// read as a stream of records in the same format, for fixtures; Next returns
// io.EOF at its end. With StartEnd the Reader seeks to the end of the kernel
// log or file (SEEK_END); with StartOldest and StartSeq it reads from the
// beginning.
func Open(path string, opts Options) (*Reader, error) {
	if opts.Start < StartEnd || opts.Start > StartSeq {
		return nil, fmt.Errorf("kmsg: open %s: invalid start %d", path, opts.Start)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	stream := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
	case unix.S_IFIFO:
	case unix.S_IFREG:
		stream = true
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("kmsg: open %s: not a character device, FIFO or regular file (mode %#o)", path, st.Mode)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		whence := unix.SEEK_SET
		if opts.Start == StartEnd {
			whence = unix.SEEK_END
		}
		if _, err := unix.Seek(fd, 0, whence); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "seek", Path: path, Err: err}
		}
	}
	if opts.NoWait {
		r := newReader(&rawFile{fd: fd, path: path, device: !stream}, opts)
		r.fd, r.stream = fd, stream
		return r, nil
	}
	f := os.NewFile(uintptr(fd), path)
	r := newReader(f, opts)
	r.fd, r.stream = fd, stream
	return r, nil
}

// rawFile reads a non-blocking descriptor directly, without the Go runtime
// poller: a read that would block fails with ErrNoRecord.
type rawFile struct {
	fd   int
	path string
	// device is set for the kernel log device or a FIFO, whose reads
	// never wait (a regular file's may wait for its disk): they are made
	// with sys.ReadNonblock.
	device bool
}

func (f *rawFile) Read(b []byte) (int, error) {
	for {
		var n int
		var err error
		if f.device {
			n, err = sys.ReadNonblock(f.fd, b)
		} else {
			n, err = unix.Read(f.fd, b)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, ErrNoRecord
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *rawFile) Close() error { return unix.Close(f.fd) }

// Fd returns the descriptor of a Reader made by Open, for poll(2), or -1
// for one made by NewReader. It stays valid until Close.
func (r *Reader) Fd() int { return r.fd }

// NewReader returns a Reader of records from src, which must behave like
// /dev/kmsg: each Read returns one or more whole records (never part of
// one), fails with an error wrapping syscall.EPIPE when records were lost,
// and blocks or fails with a deadline error when there is nothing to read.
// It is the seam for tests of code that consumes a Reader. opts.Start other
// than StartSeq has no effect: reading begins with whatever src returns
// first. Close closes src if it is an io.Closer.
func NewReader(src io.Reader, opts Options) *Reader {
	return newReader(src, opts)
}

// newReader returns a Reader of src in record mode.
func newReader(src io.Reader, opts Options) *Reader {
	r := &Reader{src: src, fd: -1, buf: make([]byte, readBufferSize)}
	if opts.Start == StartSeq {
		r.next, r.haveNext, r.skipping = opts.Seq, true, true
	}
	return r
}

// Next returns the next Record or Gap. It blocks until there is one (on
// the kernel log: until the kernel logs something), the read deadline
// passes (an error wrapping os.ErrDeadlineExceeded; the Reader stays
// usable), or the Reader is closed (an error wrapping os.ErrClosed). A
// record that cannot be parsed is returned as an error wrapping
// ErrMalformed, and reading can go on. At the end of a regular file or of
// a FIFO whose writers are gone, Next returns io.EOF.
//
// When records were lost, Next returns a Gap before the first record read
// after them. Losses are found from read(2) failing with EPIPE and from
// jumps in the sequence numbers.
func (r *Reader) Next() (Item, error) {
	for {
		if r.closed.Load() {
			return nil, fmt.Errorf("kmsg: %w", os.ErrClosed)
		}
		if len(r.queue) > 0 {
			e := r.queue[0]
			r.queue[0] = entry{}
			r.queue = r.queue[1:]
			return e.item, e.err
		}
		if r.eof {
			return nil, io.EOF
		}
		n, err := r.src.Read(r.buf)
		now := time.Now()
		if n > 0 {
			r.consume(r.buf[:n], now)
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EPIPE):
			r.lost = true
		case errors.Is(err, io.EOF):
			if r.stream && len(r.partial) > 0 {
				r.split(r.partial, now)
				r.partial = nil
			}
			r.eof = true
		case n > 0:
			// Return what was read first; a lasting error comes
			// back from the next read.
		default:
			if r.closed.Load() {
				return nil, fmt.Errorf("kmsg: %w", os.ErrClosed)
			}
			return nil, err
		}
	}
}

// consume handles bytes returned by one read.
func (r *Reader) consume(b []byte, now time.Time) {
	if !r.stream {
		r.split(b, now)
		return
	}
	r.partial = append(r.partial, b...)
	// Everything before the last header line is complete: a record ends
	// where the next header line begins.
	last := lastHeaderStart(r.partial)
	if last <= 0 {
		return
	}
	r.split(r.partial[:last], now)
	r.partial = append(r.partial[:0], r.partial[last:]...)
}

// lastHeaderStart returns the offset of the start of the last line in b
// that is a header line (does not begin with a space) and is preceded by a
// newline, or 0 when there is none.
func lastHeaderStart(b []byte) int {
	for i := len(b) - 2; i >= 0; i-- {
		if b[i] == '\n' && b[i+1] != ' ' {
			return i + 1
		}
	}
	return 0
}

// split parses b, which holds whole records, and queues them.
func (r *Reader) split(b []byte, now time.Time) {
	for len(b) > 0 {
		end := len(b)
		for i := 0; i+1 < len(b); i++ {
			if b[i] == '\n' && b[i+1] != ' ' {
				end = i + 1
				break
			}
		}
		rec := b[:end]
		b = b[end:]
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		parsed, err := ParseRecord(rec)
		if err != nil {
			r.queue = append(r.queue, entry{err: err})
			continue
		}
		parsed.Received = now
		r.add(parsed)
	}
}

// add queues rec, preceded by a Gap when records were lost before it.
func (r *Reader) add(rec Record) {
	if r.skipping {
		if rec.Seq < r.next {
			return // older than the requested start
		}
		r.skipping = false
	}
	switch {
	case r.haveNext && rec.Seq > r.next:
		r.queue = append(r.queue, entry{item: Gap{From: r.next, Next: rec.Seq, Missed: rec.Seq - r.next}})
	case r.lost && !r.haveNext:
		r.queue = append(r.queue, entry{item: Gap{Next: rec.Seq}})
	}
	// A sequence number going backwards (never seen on the kernel log)
	// restarts the count from it.
	r.lost = false
	r.next, r.haveNext = rec.Seq+1, true
	r.queue = append(r.queue, entry{item: rec})
}

// SetReadDeadline sets the time after which a pending or future Next fails
// with an error wrapping os.ErrDeadlineExceeded; the zero time means no
// deadline. For a Reader made by NewReader it is passed on to the source if
// that has a SetReadDeadline method, otherwise it fails with
// os.ErrNoDeadline.
func (r *Reader) SetReadDeadline(t time.Time) error {
	if d, ok := r.src.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return os.ErrNoDeadline
}

// Close stops the Reader: a pending Next returns an error wrapping
// os.ErrClosed, and so does every later call. It closes the file opened by
// Open, or the source given to NewReader if that is an io.Closer. Closing
// more than once returns nil.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if c, ok := r.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// BootID returns the kernel's random identifier of the current boot, from
// /proc/sys/kernel/random/boot_id. Sequence numbers and timestamps of
// records are only comparable between readings with the same boot id.
func BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// WallTime estimates the wall clock time at which the record was logged,
// from its Time and the current CLOCK_MONOTONIC reading. The kernel's log
// clock and CLOCK_MONOTONIC both leave out time spent suspended but drift
// apart slightly, so the estimate can be off by milliseconds; if the
// monotonic clock cannot be read, it returns Received.
func (r Record) WallTime() time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return r.Received
	}
	return now.Add(r.Time - time.Duration(ts.Nano()))
}
