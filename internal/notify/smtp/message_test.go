package smtp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
)

// errorBody is the whole body of notifytest's error alert: every line of
// the file system, error and alert sections. The event was folded from one
// error (ErrorCount 1), so there is no "In this event" line.
const errorBody = "fshealth on web1.example.org: EUCLEAN on /dev/loop7 (/mnt/data)\n" +
	"\n" +
	"The file system reported 3 EUCLEAN error(s) since 2025-03-01T10:00:00Z.\n" +
	"Check it (fsck) as soon as possible; `fshealth status` shows its health.\n" +
	"\n" +
	"File system\n" +
	"  Device:        /dev/loop7\n" +
	"  Type:          ext4\n" +
	"  UUID:          0b1c2d3e-1111-2222-3333-444455556666\n" +
	"  Label:         data\n" +
	"  Mount points:  /mnt/data, /srv/data\n" +
	"\n" +
	"Error\n" +
	"  Error:         EUCLEAN (structure needs cleaning), errno 117\n" +
	"  Count:         3 since 2025-03-01T10:00:00Z\n" +
	"  Inode:         12 (generation 7)\n" +
	"  Path:          /mnt/data/dir/bad\n" +
	"  Process:       pid 4242\n" +
	"  Reported:      2025-03-01T10:00:00Z\n" +
	"  ext4 state:    4 error(s) recorded since the last fsck\n" +
	"    first:       2025-03-01T09:00:00Z in ext4_iget:5000 inode 11 EUCLEAN\n" +
	"    last:        2025-03-01T10:00:00Z in ext4_lookup:1812 inode 12 block 99 EUCLEAN\n" +
	"\n" +
	"Alert\n" +
	"  Alert id:      01JTESTALERTERROR\n" +
	"  Type:          error\n" +
	"  Severity:      critical\n" +
	"  Rule:          default\n" +
	"  Host:          web1.example.org\n" +
	"  Raised:        2025-03-01T10:01:00Z\n" +
	"  Event id:      01JTESTEVENT\n" +
	"\n" +
	"Event:\n" +
	"  2025-03-01T10:00:00.000000000Z EUCLEAN (structure needs cleaning) on /dev/loop7 ext4 at /mnt/data,/srv/data inode 12 (generation 7) " +
	"path /mnt/data/dir/bad uuid 0b1c2d3e-1111-2222-3333-444455556666 pid 4242; ext4 has recorded 4 error(s), the last in ext4_lookup:1812 inode 12 block 99\n" +
	"\n" +
	"The alert is attached as JSON (fshealth-alert-01JTESTALERTERROR.json).\n"

// TestBodyDelivered: the body the server receives is, line for line, the
// golden text of notifytest's error alert.
func TestBodyDelivered(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	if err := newNotifier(t, config(s)).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if got := strings.ReplaceAll(parse(t, msgs[0].data).body, "\r\n", "\n"); got != errorBody {
		t.Errorf("body:\n%s\nwant:\n%s", got, errorBody)
	}
}

