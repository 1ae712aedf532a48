package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// fakeJournald is a unixgram listener standing in for journald.
type fakeJournald struct {
	path string
	conn *net.UnixConn
}

func listen(t *testing.T, path string) *fakeJournald {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeJournald{path: path, conn: c}
}

func newJournald(t *testing.T) *fakeJournald {
	return listen(t, filepath.Join(t.TempDir(), "socket"))
}

// entry is one received journal entry.
type entry struct {
	fields []Field
	raw    []byte
	memfd  bool
}

// receive reads one entry, from a datagram or from a memfd passed with
// SCM_RIGHTS, checking the memfd is sealed as journald requires.
func (j *fakeJournald) receive(t *testing.T) entry {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_ = j.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, oobn, _, _, err := j.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	var e entry
	e.raw = buf[:n]
	if oobn > 0 {
		if n != 0 {
			t.Fatalf("a datagram with both data (%d bytes) and ancillary data", n)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("control messages: %v %d", err, len(msgs))
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("rights: %v %v", err, fds)
		}
		f := os.NewFile(uintptr(fds[0]), "memfd")
		defer f.Close()
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		if err != nil {
			t.Fatalf("F_GET_SEALS: %v (not a memfd?)", err)
		}
		if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE; seals&want != want {
			t.Errorf("memfd seals %#x, want %#x", seals, want)
		}
		fi, _ := f.Stat()
		e.raw = make([]byte, fi.Size())
		if _, err := f.ReadAt(e.raw, 0); err != nil {
			t.Fatal(err)
		}
		e.memfd = true
	}
	e.fields, err = parseNative(e.raw)
	if err != nil {
		t.Fatalf("parsing %q: %v", e.raw, err)
	}
	return e
}

// parseNative decodes journald's native protocol, independently of
// AppendNative.
func parseNative(b []byte) ([]Field, error) {
	var fields []Field
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i <= 0 {
			return nil, fmt.Errorf("no field name at %q", b)
		}
		name := string(b[:i])
		if b[i] == '=' {
			end := bytes.IndexByte(b[i+1:], '\n')
			if end < 0 {
				return nil, fmt.Errorf("field %s: no newline", name)
			}
			fields = append(fields, Field{name, string(b[i+1 : i+1+end])})
			b = b[i+1+end+1:]
			continue
		}
		b = b[i+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("field %s: short length", name)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("field %s: bad binary value", name)
		}
		fields = append(fields, Field{name, string(b[:n])})
		b = b[n+1:]
	}
	return fields, nil
}

func ptr[T any](v T) *T { return &v }

const hostilePath = "/srv/a b/evil\n2026-01-01 EUCLEAN forged entry\nPRIORITY=0\nMESSAGE=pwned \"q\" $(touch /tmp/x) \x1b[31m\xff"

func hostileEvent() *event.Event {
	return &event.Event{
		ID: "01JEVENT000000000000000001", Kind: event.KindError,
		Time:   event.Time{Time: time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)},
		Source: event.SourceFanotify, Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 4, PID: 42,
		FSID: "1:2", Device: "/dev/loop0", FSType: "ext4", UUID: "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428", Label: "data",
		Mountpoints: []string{"/srv/a b", "/mnt/x\ny"}, Inode: ptr(uint64(12)), Generation: ptr(uint32(1)), Path: hostilePath,
	}
}

