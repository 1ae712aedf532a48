// Package journal logs every event and alert: to the systemd journal with
// its native protocol (so that each datum is a field journalctl can match
// on, e.g. `journalctl FSHEALTH_DEVICE=/dev/sda1`), or as structured logfmt
// lines on stderr when not running under systemd.
//
// Journal entries carry MESSAGE (one sanitized line), PRIORITY, MESSAGE_ID
// (one of the MessageID* constants), SYSLOG_IDENTIFIER=fshealth and
// FSHEALTH_* fields with the data verbatim: a file name with a newline is
// sent in the protocol's binary form, not cut or escaped. Fields that are
// unknown are left out; FSHEALTH_MOUNTPOINT is repeated once per mount
// point. An entry too large for a datagram is passed in a sealed memfd, as
// journald's protocol allows, so nothing is truncated.
package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// DefaultSocketPath is journald's native protocol socket.
const DefaultSocketPath = "/run/systemd/journal/socket"

// Modes.
const (
	// ModeAuto uses the journal when running under systemd (INVOCATION_ID
	// or JOURNAL_STREAM is set) and the socket accepts datagrams, and
	// stderr otherwise.
	ModeAuto = "auto"
	// ModeJournal always uses the journal; New fails if the socket does
	// not accept datagrams.
	ModeJournal = "journal"
	// ModeStderr always writes logfmt lines to stderr.
	ModeStderr = "stderr"
)

// Message ids, one per kind of entry, for MESSAGE_ID (and for
// `journalctl MESSAGE_ID=...`). They never change; dist/fshealth.catalog
// explains each (`journalctl -x`).
const (
	// MessageIDError marks a file system error event.
	MessageIDError = "8d9a4e9cc3304a7c8d6942249e608e0f"
	// MessageIDOverflow marks a lost-events (queue overflow) event.
	MessageIDOverflow = "267f6f1d5c434d9383788f32f72f971e"
	// MessageIDRedundancy marks a redundancy event: an md array under a
	// file system lost a copy, or got it back.
	MessageIDRedundancy = "ee070cb759af47b9967eefc34a7c6600"
	// MessageIDAlertError marks the first alert of an incident.
	MessageIDAlertError = "e0bf24e6719f45e8b751a91d1f31affe"
	// MessageIDAlertDigest marks a digest alert.
	MessageIDAlertDigest = "4aff71f88e844e8c95202419696f73e5"
	// MessageIDAlertReminder marks a reminder alert.
	MessageIDAlertReminder = "29038bffb34f4ea588bd664d87b5450d"
	// MessageIDAlertResolved marks a resolved alert.
	MessageIDAlertResolved = "69c55be577634ee2b61218dfe9142933"
	// MessageIDAlertTest marks a test alert.
	MessageIDAlertTest = "dacb43b6c36c404cbe8cbca767adca92"
	// MessageIDAlertOther marks an alert of any other type.
	MessageIDAlertOther = "fe0b779697a74c6aa095ebc9a7d688c2"
)

// Syslog priorities used for PRIORITY.
const (
	priCrit    = "2"
	priErr     = "3"
	priWarning = "4"
	priNotice  = "5"
	priInfo    = "6"
)

// sendTimeout bounds one datagram's send, should journald stall.
const sendTimeout = 5 * time.Second

// Config configures the Writer.
type Config struct {
	// SocketPath is journald's socket; DefaultSocketPath if empty.
	SocketPath string
	// Stderr receives logfmt lines in stderr mode, and entries the journal
	// refused in journal mode; os.Stderr if nil.
	Stderr io.Writer
	// Mode is ModeAuto (the default if empty), ModeJournal or ModeStderr.
	Mode string
}

// Writer logs events and alerts. It implements alert.Notifier (as the
// channel "journal") and is safe for concurrent use.
type Writer struct {
	mode    string
	addr    *net.UnixAddr
	handler slog.Handler

	mu   sync.Mutex
	conn *net.UnixConn

	// maxDatagram, if positive, sends larger entries through a memfd
	// without trying a datagram first (for tests).
	maxDatagram int
}

// Writer is an alert.Notifier.
var _ alert.Notifier = (*Writer)(nil)