// TestBodyVariants: the lines that depend on the alert: the host ("this
// host" without one), the resolved alert's count (none for 0, and then no
// error section without an event), the error section's count (none for 0)
// and its lines for a queue overflow, an event folded from several errors,
// a note and an error about the whole file system, and the "Event:" line
// (only with an event).
func TestBodyVariants(t *testing.T) {
	resolved := func(count uint64) *alert.Alert {
		a := notifytest.Alert(alert.TypeResolved)
		a.Host, a.Count, a.Event = "", count, nil
		return a
	}
	resolvedBody := func(counted, errorSection string) string {
		return "fshealth on this host: EUCLEAN on /dev/loop7 (/mnt/data)\n" +
			"\n" +
			"RESOLVED: the EUCLEAN incident on this file system has ended.\n" +
			counted +
			"\n" +
			"File system\n" +
			"  Device:        /dev/loop7\n" +
			"  Type:          ext4\n" +
			"  UUID:          0b1c2d3e-1111-2222-3333-444455556666\n" +
			"  Label:         data\n" +
			"  Mount points:  /mnt/data, /srv/data\n" +
			"\n" +
			errorSection +
			"Alert\n" +
			"  Alert id:      01JTESTALERTRESOLVED\n" +
			"  Type:          resolved\n" +
			"  Severity:      critical\n" +
			"  Rule:          default\n" +
			"  Raised:        2025-03-01T10:01:00Z\n" +
			"\n" +
			"The alert is attached as JSON (fshealth-alert-01JTESTALERTRESOLVED.json).\n"
	}

	overflow := notifytest.Alert(alert.TypeError)
	overflow.Count = 0
	overflow.Filesystem.Mountpoints = nil
	overflow.Event = &event.Event{
		ID:      "01JOVERFLOW",
		Kind:    event.KindOverflow,
		Time:    event.Time{Time: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)},
		Message: "the kernel dropped events",
	}

	folded := notifytest.Alert(alert.TypeError)
	folded.Count = 1
	folded.Event.ErrorCount = 5
	folded.Event.Inode, folded.Event.Generation, folded.Event.Path = nil, nil, ""
	folded.Event.PathError = "no handle"
	folded.Event.PID = 0
	folded.Event.Ext4 = nil

	for _, tc := range []struct {
		name string
		a    *alert.Alert
		want string
	}{
		{"resolved without a count or host", resolved(0), resolvedBody("", "")},
		{"resolved with a count", resolved(1), resolvedBody("It counted 1 error(s) since 2025-03-01T10:00:00Z.\n",
			"Error\n  Error:         EUCLEAN\n  Count:         1 since 2025-03-01T10:00:00Z\n\n")},
		{"overflow", overflow, "fshealth on web1.example.org: EUCLEAN on /dev/loop7 (/mnt/data)\n" +
			"\n" +
			"The file system reported 0 EUCLEAN error(s) since 2025-03-01T10:00:00Z.\n" +
			"Check it (fsck) as soon as possible; `fshealth status` shows its health.\n" +
			"\n" +
			"File system\n" +
			"  Device:        /dev/loop7\n" +
			"  Type:          ext4\n" +
			"  UUID:          0b1c2d3e-1111-2222-3333-444455556666\n" +
			"  Label:         data\n" +
			"\n" +
			"Error\n" +
			"  Kind:          event queue overflow: errors were lost\n" +
			"  Reported:      2025-03-01T10:00:00Z\n" +
			"  Note:          the kernel dropped events\n" +
			"\n" +
			"Alert\n" +
			"  Alert id:      01JTESTALERTERROR\n" +
			"  Type:          error\n" +
			"  Severity:      critical\n" +
			"  Rule:          default\n" +
			"  Host:          web1.example.org\n" +
			"  Raised:        2025-03-01T10:01:00Z\n" +
			"  Event id:      01JOVERFLOW\n" +
			"\n" +
			"Event:\n" +
			"  2025-03-01T10:00:00.000000000Z QUEUE OVERFLOW: the kernel dropped events\n" +
			"\n" +
			"The alert is attached as JSON (fshealth-alert-01JTESTALERTERROR.json).\n"},
		{"folded whole-file-system error", folded, "fshealth on web1.example.org: EUCLEAN on /dev/loop7 (/mnt/data)\n" +
			"\n" +
			"The file system reported 1 EUCLEAN error(s) since 2025-03-01T10:00:00Z.\n" +
			"Check it (fsck) as soon as possible; `fshealth status` shows its health.\n" +
			"\n" +
			"File system\n" +
			"  Device:        /dev/loop7\n" +
			"  Type:          ext4\n" +
			"  UUID:          0b1c2d3e-1111-2222-3333-444455556666\n" +
			"  Label:         data\n" +
			"  Mount points:  /mnt/data, /srv/data\n" +
			"\n" +
			"Error\n" +
			"  Error:         EUCLEAN (structure needs cleaning), errno 117\n" +
			"  Count:         1 since 2025-03-01T10:00:00Z\n" +
			"  In this event: 5 errors folded by the kernel\n" +
			"  Inode:         none (the error is about the whole file system)\n" +
			"  Path:          unknown (no handle)\n" +
			"  Reported:      2025-03-01T10:00:00Z\n" +
			"\n" +
			"Alert\n" +
			"  Alert id:      01JTESTALERTERROR\n" +
			"  Type:          error\n" +
			"  Severity:      critical\n" +
			"  Rule:          default\n" +
			"  Host:          web1.example.org\n" +
			"  Raised:        2025-03-01T10:01:00Z\n" +
			"  Event id:      01JTESTEVENT\n" +
			"\n" +
			"Event:\n" +
			"  2025-03-01T10:00:00.000000000Z EUCLEAN (structure needs cleaning) ×5 on /dev/loop7 ext4 at /mnt/data,/srv/data " +
			"(whole file system) uuid 0b1c2d3e-1111-2222-3333-444455556666 pid 0\n" +
			"\n" +
			"The alert is attached as JSON (fshealth-alert-01JTESTALERTERROR.json).\n"},
	} {
		if got := smtp.Body(tc.a); got != tc.want {
			t.Errorf("%s: body:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}

// TestImportance: only a critical alert that asks for action (not a
// resolved alert, not a test) is marked important.
func TestImportance(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	n := newNotifier(t, config(s))
	for _, tc := range []struct {
		typ, severity string
		high          bool
	}{
		{alert.TypeError, alert.SeverityCritical, true},
		{alert.TypeReminder, alert.SeverityCritical, true},
		{alert.TypeError, alert.SeverityWarning, false},
		{alert.TypeResolved, alert.SeverityCritical, false},
		{alert.TypeTest, alert.SeverityCritical, false},
	} {
		a := notifytest.Alert(tc.typ)
		a.Severity = tc.severity
		if err := n.Send(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		msgs := s.messages()
		h := parse(t, msgs[len(msgs)-1].data).header
		want := map[string]string{"Importance": "", "X-Priority": ""}
		if tc.high {
			want = map[string]string{"Importance": "high", "X-Priority": "1"}
		}
		for name, v := range want {
			if got := h.Get(name); got != v {
				t.Errorf("%s %s alert: %s %q, want %q", tc.severity, tc.typ, name, got, v)
			}
		}
	}
}

// TestHeaderTokens: the alert id in the Message-ID, the attachment's name
// and the X-Fshealth headers keeps letters, digits, '.', '_' and '-' (the
// characters next to each range become '_') and at most 128 bytes; the
// host in the Message-ID keeps lower-case letters, digits, '-' and '.'
// (others become '-', ".." becomes ".", at most 200 bytes, "localhost" if
// nothing is left).
func TestHeaderTokens(t *testing.T) {
	a := notifytest.Alert(alert.TypeError)
	for _, tc := range []struct {
		id, host, want string
	}{
		{"az-AZ_09.", "az09-.x", "az-AZ_09..fshealth@az09-.x"},
		{"`{@[/:é", "`{/:_é", "________.fshealth@------"},
		{"", "..", "unknown.fshealth@localhost"},
		{"x", "Mail..Host...example.ORG.", "x.fshealth@mail.host.example.org"},
		{strings.Repeat("i", 129), strings.Repeat("h", 201), strings.Repeat("i", 128) + ".fshealth@" + strings.Repeat("h", 200)},
	} {
		a.ID, a.Host = tc.id, tc.host
		if got := smtp.MessageID(a); got != tc.want {
			t.Errorf("MessageID(id %q, host %q) = %q, want %q", tc.id, tc.host, got, tc.want)
		}
		id, _, _ := strings.Cut(tc.want, ".fshealth@")
		if got, want := smtp.AttachmentName(a), "fshealth-alert-"+id+".json"; got != want {
			t.Errorf("AttachmentName(id %q) = %q, want %q", tc.id, got, want)
		}
	}

	// Through the server: the headers carry the same tokens.
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	a = notifytest.Alert(alert.TypeError)
	a.ID, a.Type, a.Severity = "az-AZ_09.`{@[/:", "error z", "Z9"
	if err := newNotifier(t, config(s)).Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	h := parse(t, msgs[0].data).header
	for name, want := range map[string]string{
		smtp.AlertIDHeader: "az-AZ_09.______", smtp.AlertTypeHeader: "error_z", smtp.SeverityHeader: "Z9",
		"Message-Id": "<az-AZ_09.______.fshealth@web1.example.org>",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
