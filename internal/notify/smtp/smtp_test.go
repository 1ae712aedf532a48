package smtp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
)

const (
	testUser = "alerts@example.org"
	testPass = "c0rrect-h0rse-battery"
)

// hostileMount tries to inject a Bcc header and forge body lines.
const hostileMount = "/mnt/evil\r\nBcc: x@y\r\n\r\nforged body \"$(reboot)\"\xff"

// config returns a configuration for the server s.
func config(s *testServer) smtp.Config {
	return smtp.Config{
		Name:               "mail",
		Host:               "127.0.0.1",
		Port:               s.port,
		From:               "fshealth <fshealth@web1.example.org>",
		To:                 []string{"ops@example.org", "Oncall Person <oncall@example.org>"},
		Username:           testUser,
		Password:           testPass,
		InsecureSkipVerify: true,
		Timeout:            10 * time.Second,
		HeloName:           "web1.example.org",
	}
}

func newNotifier(t *testing.T, cfg smtp.Config) *smtp.Notifier {
	t.Helper()
	n, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parsed is a received message taken apart.
type parsed struct {
	header  netmail.Header
	raw     string
	subject string
	body    string
	json    []byte
	jsonCT  string
	jsonCD  string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing the message: %v\n%s", err, data)
	}
	p := parsed{header: m.Header, raw: string(data)}
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("decoding the subject %q: %v", m.Header.Get("Subject"), err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q (%v), want multipart/mixed", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			p.body = string(b) // quoted-printable is decoded by multipart
		case "application/json":
			if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
				if b, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), "")); err != nil {
					t.Fatal(err)
				}
			}
			p.json = b
			p.jsonCT = part.Header.Get("Content-Type")
			p.jsonCD = part.Header.Get("Content-Disposition")
		default:
			t.Errorf("unexpected part %q", part.Header.Get("Content-Type"))
		}
	}
	return p
}

func TestSendSTARTTLSAuthPlain(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN LOGIN", user: testUser, pass: testPass})
	n := newNotifier(t, config(s))
	a := notifytest.Alert(alert.TypeError)
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("server has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.startTLS || !m.tls {
		t.Error("the message was not sent over STARTTLS")
	}
	if m.authMech != "PLAIN" || m.authUser != testUser {
		t.Errorf("auth %q as %q, want PLAIN as %q", m.authMech, m.authUser, testUser)
	}
	if m.helo != "web1.example.org" {
		t.Errorf("EHLO %q", m.helo)
	}
	if m.from != "fshealth@web1.example.org" {
		t.Errorf("MAIL FROM %q", m.from)
	}
	if want := []string{"ops@example.org", "oncall@example.org"}; !reflect.DeepEqual(m.rcpts, want) {
		t.Errorf("RCPT TO %q, want %q", m.rcpts, want)
	}

	p := parse(t, m.data)
	if want := "[fshealth] critical EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org"; p.subject != want {
		t.Errorf("Subject %q, want %q", p.subject, want)
	}
	if got := p.header.Get("Message-Id"); got != "<01JTESTALERTERROR.fshealth@web1.example.org>" {
		t.Errorf("Message-ID %q", got)
	}
	for h, want := range map[string]string{
		smtp.AlertIDHeader: a.ID, smtp.AlertTypeHeader: "error", smtp.SeverityHeader: "critical",
		"Auto-Submitted": "auto-generated", "From": `"fshealth" <fshealth@web1.example.org>`,
	} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(a.Time) {
		t.Errorf("Date %v (%v), want %v", d, err, a.Time)
	}
	if to := p.header.Get("To"); !strings.Contains(to, "ops@example.org") || !strings.Contains(to, "oncall@example.org") {
		t.Errorf("To %q", to)
	}
	for _, want := range []string{
		"The file system reported 3 EUCLEAN error(s) since 2025-03-01T10:00:00Z.",
		"Device:        /dev/loop7", "Type:          ext4",
		"UUID:          0b1c2d3e-1111-2222-3333-444455556666", "Label:         data",
		"Mount points:  /mnt/data, /srv/data",
		"Error:         EUCLEAN (structure needs cleaning), errno 117",
		"Count:         3 since 2025-03-01T10:00:00Z",
		"Inode:         12 (generation 7)", "Path:          /mnt/data/dir/bad",
		"Process:       pid 4242",
		"ext4 state:    4 error(s) recorded since the last fsck",
		"ext4_iget:5000 inode 11", "ext4_lookup:1812 inode 12 block 99 EUCLEAN",
		"Alert id:      01JTESTALERTERROR", "Event id:      01JTESTEVENT", "Rule:          default",
		"fshealth-alert-01JTESTALERTERROR.json",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.body)
		}
	}

	if !strings.HasPrefix(p.jsonCT, "application/json") {
		t.Errorf("JSON part Content-Type %q", p.jsonCT)
	}
	if !strings.Contains(p.jsonCD, "fshealth-alert-01JTESTALERTERROR.json") {
		t.Errorf("JSON part Content-Disposition %q", p.jsonCD)
	}
	var got alert.Alert
	if err := json.Unmarshal(p.json, &got); err != nil {
		t.Fatalf("JSON part: %v\n%s", err, p.json)
	}
	want, _ := json.Marshal(a)
	back, _ := json.Marshal(&got)
	if !bytes.Equal(want, back) {
		t.Errorf("JSON part is not the alert:\n got %s\nwant %s", back, want)
	}
}