// New returns a Writer for cfg's mode; in ModeAuto it decides here, once,
// between the journal and stderr.
func New(cfg Config) (*Writer, error) {
	if cfg.SocketPath == "" {
		cfg.SocketPath = DefaultSocketPath
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	w := &Writer{
		addr:    &net.UnixAddr{Name: cfg.SocketPath, Net: "unixgram"},
		handler: slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}),
	}
	switch cfg.Mode {
	case ModeStderr:
		w.mode = ModeStderr
		return w, nil
	case ModeJournal:
		if err := w.dial(); err != nil {
			return nil, fmt.Errorf("journal: %s: %v", cfg.SocketPath, unwrapOp(err))
		}
		w.mode = ModeJournal
		return w, nil
	case ModeAuto, "":
		w.mode = ModeStderr
		if os.Getenv("INVOCATION_ID") != "" || os.Getenv("JOURNAL_STREAM") != "" {
			if w.dial() == nil {
				w.mode = ModeJournal
			}
		}
		return w, nil
	}
	return nil, fmt.Errorf("journal: unknown mode %q (want %s, %s or %s)", cfg.Mode, ModeAuto, ModeJournal, ModeStderr)
}

// dial checks that the socket path accepts datagrams and opens the
// Writer's socket. The socket is not connected: each entry is addressed to
// the socket path, so a restarted journald is reached without reconnecting.
func (w *Writer) dial() error {
	probe, err := net.DialUnix("unixgram", nil, w.addr)
	if err != nil {
		return err
	}
	probe.Close()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // autobind
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.conn
	w.conn = c
	w.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Mode returns ModeJournal or ModeStderr: where entries go.
func (w *Writer) Mode() string { return w.mode }

// Name returns "journal", the channel's name.
func (w *Writer) Name() string { return "journal" }

// Close closes the connection to journald.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}

// LogEvent logs e. Should journald refuse the entry, it goes to stderr.
func (w *Writer) LogEvent(e *event.Event) {
	if e == nil {
		return
	}
	_ = w.write(EventFields(e))
}

// Send logs a. It returns an error only when the entry could be written
// neither to its destination nor, as a fallback, to stderr.
func (w *Writer) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return errors.New("journal: no alert")
	}
	return w.write(AlertFields(a))
}

// Field is one journal field. Names are upper case; values are arbitrary
// bytes.
type Field struct {
	Name, Value string
}

// EventFields returns the journal fields for e, in the order they are sent.
func EventFields(e *event.Event) []Field {
	pri, id := priErr, MessageIDError
	switch e.Kind {
	case event.KindOverflow:
		pri, id = priWarning, MessageIDOverflow
	case event.KindRedundancy:
		id = MessageIDRedundancy
	}
	f := make([]Field, 0, 20)
	f = append(f, Field{"MESSAGE", message(e)}, Field{"PRIORITY", pri}, Field{"MESSAGE_ID", id})
	f = append(f, Field{"SYSLOG_IDENTIFIER", "fshealth"})
	f = add(f, "FSHEALTH_KIND", e.Kind)
	f = add(f, "FSHEALTH_SOURCE", e.Source)
	f = add(f, "FSHEALTH_EVENT_ID", e.ID)
	if e.Kind != event.KindOverflow {
		f = append(f, Field{"FSHEALTH_ERRNO", strconv.Itoa(e.Errno)})
		f = add(f, "FSHEALTH_ERROR", e.Error)
		f = add(f, "FSHEALTH_ERROR_TEXT", e.ErrorText)
		f = append(f, Field{"FSHEALTH_ERROR_COUNT", strconv.FormatUint(uint64(e.ErrorCount), 10)})
	}
	f = add(f, "FSHEALTH_DEVICE", e.Device)
	f = add(f, "FSHEALTH_UUID", e.UUID)
	f = add(f, "FSHEALTH_FSTYPE", e.FSType)
	f = add(f, "FSHEALTH_LABEL", e.Label)
	for _, m := range e.Mountpoints {
		f = add(f, "FSHEALTH_MOUNTPOINT", m)
	}
	if e.Inode != nil {
		f = append(f, Field{"FSHEALTH_INODE", strconv.FormatUint(*e.Inode, 10)})
	}
	f = add(f, "FSHEALTH_PATH", e.Path)
	f = add(f, "FSHEALTH_PATH_ERROR", e.PathError)
	f = add(f, "FSHEALTH_KERNEL_MESSAGE", e.KernelMessage)
	return storageFields(f, e)
}

