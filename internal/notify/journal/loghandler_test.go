package journal

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestLogHandler: each level reaches the journal with its priority, the
// attributes (those given by With, in groups, and the record's) as text in
// MESSAGE and as FSHEALTH_ fields, each record once.
func TestLogHandler(t *testing.T) {
	j := newJournald(t)
	var fallback bytes.Buffer
	h, err := NewLogHandler(j.path, slog.LevelDebug, slog.NewTextHandler(&fallback, nil))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(h).With("channel", "hooks")
	log.Debug("probe", "n", 1)
	log.Info("ready", "filesystems", 3)
	log.Warn("configuration: a warning", "file", "/etc/fshealth/fshealth.toml")
	log.WithGroup("req").Error("configuration NOT reloaded; keeping the running one",
		"err", errors.New("watch.paths changed:\nrestart"), slog.Group("fs", "device", "/dev/sda1"))
	want := []struct{ pri, msg string }{
		{"7", "probe channel=hooks n=1"},
		{"6", "ready channel=hooks filesystems=3"},
		{"4", "configuration: a warning channel=hooks file=/etc/fshealth/fshealth.toml"},
		{"3", `configuration NOT reloaded; keeping the running one channel=hooks req.err="watch.paths changed:\nrestart" req.fs.device=/dev/sda1`},
	}
	var last entry
	for _, w := range want {
		last = j.receive(t)
		if got := fieldValue(last.fields, "PRIORITY"); got != w.pri {
			t.Errorf("%q: PRIORITY=%s, want %s", w.msg, got, w.pri)
		}
		if got := fieldValue(last.fields, "MESSAGE"); got != w.msg {
			t.Errorf("MESSAGE=%q, want %q", got, w.msg)
		}
		if fieldValue(last.fields, "SYSLOG_IDENTIFIER") != "fshealth" || fieldValue(last.fields, "FSHEALTH_CHANNEL") != "hooks" {
			t.Errorf("fields %q", last.fields)
		}
	}
	if v := fieldValue(last.fields, "FSHEALTH_REQ_ERR"); v != "watch.paths changed:\nrestart" {
		t.Errorf("FSHEALTH_REQ_ERR=%q (fields %q)", v, last.fields)
	}
	if v := fieldValue(last.fields, "FSHEALTH_REQ_FS_DEVICE"); v != "/dev/sda1" {
		t.Errorf("FSHEALTH_REQ_FS_DEVICE=%q", v)
	}
	if fallback.Len() != 0 {
		t.Errorf("records went to the fallback too:\n%s", fallback.String())
	}

	// Below the level: nothing. journald gone: the fallback, once.
	h2, err := NewLogHandler(j.path, slog.LevelInfo, slog.NewTextHandler(&fallback, nil))
	if err != nil {
		t.Fatal(err)
	}
	slog.New(h2).Debug("hidden")
	j.conn.Close()
	os.Remove(j.path)
	slog.New(h2).Warn("journald is gone", "k", "v")
	if s := fallback.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, `msg="journald is gone" k=v`) {
		t.Errorf("fallback:\n%s", s)
	}
	if _, err := NewLogHandler(j.path, nil, nil); err == nil || !strings.Contains(err.Error(), j.path) {
		t.Errorf("NewLogHandler on a missing socket: %v", err)
	}
}

// TestFieldNameAndPriority: a log key becomes upper-case letters, digits and
// underscores, the characters next to each range included; each level
// and the one just below it get their priorities.
func TestFieldNameAndPriority(t *testing.T) {
	if got, want := fieldName("azAZ09`{@[/:-é"), "AZAZ09_________"; got != want {
		t.Errorf("fieldName = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		l    slog.Level
		want string
	}{
		{slog.LevelDebug, "7"}, {slog.LevelInfo - 1, "7"}, {slog.LevelInfo, "6"}, {slog.LevelWarn - 1, "6"},
		{slog.LevelWarn, "4"}, {slog.LevelError - 1, "4"}, {slog.LevelError, "3"}, {slog.LevelError + 4, "3"},
	} {
		if got := logPriority(tc.l); got != tc.want {
			t.Errorf("logPriority(%v) = %s, want %s", tc.l, got, tc.want)
		}
	}
}

// TestLogHandlerManyAttributes: more attributes given by With than the
// record has, and more in the record than given by With, all arrive.
func TestLogHandlerManyAttributes(t *testing.T) {
	j := newJournald(t)
	h, err := NewLogHandler(j.path, slog.LevelDebug, nil)
	if err != nil {
		t.Fatal(err)
	}
	with := slog.New(h).With("a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
	with.Info("with only")
	e := j.receive(t)
	if got := fieldValue(e.fields, "MESSAGE"); got != "with only a=1 b=2 c=3 d=4 e=5 f=6" || fieldValue(e.fields, "FSHEALTH_F") != "6" {
		t.Errorf("fields %q", e.fields)
	}
	slog.New(h).Info("record only", "a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
	e = j.receive(t)
	if got := fieldValue(e.fields, "MESSAGE"); got != "record only a=1 b=2 c=3 d=4 e=5 f=6" || fieldValue(e.fields, "FSHEALTH_F") != "6" {
		t.Errorf("fields %q", e.fields)
	}
}

// TestLogHandlerFallbackKeepsAttributes: without a fallback, With and
// WithGroup work; with one, a record the journal refuses reaches it with
// the attributes and groups given before.
func TestLogHandlerFallbackKeepsAttributes(t *testing.T) {
	j := newJournald(t)
	h, err := NewLogHandler(j.path, slog.LevelDebug, nil)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(h).With("channel", "hooks").WithGroup("req").Info("no fallback", "k", "v")
	if e := j.receive(t); fieldValue(e.fields, "FSHEALTH_CHANNEL") != "hooks" || fieldValue(e.fields, "FSHEALTH_REQ_K") != "v" {
		t.Errorf("fields %q", e.fields)
	}

	var fallback bytes.Buffer
	h, err = NewLogHandler(j.path, slog.LevelDebug, slog.NewTextHandler(&fallback, nil))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(h).With("channel", "hooks").WithGroup("req")
	j.conn.Close()
	os.Remove(j.path)
	log.Warn("journald is gone", "k", "v")
	if s := fallback.String(); !strings.Contains(s, `msg="journald is gone" channel=hooks req.k=v`) {
		t.Errorf("fallback:\n%s", s)
	}
}
