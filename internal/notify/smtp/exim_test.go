package smtp_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
	"github.com/fshealth/fshealth/internal/testutil"
)

// These tests deliver through exim4 from Debian's packages
// (exim4-daemon-light), run by the test with its own configuration on
// 127.0.0.1: see testutil.StartExim.

// nonASCIIAlert is an alert whose subject, mount point, path and kernel
// message are not ASCII.
func nonASCIIAlert() *alert.Alert {
	a := notifytest.Alert(alert.TypeError)
	a.ID = "01JTESTNONASCII"
	a.Summary = "EUCLEAN sur /dev/loop7 (/mnt/données) — 日本語のテスト"
	a.Filesystem.Mountpoints = []string{"/mnt/données", "/srv/Ünïcode"}
	a.Filesystem.Label = "données"
	a.Event.Mountpoints = a.Filesystem.Mountpoints
	a.Event.Path = "/mnt/données/répertoire/fichier→cassé"
	a.Event.Message = "EXT4-fs error (device loop7): ext4_lookup:1812: inode #2: comm ls: « deleted inode referenced » ✗"
	return a
}

// checkDelivered checks a message as the mailbox holds it: it passes
// Python's strict e-mail parser, its subject and text are the alert's,
// non-ASCII text is encoded (RFC 2047 in the subject, quoted-printable in
// the body), and the JSON attachment is the alert.
func checkDelivered(t *testing.T, n *smtp.Notifier, a *alert.Alert, raw []byte) testutil.StrictMessage {
	t.Helper()
	m := testutil.CheckMessageStrict(t, raw)
	if m.Subject != n.Subject(a) {
		t.Errorf("subject %q, want %q", m.Subject, n.Subject(a))
	}
	if m.ContentType != "multipart/mixed" || len(m.Parts) != 2 {
		t.Fatalf("content type %q with %d parts, want multipart/mixed with 2", m.ContentType, len(m.Parts))
	}
	text, att := m.Parts[0], m.Parts[1]
	if text.ContentType != "text/plain" || text.Charset != "utf-8" {
		t.Errorf("text part %s charset %s", text.ContentType, text.Charset)
	}
	if got, want := strings.ReplaceAll(text.Text, "\r\n", "\n"), smtp.Body(a); got != want {
		t.Errorf("text part\n%s\nwant\n%s", got, want)
	}
	if att.ContentType != "application/json" || att.Filename != smtp.AttachmentName(a) {
		t.Errorf("attachment %s %q", att.ContentType, att.Filename)
	}
	var got alert.Alert
	if err := json.Unmarshal(att.Data, &got); err != nil {
		t.Fatalf("attachment %q: %v", att.Data, err)
	}
	want := *a
	want.Time, want.Since = want.Time.UTC(), want.Since.UTC()
	gj, _ := json.Marshal(&got)
	wj, _ := json.Marshal(&want)
	if string(gj) != string(wj) {
		t.Errorf("attachment\n%s\nwant\n%s", gj, wj)
	}
	rawHead, rawBody, _ := strings.Cut(string(raw), "\r\n\r\n")
	if !isASCII(a.Summary) {
		if !strings.Contains(rawHead, "Subject: =?UTF-8?") && !strings.Contains(rawHead, "Subject: =?utf-8?") {
			t.Errorf("the non-ASCII subject is not RFC 2047-encoded:\n%s", rawHead)
		}
		if !strings.Contains(rawBody, "Content-Transfer-Encoding: quoted-printable") {
			t.Errorf("the text part is not quoted-printable:\n%s", rawBody)
		}
	}
	return m
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 127 {
			return false
		}
	}
	return true
}