func TestSendAuthLogin(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "LOGIN", user: testUser, pass: testPass})
	n := newNotifier(t, config(s))
	if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 || msgs[0].authMech != "LOGIN" || msgs[0].authUser != testUser || !msgs[0].startTLS {
		t.Fatalf("messages %+v, want one sent over STARTTLS after AUTH LOGIN", msgs)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := newTestServer(t, serverConfig{implicitTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	cfg := config(s)
	cfg.TLS = smtp.TLSImplicit
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].startTLS || msgs[0].authUser != testUser {
		t.Fatalf("messages %+v, want one over implicit TLS", msgs)
	}
}

func TestStartTLSRequired(t *testing.T) {
	s := newTestServer(t, serverConfig{authMechs: "PLAIN LOGIN", user: testUser, pass: testPass})
	err := newNotifier(t, config(s)).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("Send succeeded with a server without STARTTLS")
	}
	for _, want := range []string{`smtp "mail"`, "does not offer STARTTLS", `"starttls"`, s.addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, ss := range s.allSessions() {
		if ss.authTried || ss.from != "" || ss.accepted {
			t.Errorf("session %+v: credentials or mail were sent without TLS", ss)
		}
	}
}

func TestStartTLSOpportunistic(t *testing.T) {
	// Without STARTTLS on offer: plain text.
	plain := newTestServer(t, serverConfig{})
	cfg := config(plain)
	cfg.TLS = smtp.TLSStartTLSOpportunistic
	cfg.Username, cfg.Password = "", ""
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	if m := plain.messages(); len(m) != 1 || m[0].tls {
		t.Errorf("plain server: messages %+v", m)
	}
	// With STARTTLS on offer: used.
	s := newTestServer(t, serverConfig{startTLS: true})
	cfg = config(s)
	cfg.TLS = smtp.TLSStartTLSOpportunistic
	cfg.Username, cfg.Password = "", ""
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	if m := s.messages(); len(m) != 1 || !m[0].startTLS {
		t.Errorf("STARTTLS server: messages %+v, want STARTTLS used", m)
	}
}

func TestTLSNone(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true})
	cfg := config(s)
	cfg.TLS = smtp.TLSNone
	cfg.Username, cfg.Password = "", ""
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	if m := s.messages(); len(m) != 1 || m[0].startTLS {
		t.Errorf("messages %+v, want one without TLS", m)
	}
}