// storageFields appends the storage stack under the event's file system
// in one line, and each disk's device node.
func storageFields(f []Field, e *event.Event) []Field {
	f = add(f, "FSHEALTH_STORAGE", event.StorageText(e.Storage))
	for _, d := range storage.Disks(e.Storage) {
		f = add(f, "FSHEALTH_DISK", d.Node)
	}
	return f
}

// AlertFields returns the journal fields for a, in the order they are sent.
func AlertFields(a *alert.Alert) []Field {
	f := make([]Field, 0, 24)
	f = append(f,
		Field{"MESSAGE", alertMessage(a)},
		Field{"PRIORITY", alertPriority(a.Severity)},
		Field{"MESSAGE_ID", alertMessageID(a.Type)},
		Field{"SYSLOG_IDENTIFIER", "fshealth"})
	f = add(f, "FSHEALTH_ALERT_ID", a.ID)
	f = add(f, "FSHEALTH_ALERT_TYPE", a.Type)
	f = add(f, "FSHEALTH_SEVERITY", a.Severity)
	f = add(f, "FSHEALTH_RULE", a.Rule)
	if a.Test {
		f = append(f, Field{"FSHEALTH_TEST", "1"})
	}
	if ev := a.Event; ev != nil {
		f = add(f, "FSHEALTH_EVENT_ID", ev.ID)
		if ev.Kind != event.KindOverflow {
			f = append(f, Field{"FSHEALTH_ERRNO", strconv.Itoa(ev.Errno)})
		}
	}
	errName := a.ErrorKind
	if errName == "" && a.Event != nil {
		errName = a.Event.Error
	}
	f = add(f, "FSHEALTH_ERROR", errName)
	f = append(f, Field{"FSHEALTH_ERROR_COUNT", strconv.FormatUint(a.Count, 10)})
	fsys := a.Filesystem
	f = add(f, "FSHEALTH_DEVICE", fsys.Device)
	f = add(f, "FSHEALTH_UUID", fsys.UUID)
	f = add(f, "FSHEALTH_FSTYPE", fsys.FSType)
	f = add(f, "FSHEALTH_LABEL", fsys.Label)
	for _, m := range fsys.Mountpoints {
		f = add(f, "FSHEALTH_MOUNTPOINT", m)
	}
	if ev := a.Event; ev != nil {
		if ev.Inode != nil {
			f = append(f, Field{"FSHEALTH_INODE", strconv.FormatUint(*ev.Inode, 10)})
		}
		f = add(f, "FSHEALTH_PATH", ev.Path)
		f = storageFields(f, ev)
	}
	return f
}

// add appends the field unless its value is empty.
func add(f []Field, name, value string) []Field {
	if value == "" {
		return f
	}
	return append(f, Field{name, value})
}

// message is the one-line MESSAGE for an event: its text form without the
// time stamp (the journal has its own).
func message(e *event.Event) string {
	line := string(event.AppendText(nil, e))
	if _, rest, ok := strings.Cut(line, " "); ok {
		line = rest
	}
	return oneLine(strings.TrimSuffix(line, "\n"))
}

// alertMessage is the one-line MESSAGE for an alert.
func alertMessage(a *alert.Alert) string {
	var b strings.Builder
	if a.Test {
		b.WriteString("TEST ")
	}
	fmt.Fprintf(&b, "%s alert (%s): %s", a.Severity, a.Type, a.Summary)
	if a.Count > 1 {
		fmt.Fprintf(&b, " [%d errors]", a.Count)
	}
	if a.Rule != "" {
		fmt.Fprintf(&b, " [rule %s]", a.Rule)
	}
	return oneLine(b.String())
}

// oneLine returns s unchanged if it has no control characters and is valid
// UTF-8 (as event.AppendText's lines are), and escaped with event.Clean
// otherwise.
func oneLine(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return event.Clean(s)
		}
	}
	return s
}