// alertMessages returns the messages that carry an alert (not exim's
// reports to the sender), by alert id.
func alertMessages(msgs [][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range msgs {
		head, _, _ := strings.Cut(string(m), "\r\n\r\n")
		for _, l := range strings.Split(head, "\r\n") {
			if id, ok := strings.CutPrefix(l, smtp.AlertIDHeader+": "); ok {
				out[id] = m
			}
		}
	}
	return out
}

// isAlert reports whether m carries an alert.
func isAlert(m []byte) bool { return len(alertMessages([][]byte{m})) == 1 }

// deliveredAlert waits for one alert in the mailbox, checks that it is a,
// and returns it.
func deliveredAlert(t *testing.T, e *testutil.Exim, a *alert.Alert) []byte {
	t.Helper()
	msgs := alertMessages(e.WaitMatching(t, 1, isAlert))
	if len(msgs) != 1 || msgs[a.ID] == nil {
		t.Fatalf("mailbox has alerts %v, want %s", slices.Collect(maps.Keys(msgs)), a.ID)
	}
	return msgs[a.ID]
}

func header(m testutil.StrictMessage, name string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// TestEximSTARTTLS: exim offers STARTTLS with a self-signed certificate
// made by the test, as Debian's exim4 does after installation.
// starttls-opportunistic delivers over TLS and says once that the session
// was not authenticated; strict starttls refuses, naming the server and
// the problem, and sends nothing; a pinned fingerprint or the certificate
// as CA file makes strict TLS work.
func TestEximSTARTTLS(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, der := testutil.SelfSignedCert(t, []string{"127.0.0.1", "fshealth-test.invalid"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	e := testutil.StartExim(t, testutil.EximOptions{Daemon: true, CertPEM: certPEM, KeyPEM: keyPEM})
	base := smtp.Config{
		Name:     "mail",
		Host:     "127.0.0.1",
		Port:     e.Port,
		From:     "fshealth <fshealth@web1.example.org>",
		To:       []string{"ops@example.org"},
		Timeout:  20 * time.Second,
		HeloName: "web1.example.org",
	}
	addr := "127.0.0.1:" + itoa(e.Port)

	strict := base
	strict.TLS = smtp.TLSStartTLS
	err := newNotifier(t, strict).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("strict STARTTLS accepted exim's self-signed certificate")
	}
	for _, want := range []string{`smtp "mail"`, "the certificate of " + addr + " cannot be verified", "certificate signed by unknown authority", "SHA-256 fingerprint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	t.Log(err)

	opp := base
	opp.TLS = smtp.TLSStartTLSOpportunistic
	log, buf := logBuffer()
	opp.Logger = log
	n := newNotifier(t, opp)
	a := nonASCIIAlert()
	b := notifytest.Alert(alert.TypeReminder)
	for _, al := range []*alert.Alert{a, b} {
		if err := n.Send(context.Background(), al); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(buf.String(), unverifiedNotice); got != 1 {
		t.Errorf("log has the notice %d times, want once:\n%s", got, buf)
	}

	// The CA file, then a pinned fingerprint, with strict TLS.
	withCA := strict
	withCA.CAFile = writeFile(t, "ca.pem", certPEM)
	c := notifytest.Alert(alert.TypeDigest)
	if err := newNotifier(t, withCA).Send(context.Background(), c); err != nil {
		t.Errorf("strict with ca_file: %v", err)
	}
	pinned := strict
	pinned.TLSFingerprints = []string{smtp.FormatFingerprint(sha256Sum(der))}
	d := notifytest.Alert(alert.TypeResolved)
	if err := newNotifier(t, pinned).Send(context.Background(), d); err != nil {
		t.Errorf("strict with tls_fingerprint: %v", err)
	}

	msgs := alertMessages(e.WaitMatching(t, 4, isAlert))
	if len(msgs) != 4 || msgs[a.ID] == nil || msgs[b.ID] == nil || msgs[c.ID] == nil || msgs[d.ID] == nil {
		t.Fatalf("mailbox has alerts %v, want 4 (the strict refusal sent none)", slices.Collect(maps.Keys(msgs)))
	}
	for _, al := range []*alert.Alert{a, b, c, d} {
		checkDelivered(t, n, al, msgs[al.ID])
	}
	// exim logs the TLS session of every message it received.
	var received []string
	for _, l := range strings.Split(e.Log("main"), "\n") {
		if strings.Contains(l, " <= ") {
			received = append(received, l)
		}
	}
	if len(received) != 4 {
		t.Fatalf("exim received %d messages:\n%s", len(received), e.Log("main"))
	}
	for _, l := range received {
		if !strings.Contains(l, " X=TLS") {
			t.Errorf("exim received a message without TLS: %s", l)
		}
	}
}

// TestEximSendmail: via = "sendmail" hands the message to exim's sendmail
// interface; to = "root" is resolved through the aliases to the admin's
// mailbox, and the message there is intact.
func TestEximSendmail(t *testing.T) {
	e := testutil.StartExim(t, testutil.EximOptions{Aliases: map[string]string{"root": "admin"}})
	n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: e.Sendmail, From: "fshealth", To: []string{"root"}})
	a := nonASCIIAlert()
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	m := checkDelivered(t, n, a, deliveredAlert(t, e, a))
	// exim qualified the bare names and delivered root's mail to admin.
	if got := header(m, "To"); got != "root@fshealth-test.invalid" {
		t.Errorf("To %q, want root@fshealth-test.invalid", got)
	}
	if got := header(m, "From"); got != "fshealth@fshealth-test.invalid" {
		t.Errorf("From %q, want fshealth@fshealth-test.invalid", got)
	}
	if got := header(m, "Return-path"); got != "<fshealth@fshealth-test.invalid>" {
		t.Errorf("Return-path %q, want the envelope sender <fshealth@fshealth-test.invalid>", got)
	}
	if !strings.Contains(e.Log("main"), "=> admin <root@fshealth-test.invalid>") {
		t.Errorf("exim did not deliver root's mail to admin:\n%s", e.Log("main"))
	}
}

// TestEximSendmailFailure: when the MTA does not take the message, its exit
// status is the delivery's failure (the outbox retries it); once it takes
// it again, the same alert is delivered once.
func TestEximSendmailFailure(t *testing.T) {
	e := testutil.StartExim(t, testutil.EximOptions{})
	n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: e.Sendmail,
		From: "fshealth@web1.example.org", To: []string{"root", "ops@example.org"}})
	a := notifytest.Alert(alert.TypeError)
	for _, kind := range []string{"temp", "perm"} {
		e.SetFailure(t, kind)
		err := n.Send(context.Background(), a)
		if err == nil {
			t.Fatalf("%s failure: Send succeeded", kind)
		}
		for _, want := range []string{`sendmail "local"`, "01JTESTALERTERROR", e.Sendmail + " exited with status 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
	if msgs := alertMessages(e.Messages(t)); len(msgs) != 0 {
		t.Fatalf("%d alerts delivered while exim refused", len(msgs))
	}
	e.SetFailure(t, "")
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	m := checkDelivered(t, n, a, deliveredAlert(t, e, a))
	if got := header(m, "To"); got != "root@fshealth-test.invalid, ops@example.org" {
		t.Errorf("To %q", got)
	}
}

// TestSendmailErrors: a missing program, a program killed by a signal and
// a timeout are described.
func TestSendmailErrors(t *testing.T) {
	n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: "/nonexistent/sendmail",
		From: "a@b.c", To: []string{"root"}})
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), `sendmail "local": alert 01JTESTALERTERROR: running /nonexistent/sendmail: fork/exec /nonexistent/sendmail: no such file or directory`) {
		t.Errorf("missing program: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  smtp.Config
		want string
	}{
		{"relative program", smtp.Config{Via: smtp.ViaSendmail, Sendmail: "sendmail", From: "a@b.c", To: []string{"root"}}, `sendmail "sendmail": sendmail program "sendmail" is not an absolute path`},
		{"credentials", smtp.Config{Via: smtp.ViaSendmail, From: "a@b.c", To: []string{"root"}, Username: "u", Password: "p"}, "a username or password is for via \"smtp\""},
		{"host", smtp.Config{Via: smtp.ViaSendmail, Host: "mail", From: "a@b.c", To: []string{"root"}}, "host, CA file and fingerprints are for via \"smtp\""},
		{"option as recipient", smtp.Config{Via: smtp.ViaSendmail, From: "a@b.c", To: []string{"-bi"}}, `invalid To address "-bi"`},
		{"unknown via", smtp.Config{Via: "uucp", Host: "mail", From: "a@b.c", To: []string{"a@b.c"}}, `via "uucp" is not "smtp" or "sendmail"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smtp.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestEximSendmailBackground: exim delivering in the background (-odb,
// its default for the sendmail interface) after it has taken the message:
// its exit status 0 is the result, whatever its delivery process does.
func TestEximSendmailBackground(t *testing.T) {
	e := testutil.StartExim(t, testutil.EximOptions{})
	script, err := os.ReadFile(e.Sendmail)
	if err != nil {
		t.Fatal(err)
	}
	bg := strings.Replace(string(script), " -odi ", " -odb ", 1)
	if bg == string(script) {
		t.Fatalf("no -odi in %q", script)
	}
	prog := writeFile(t, "sendmail-bg", []byte(bg))
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: prog, From: "fshealth", To: []string{"root"}})
	a := notifytest.Alert(alert.TypeError)
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	deliveredAlert(t, e, a)
}

// TestSendmailTimeout: a sendmail program that does not finish is killed
// at the channel's timeout, with every process it started.
func TestSendmailTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// A stand-in for a hung MTA: a child that sleeps, and a parent that
	// waits for it.
	prog := writeFile(t, "hung-sendmail", []byte("#!/bin/sh\nsleep 600 &\necho $! > "+pidFile+"\nwait\n"))
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: prog, From: "a@b.c", To: []string{"root"},
		Timeout: 500 * time.Millisecond})
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "timed out after") || !strings.Contains(err.Error(), "(timeout 500ms)") {
		t.Fatalf("got %v, want a timeout", err)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatalf("the program did not start its child: %v", rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			break // gone
		}
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i+1:]), " Z") {
			break // killed, not yet reaped by init
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program's child %d is still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