func TestCertificateVerified(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true})
	cfg := config(s)
	cfg.InsecureSkipVerify = false
	err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed certificate: got %v, want a certificate error", err)
	}
	if len(s.messages()) != 0 {
		t.Error("a message was sent despite the bad certificate")
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  serverConfig
		want []string
	}{
		{"auth rejected", serverConfig{startTLS: true, authMechs: "PLAIN LOGIN", user: testUser, pass: testPass, rejectAuth: true},
			[]string{"connecting to", "535", "5.7.8"}},
		{"no auth offered", serverConfig{startTLS: true}, []string{"connecting to", "AUTH"}},
		{"rcpt 4xx", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, rcptReply: "450 4.2.1 Mailbox busy, try later"},
			[]string{"sending to", "450", "Mailbox busy", "(a temporary failure)"}},
		{"rcpt 5xx", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, rcptReply: "550 5.1.1 No such user"},
			[]string{"sending to", "550", "No such user", "(a permanent failure)"}},
		{"data 4xx", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, dataReply: "451 4.3.0 Queue full"},
			[]string{"sending to", "451", "Queue full", "(a temporary failure)"}},
		{"data 5xx", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, dataReply: "554 5.6.0 Message rejected as spam"},
			[]string{"sending to", "554", "rejected as spam", "(a permanent failure)"}},
		{"dropped at greeting", serverConfig{drop: "greeting"}, []string{"connecting to", "EOF"}},
		{"dropped at RCPT", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, drop: "rcpt"},
			[]string{"sending to"}},
		{"dropped after the data", serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, drop: "data"},
			[]string{"sending to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			err := newNotifier(t, config(s)).Send(context.Background(), notifytest.Alert(alert.TypeError))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range append(tc.want, `smtp "mail"`, "01JTESTALERTERROR", s.addr) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{testPass, base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPass))} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
			if n := len(s.messages()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	s := newTestServer(t, serverConfig{})
	cfg := config(s)
	s.close()
	s.closed = make(chan struct{}) // the cleanup closes it again
	err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want connection refused", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	s := newTestServer(t, serverConfig{hang: true})
	cfg := config(s)
	cfg.Timeout = 300 * time.Millisecond
	n := newNotifier(t, cfg)
	start := time.Now()
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("silent server: got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 300ms timeout", d)
	}

	cfg.Timeout = time.Minute
	n = newNotifier(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = n.Send(ctx, notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Error("Send succeeded against a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send ignored its context: took %v", d)
	}
}

func TestHeaderInjection(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	n := newNotifier(t, config(s))
	a := notifytest.Alert(alert.TypeError)
	a.Filesystem.Mountpoints = []string{hostileMount}
	a.Event.Mountpoints = []string{hostileMount}
	a.Event.Path = hostileMount + "/f\nX-Evil: 1"
	a.Filesystem.Label = "lab\r\nBcc: z@z"
	// A summary built carelessly from the raw mount point.
	a.Summary = "EUCLEAN on /dev/loop7 (" + hostileMount + ")"
	a.Host = "web1\r\nBcc: h@h"
	a.ID = "01J\r\nBcc: id@id"
	a.Severity = "critical\r\nBcc: sev@sev"
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if want := []string{"ops@example.org", "oncall@example.org"}; !reflect.DeepEqual(msgs[0].rcpts, want) {
		t.Errorf("RCPT TO %q, want only %q", msgs[0].rcpts, want)
	}
	p := parse(t, msgs[0].data)
	for _, h := range []string{"Bcc", "X-Evil"} {
		if v, ok := p.header[h]; ok {
			t.Errorf("injected header %s: %q", h, v)
		}
	}
	headerEnd := strings.Index(p.raw, "\n\n")
	if headerEnd < 0 {
		t.Fatal("no end of header")
	}
	for _, l := range strings.Split(p.raw[:headerEnd], "\n") {
		l = strings.TrimSuffix(l, "\r")
		name, _, _ := strings.Cut(l, ":")
		if strings.EqualFold(name, "Bcc") || strings.EqualFold(name, "X-Evil") {
			t.Errorf("header line %q injected", l)
		}
	}
	if strings.ContainsAny(p.subject, "\r\n") {
		t.Errorf("Subject %q has a line break", p.subject)
	}
	if !strings.Contains(p.subject, `\r\nBcc: x@y`) {
		t.Errorf("Subject %q: want the hostile mount point escaped, visibly", p.subject)
	}
	for _, l := range strings.Split(p.body, "\n") {
		if strings.HasPrefix(l, "forged body") || strings.HasPrefix(l, "Bcc") || strings.HasPrefix(l, "X-Evil") {
			t.Errorf("body has a forged line %q", l)
		}
	}
	if got := p.header.Get(smtp.AlertIDHeader); got != "01J__Bcc__id_id" {
		t.Errorf("%s %q", smtp.AlertIDHeader, got)
	}
	var back alert.Alert
	if err := json.Unmarshal(p.json, &back); err != nil || back.Filesystem.Mountpoints[0] != strings.ToValidUTF8(hostileMount, "\uFFFD") {
		t.Errorf("the JSON part does not carry the mount point faithfully: %v %q", err, back.Filesystem.Mountpoints)
	}
}

func TestResendSameMessageID(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	n := newNotifier(t, config(s))
	a := notifytest.Alert(alert.TypeReminder)
	for range 2 {
		if err := n.Send(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	id0 := parse(t, msgs[0].data).header.Get("Message-Id")
	id1 := parse(t, msgs[1].data).header.Get("Message-Id")
	if id0 != id1 || !strings.Contains(id0, a.ID) {
		t.Errorf("Message-IDs %q and %q: want the same, from the alert id", id0, id1)
	}
}

func TestDigestReminderResolvedTest(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass})
	cfg := config(s)
	cfg.SubjectPrefix = "[fs]"
	n := newNotifier(t, cfg)
	for _, tc := range []struct {
		typ     string
		subject string
		body    []string
	}{
		{alert.TypeDigest, "[fs] critical DIGEST EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org",
			[]string{"41 more EUCLEAN error(s) since 2025-03-01T10:00:00Z", "Count:         41 since"}},
		{alert.TypeReminder, "[fs] critical REMINDER EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org",
			[]string{"still unhealthy: 41 EUCLEAN error(s) since 2025-03-01T10:00:00Z"}},
		{alert.TypeResolved, "[fs] critical RESOLVED EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org",
			[]string{"RESOLVED: the EUCLEAN incident on this file system has ended."}},
		{alert.TypeTest, "[fs] critical TEST EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org",
			[]string{"This is a TEST alert", "Nothing is wrong"}},
	} {
		a := notifytest.Alert(tc.typ)
		a.Count = 41
		if err := n.Send(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		msgs := s.messages()
		p := parse(t, msgs[len(msgs)-1].data)
		if p.subject != tc.subject {
			t.Errorf("%s: Subject %q, want %q", tc.typ, p.subject, tc.subject)
		}
		if got := p.header.Get(smtp.AlertTypeHeader); got != tc.typ {
			t.Errorf("%s: %s %q", tc.typ, smtp.AlertTypeHeader, got)
		}
		for _, w := range tc.body {
			if !strings.Contains(p.body, w) {
				t.Errorf("%s: body lacks %q:\n%s", tc.typ, w, p.body)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	base := smtp.Config{Name: "mail", Host: "mail.example.org", From: "a@example.org", To: []string{"b@example.org"}}
	for _, tc := range []struct {
		mod  func(*smtp.Config)
		want string
	}{
		{func(c *smtp.Config) { c.Host = "" }, "no host"},
		{func(c *smtp.Config) { c.Host = "smtp://mail.example.org" }, "not a host name"},
		{func(c *smtp.Config) { c.Port = 70000 }, "port 70000"},
		{func(c *smtp.Config) { c.From = "" }, "no From"},
		{func(c *smtp.Config) { c.From = "not an address" }, `invalid From address "not an address"`},
		{func(c *smtp.Config) { c.From = "a@example.org\r\nBcc: x@y" }, `invalid From address "a@example.org\r\nBcc: x@y"`},
		{func(c *smtp.Config) { c.To = nil }, "no To"},
		{func(c *smtp.Config) { c.To = []string{"b@example.org", "bogus@"} }, `invalid To address "bogus@"`},
		{func(c *smtp.Config) { c.TLS = "ssl" }, `TLS mode "ssl"`},
		{func(c *smtp.Config) { c.Password = "pw-secret" }, "no username"},
		{func(c *smtp.Config) { c.TLS = smtp.TLSNone; c.Username = "u"; c.Password = "pw-secret" }, "refusing to send credentials unencrypted"},
		{func(c *smtp.Config) { c.Timeout = -time.Second }, "negative"},
		{func(c *smtp.Config) { c.SubjectPrefix = "[x]\r\nBcc: y" }, "control characters"},
		{func(c *smtp.Config) { c.HeloName = "bad name" }, "HELO"},
	} {
		cfg := base
		cfg.To = append([]string(nil), base.To...)
		tc.mod(&cfg)
		_, err := smtp.New(cfg)
		if err == nil {
			t.Errorf("New succeeded, want %q", tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), `smtp "mail": `) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q, want the channel's name and %q", err, tc.want)
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("error %q shows the password", err)
		}
	}

	// Credentials over TLS "none" are fine to the local host.
	cfg := base
	cfg.Host, cfg.TLS, cfg.Username, cfg.Password = "127.0.0.1", smtp.TLSNone, "u", "p"
	if _, err := smtp.New(cfg); err != nil {
		t.Errorf("TLS none with credentials to 127.0.0.1: %v", err)
	}
	n := newNotifier(t, base)
	if n.Name() != "mail" {
		t.Errorf("Name %q", n.Name())
	}
	base.Name = ""
	if n := newNotifier(t, base); n.Name() != "smtp" {
		t.Errorf("default Name %q", n.Name())
	}
}

func TestSubjectBounded(t *testing.T) {
	n := newNotifier(t, smtp.Config{Host: "h", From: "a@b.c", To: []string{"d@e.f"}})
	a := notifytest.Alert(alert.TypeError)
	a.Summary = strings.Repeat("é", 500)
	s := n.Subject(a)
	if len(s) > 250 || !strings.HasPrefix(s, "[fshealth] critical é") {
		t.Errorf("Subject of %d bytes: %q", len(s), s)
	}
	if strings.ContainsRune(s, '\uFFFD') {
		t.Errorf("Subject cut inside a character: %q", s)
	}
	// An alert without a summary still gets a meaningful subject.
	a.Summary = ""
	if s := n.Subject(a); s != "[fshealth] critical EUCLEAN on /dev/loop7 on web1.example.org" {
		t.Errorf("Subject without summary %q", s)
	}
}