func newWriter(t *testing.T, cfg Config) *Writer {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestEventEntry(t *testing.T) {
	j := newJournald(t)
	var stderr bytes.Buffer
	w := newWriter(t, Config{SocketPath: j.path, Mode: ModeJournal, Stderr: &stderr})
	if w.Mode() != ModeJournal {
		t.Fatalf("mode %s", w.Mode())
	}
	w.LogEvent(hostileEvent())
	e := j.receive(t)
	want := []Field{
		{"MESSAGE", `EUCLEAN (structure needs cleaning) ×4 on /dev/loop0 ext4 at "/srv/a b","/mnt/x\ny" inode 12 (generation 1) path "/srv/a b/evil\n2026-01-01 EUCLEAN forged entry\nPRIORITY=0\nMESSAGE=pwned \"q\" $(touch /tmp/x) \x1b[31m\xff" uuid 0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428 pid 42`},
		{"PRIORITY", "3"},
		{"MESSAGE_ID", MessageIDError},
		{"SYSLOG_IDENTIFIER", "fshealth"},
		{"FSHEALTH_KIND", "error"},
		{"FSHEALTH_SOURCE", "fanotify"},
		{"FSHEALTH_EVENT_ID", "01JEVENT000000000000000001"},
		{"FSHEALTH_ERRNO", "117"},
		{"FSHEALTH_ERROR", "EUCLEAN"},
		{"FSHEALTH_ERROR_TEXT", "structure needs cleaning"},
		{"FSHEALTH_ERROR_COUNT", "4"},
		{"FSHEALTH_DEVICE", "/dev/loop0"},
		{"FSHEALTH_UUID", "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428"},
		{"FSHEALTH_FSTYPE", "ext4"},
		{"FSHEALTH_LABEL", "data"},
		{"FSHEALTH_MOUNTPOINT", "/srv/a b"},
		{"FSHEALTH_MOUNTPOINT", "/mnt/x\ny"},
		{"FSHEALTH_INODE", "12"},
		{"FSHEALTH_PATH", hostilePath},
	}
	if !slices.Equal(e.fields, want) {
		t.Errorf("fields:\n%q\nwant:\n%q", e.fields, want)
	}
	if e.memfd {
		t.Error("a small entry went through a memfd")
	}
	// The path is sent in the binary form, byte for byte.
	bin := binary.LittleEndian.AppendUint64([]byte("\nFSHEALTH_PATH\n"), uint64(len(hostilePath)))
	if !bytes.Contains(e.raw, append(bin, hostilePath+"\n"...)) {
		t.Errorf("no binary FSHEALTH_PATH in %q", e.raw)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestOverflowEntry(t *testing.T) {
	j := newJournald(t)
	w := newWriter(t, Config{SocketPath: j.path, Mode: ModeJournal})
	w.LogEvent(&event.Event{ID: "01JOVERFLOW", Kind: event.KindOverflow, Source: event.SourceFanotify, Message: "the kernel dropped events\nreally"})
	e := j.receive(t)
	want := []Field{
		{"MESSAGE", `QUEUE OVERFLOW: the kernel dropped events\nreally`},
		{"PRIORITY", "4"},
		{"MESSAGE_ID", MessageIDOverflow},
		{"SYSLOG_IDENTIFIER", "fshealth"},
		{"FSHEALTH_KIND", "overflow"},
		{"FSHEALTH_SOURCE", "fanotify"},
		{"FSHEALTH_EVENT_ID", "01JOVERFLOW"},
	}
	if !slices.Equal(e.fields, want) {
		t.Errorf("fields:\n%q\nwant:\n%q", e.fields, want)
	}
}

func hostileAlert() *alert.Alert {
	ev := hostileEvent()
	return &alert.Alert{
		ID: "01JALERT000000000000000001", Type: alert.TypeError, Severity: alert.SeverityCritical, Rule: "default",
		Host: "host1", Time: ev.Time.Time, Summary: event.Summary(ev),
		Filesystem: alert.Filesystem{UUID: ev.UUID, Device: ev.Device, FSType: ev.FSType, Mountpoints: ev.Mountpoints},
		ErrorKind:  "EUCLEAN", Count: 7, Since: ev.Time.Time, Event: ev,
	}
}

func TestAlertEntry(t *testing.T) {
	j := newJournald(t)
	w := newWriter(t, Config{SocketPath: j.path, Mode: ModeJournal})
	if w.Name() != "journal" {
		t.Errorf("Name = %q", w.Name())
	}
	if err := w.Send(context.Background(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	e := j.receive(t)
	want := []Field{
		{"MESSAGE", `critical alert (error): EUCLEAN on /dev/loop0 ("/srv/a b") [7 errors] [rule default]`},
		{"PRIORITY", "2"},
		{"MESSAGE_ID", MessageIDAlertError},
		{"SYSLOG_IDENTIFIER", "fshealth"},
		{"FSHEALTH_ALERT_ID", "01JALERT000000000000000001"},
		{"FSHEALTH_ALERT_TYPE", "error"},
		{"FSHEALTH_SEVERITY", "critical"},
		{"FSHEALTH_RULE", "default"},
		{"FSHEALTH_EVENT_ID", "01JEVENT000000000000000001"},
		{"FSHEALTH_ERRNO", "117"},
		{"FSHEALTH_ERROR", "EUCLEAN"},
		{"FSHEALTH_ERROR_COUNT", "7"},
		{"FSHEALTH_DEVICE", "/dev/loop0"},
		{"FSHEALTH_UUID", "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428"},
		{"FSHEALTH_FSTYPE", "ext4"},
		{"FSHEALTH_MOUNTPOINT", "/srv/a b"},
		{"FSHEALTH_MOUNTPOINT", "/mnt/x\ny"},
		{"FSHEALTH_INODE", "12"},
		{"FSHEALTH_PATH", hostilePath},
	}
	if !slices.Equal(e.fields, want) {
		t.Errorf("fields:\n%q\nwant:\n%q", e.fields, want)
	}

	// A test alert, a warning, without an event.
	a := &alert.Alert{ID: "t1", Type: alert.TypeTest, Severity: alert.SeverityWarning, Summary: "test\nalert", Test: true, Count: 1,
		Filesystem: alert.Filesystem{Device: "/dev/sdb"}}
	if err := w.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	e = j.receive(t)
	want = []Field{
		{"MESSAGE", `TEST warning alert (test): test\nalert`},
		{"PRIORITY", "4"},
		{"MESSAGE_ID", MessageIDAlertTest},
		{"SYSLOG_IDENTIFIER", "fshealth"},
		{"FSHEALTH_ALERT_ID", "t1"},
		{"FSHEALTH_ALERT_TYPE", "test"},
		{"FSHEALTH_SEVERITY", "warning"},
		{"FSHEALTH_TEST", "1"},
		{"FSHEALTH_ERROR_COUNT", "1"},
		{"FSHEALTH_DEVICE", "/dev/sdb"},
	}
	if !slices.Equal(e.fields, want) {
		t.Errorf("fields:\n%q\nwant:\n%q", e.fields, want)
	}
	for typ, id := range map[string]string{alert.TypeDigest: MessageIDAlertDigest, alert.TypeReminder: MessageIDAlertReminder,
		alert.TypeResolved: MessageIDAlertResolved, "other": MessageIDAlertOther} {
		if got := alertMessageID(typ); got != id {
			t.Errorf("%s: MESSAGE_ID %s", typ, got)
		}
	}
	if alertPriority(alert.SeverityInfo) != "6" {
		t.Error("info is not PRIORITY 6")
	}
}

func TestLargeEntryUsesMemfd(t *testing.T) {
	j := newJournald(t)
	w := newWriter(t, Config{SocketPath: j.path, Mode: ModeJournal})
	ev := hostileEvent()
	// Larger than any datagram the socket takes by default: the kernel
	// refuses it with EMSGSIZE and the entry goes through a memfd.
	ev.Path = "/big\n" + strings.Repeat("p", 600<<10)
	w.LogEvent(ev)
	e := j.receive(t)
	if !e.memfd {
		t.Fatal("not sent through a memfd")
	}
	if got := fieldValue(e.fields, "FSHEALTH_PATH"); got != ev.Path {
		t.Errorf("path of %d bytes, want %d", len(got), len(ev.Path))
	}
	// And when the limit is known in advance.
	w.maxDatagram = 100
	w.LogEvent(hostileEvent())
	e = j.receive(t)
	if !e.memfd || fieldValue(e.fields, "FSHEALTH_PATH") != hostilePath {
		t.Errorf("memfd %v, fields %q", e.memfd, e.fields)
	}
}

func fieldValue(fields []Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestStderrMode(t *testing.T) {
	var buf bytes.Buffer
	w := newWriter(t, Config{Mode: ModeStderr, Stderr: &buf, SocketPath: "/nonexistent"})
	if w.Mode() != ModeStderr {
		t.Fatalf("mode %s", w.Mode())
	}
	w.LogEvent(hostileEvent())
	if err := w.Send(context.Background(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	w.LogEvent(&event.Event{Kind: event.KindOverflow, Message: "lost"})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		` level=ERROR msg="EUCLEAN (structure needs cleaning) ×4 on /dev/loop0 ext4 at \"/srv/a b\",\"/mnt/x\\ny\" inode 12 (generation 1) path \"/srv/a b/evil\\n2026-01-01 EUCLEAN forged entry\\nPRIORITY=0\\nMESSAGE=pwned \\\"q\\\" $(touch /tmp/x) \\x1b[31m\\xff\" uuid 0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428 pid 42" message_id=8d9a4e9cc3304a7c8d6942249e608e0f kind=error source=fanotify event_id=01JEVENT000000000000000001 errno=117 error=EUCLEAN error_text="structure needs cleaning" error_count=4 device=/dev/loop0 uuid=0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428 fstype=ext4 label=data mountpoint="/srv/a b" mountpoint="/mnt/x\ny" inode=12 path="/srv/a b/evil\n2026-01-01 EUCLEAN forged entry\nPRIORITY=0\nMESSAGE=pwned \"q\" $(touch /tmp/x) \x1b[31m\xff"`,
		` level=ERROR msg="critical alert (error): EUCLEAN on /dev/loop0 (\"/srv/a b\") [7 errors] [rule default]" message_id=e0bf24e6719f45e8b751a91d1f31affe alert_id=01JALERT000000000000000001 alert_type=error severity=critical rule=default event_id=01JEVENT000000000000000001 errno=117 error=EUCLEAN error_count=7 device=/dev/loop0`,
		` level=WARN msg="QUEUE OVERFLOW: lost" message_id=267f6f1d5c434d9383788f32f72f971e kind=overflow`,
	} {
		if !strings.HasPrefix(lines[i], "time=") || !strings.Contains(lines[i], want) {
			t.Errorf("line %d:\n%s\nwant it to contain:\n%s", i, lines[i], want)
		}
	}
}

func TestAutoMode(t *testing.T) {
	j := newJournald(t)
	for _, tc := range []struct {
		invocation, stream, socket, want string
	}{
		{"abc", "", j.path, ModeJournal},
		{"", "8:123", j.path, ModeJournal},
		{"", "", j.path, ModeStderr},
		{"abc", "", filepath.Join(t.TempDir(), "none"), ModeStderr},
	} {
		t.Setenv("INVOCATION_ID", tc.invocation)
		t.Setenv("JOURNAL_STREAM", tc.stream)
		var buf bytes.Buffer
		w := newWriter(t, Config{SocketPath: tc.socket, Stderr: &buf})
		if w.Mode() != tc.want {
			t.Errorf("%+v: mode %s", tc, w.Mode())
		}
		w.LogEvent(hostileEvent())
		if tc.want == ModeJournal {
			if e := j.receive(t); fieldValue(e.fields, "FSHEALTH_PATH") != hostilePath {
				t.Errorf("entry %q", e.fields)
			}
		} else if !strings.Contains(buf.String(), "event_id=01JEVENT000000000000000001") {
			t.Errorf("stderr: %s", buf.String())
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{Mode: ModeJournal, SocketPath: filepath.Join(t.TempDir(), "none")}); err == nil ||
		!strings.Contains(err.Error(), "none: no such file or directory") {
		t.Errorf("err = %v", err)
	}
	if _, err := New(Config{Mode: "syslog"}); err == nil || err.Error() != `journal: unknown mode "syslog" (want auto, journal or stderr)` {
		t.Errorf("err = %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = testutil.SyncBuffer

func TestFallbackAndReconnect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "socket")
	j := listen(t, path)
	var buf syncBuffer
	w := newWriter(t, Config{SocketPath: path, Mode: ModeJournal, Stderr: &buf})

	// journald goes away: entries go to stderr and Send still succeeds.
	j.conn.Close()
	os.Remove(path)
	w.LogEvent(hostileEvent())
	if err := w.Send(context.Background(), hostileAlert()); err != nil {
		t.Errorf("Send: %v", err)
	}
	s := buf.String()
	if strings.Count(s, "\n") != 2 || !strings.Contains(s, "journal_error=") || !strings.Contains(s, "alert_id=01JALERT000000000000000001") {
		t.Errorf("stderr:\n%s", s)
	}

	// journald is back: the Writer reconnects.
	j = listen(t, path)
	w.LogEvent(hostileEvent())
	if e := j.receive(t); fieldValue(e.fields, "FSHEALTH_EVENT_ID") != "01JEVENT000000000000000001" {
		t.Errorf("entry %q", e.fields)
	}
	if strings.Count(buf.String(), "\n") != 2 {
		t.Errorf("stderr:\n%s", buf.String())
	}
}

func TestConcurrentWrites(t *testing.T) {
	j := newJournald(t)
	w := newWriter(t, Config{SocketPath: j.path, Mode: ModeJournal})
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ev := hostileEvent()
			ev.ID = fmt.Sprint(i)
			w.LogEvent(ev)
		})
	}
	seen := map[string]bool{}
	for range n {
		seen[fieldValue(j.receive(t).fields, "FSHEALTH_EVENT_ID")] = true
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d distinct entries, want %d", len(seen), n)
	}
}

// TestStorageFields: the storage stack goes to the journal in one line,
// and each disk's node as a field of its own.
func TestStorageFields(t *testing.T) {
	e := &event.Event{Kind: event.KindError, Error: "EIO", Device: "/dev/md0", Storage: []storage.Layer{
		{Name: "md0", Kind: storage.KindMD, MD: &storage.MD{Level: "raid1"}, On: []string{"sda", "sdb"}},
		{Name: "sda", Kind: storage.KindDisk, Node: "/dev/sda"},
		{Name: "sdb", Kind: storage.KindDisk, Node: "/dev/sdb"},
	}}
	var disks []string
	var line string
	for _, f := range EventFields(e) {
		switch f.Name {
		case "FSHEALTH_DISK":
			disks = append(disks, f.Value)
		case "FSHEALTH_STORAGE":
			line = f.Value
		}
	}
	if line != "md0 raid1 → [sda; sdb]" || strings.Join(disks, " ") != "/dev/sda /dev/sdb" {
		t.Errorf("FSHEALTH_STORAGE %q, FSHEALTH_DISK %q", line, disks)
	}
	for _, f := range EventFields(&event.Event{Kind: event.KindError}) {
		if f.Name == "FSHEALTH_STORAGE" || f.Name == "FSHEALTH_DISK" {
			t.Errorf("field %s on an event without a stack", f.Name)
		}
	}
}

// TestOneLine: a line is escaped when it holds a control character, a line
// or paragraph separator or invalid UTF-8 — each alone is enough — and left
// as it is otherwise, backslashes included.
func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"\u2028":           `\u2028`,
		"\u2029":           `\u2029`,
		"\n":               `\n`,
		"\xff":             `\xff`,
		"plain é text":     "plain é text",
		`C:\dir, as it is`: `C:\dir, as it is`,
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