// alertPriority maps an alert severity to a syslog priority.
func alertPriority(severity string) string {
	switch severity {
	case alert.SeverityCritical:
		return priCrit
	case alert.SeverityWarning:
		return priWarning
	case alert.SeverityInfo:
		return priInfo
	}
	return priNotice
}

// alertMessageID returns the MESSAGE_ID for an alert type.
func alertMessageID(typ string) string {
	switch typ {
	case alert.TypeError:
		return MessageIDAlertError
	case alert.TypeDigest:
		return MessageIDAlertDigest
	case alert.TypeReminder:
		return MessageIDAlertReminder
	case alert.TypeResolved:
		return MessageIDAlertResolved
	case alert.TypeTest:
		return MessageIDAlertTest
	}
	return MessageIDAlertOther
}

// AppendNative appends fields in journald's native protocol: NAME=value
// lines, or, for values with a newline, NAME, a newline, the value's
// length as a little-endian uint64, the value and a newline.
func AppendNative(b []byte, fields []Field) []byte {
	for _, f := range fields {
		b = append(b, f.Name...)
		if strings.IndexByte(f.Value, '\n') < 0 {
			b = append(b, '=')
			b = append(b, f.Value...)
		} else {
			b = append(b, '\n')
			b = binary.LittleEndian.AppendUint64(b, uint64(len(f.Value)))
			b = append(b, f.Value...)
		}
		b = append(b, '\n')
	}
	return b
}

// write sends fields to the journal, or writes them to stderr.
func (w *Writer) write(fields []Field) error {
	if w.mode != ModeJournal {
		return w.stderr(fields, nil)
	}
	err := w.sendJournal(AppendNative(nil, fields))
	if err == nil {
		return nil
	}
	if serr := w.stderr(fields, err); serr != nil {
		return fmt.Errorf("journal: %v; stderr: %v", err, serr)
	}
	return nil
}

// sendJournal sends one entry, through a memfd if it is too large for a
// datagram.
func (w *Writer) sendJournal(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return errors.New("journal: closed")
	}
	c := w.conn
	_ = c.SetWriteDeadline(time.Now().Add(sendTimeout))
	var err error
	if w.maxDatagram <= 0 || len(b) <= w.maxDatagram {
		_, _, err = c.WriteMsgUnix(b, nil, w.addr)
		if err == nil {
			return nil
		}
	}
	if err == nil || errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS) {
		err = w.sendMemfd(c, b)
	}
	if err != nil {
		return fmt.Errorf("journal: %s: %v", w.addr.Name, unwrapOp(err))
	}
	return nil
}

// sendMemfd passes b in a sealed memfd, as journald accepts for entries
// larger than a datagram.
func (w *Writer) sendMemfd(c *net.UnixConn, b []byte) error {
	fd, err := unix.MemfdCreate("fshealth-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), "fshealth-journal")
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("writing the memfd: %v", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fmt.Errorf("sealing the memfd: %v", err)
	}
	_, _, err = c.WriteMsgUnix(nil, unix.UnixRights(int(f.Fd())), w.addr)
	return err
}

// stderr writes fields as one logfmt line. journalErr, if not nil, is why
// the journal did not take it.
func (w *Writer) stderr(fields []Field, journalErr error) error {
	var msg, pri string
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		switch f.Name {
		case "MESSAGE":
			msg = f.Value
		case "PRIORITY":
			pri = f.Value
		case "SYSLOG_IDENTIFIER":
		default:
			attrs = append(attrs, slog.String(strings.ToLower(strings.TrimPrefix(f.Name, "FSHEALTH_")), f.Value))
		}
	}
	if journalErr != nil {
		attrs = append(attrs, slog.String("journal_error", journalErr.Error()))
	}
	level := slog.LevelInfo
	switch pri {
	case priCrit, priErr:
		level = slog.LevelError
	case priWarning:
		level = slog.LevelWarn
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	return w.handler.Handle(context.Background(), r)
}

// unwrapOp drops net.OpError's repetition of the address.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Err
		}
		return oe.Err
	}
	return err
}
