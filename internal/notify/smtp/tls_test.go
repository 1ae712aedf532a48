package smtp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
	"github.com/fshealth/fshealth/internal/testutil"
)

// testCert is a certificate made by the test.
type testCert struct {
	tls    tls.Certificate
	pem    []byte
	sha256 string // as `openssl x509 -fingerprint -sha256` prints it
}

func makeCert(t *testing.T, names []string, notBefore, notAfter time.Time) testCert {
	t.Helper()
	certPEM, keyPEM, der := testutil.SelfSignedCert(t, names, notBefore, notAfter)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{tls: c, pem: certPEM, sha256: smtp.FormatFingerprint(sha256.Sum256(der))}
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer is a logger writing to a buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

const unverifiedNotice = "mail session encrypted but not authenticated"

// TestOpportunisticUnverifiedCertificates: with starttls-opportunistic, a
// certificate that is self-signed, expired or for another name does not
// stop the delivery (the session is encrypted); the log says so once.
// Strict starttls refuses each, naming the server and the problem.
func TestOpportunisticUnverifiedCertificates(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		cert testCert
		// caFile makes the certificate its own CA, so that only the
		// problem named remains.
		caFile bool
		want   string
	}{
		{"self-signed", makeCert(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)), false, "certificate signed by unknown authority"},
		{"expired", makeCert(t, []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), true, "certificate has expired"},
		{"wrong name", makeCert(t, []string{"192.0.2.25"}, now.Add(-time.Hour), now.Add(time.Hour)), true, "certificate is valid for 192.0.2.25, not 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, serverConfig{startTLS: true, cert: &tc.cert.tls})
			cfg := config(s)
			cfg.Username, cfg.Password = "", ""
			cfg.InsecureSkipVerify = false
			if tc.caFile {
				cfg.CAFile = writeFile(t, "ca.pem", tc.cert.pem)
			}

			// Strict: refused, before anything is sent.
			cfg.TLS = smtp.TLSStartTLS
			err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
			if err == nil {
				t.Fatal("strict STARTTLS accepted the certificate")
			}
			for _, want := range []string{`smtp "mail"`, "the certificate of " + s.addr + " cannot be verified", tc.want, tc.cert.sha256} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if m := s.messages(); len(m) != 0 {
				t.Fatalf("strict STARTTLS sent %d messages", len(m))
			}

			// Opportunistic: delivered, encrypted, noted once.
			cfg.TLS = smtp.TLSStartTLSOpportunistic
			log, buf := logBuffer()
			cfg.Logger = log
			n := newNotifier(t, cfg)
			for range 2 {
				if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
					t.Fatal(err)
				}
			}
			m := s.messages()
			if len(m) != 2 || !m[0].startTLS || !m[1].startTLS {
				t.Fatalf("messages %+v, want two over STARTTLS", m)
			}
			if got := strings.Count(buf.String(), unverifiedNotice); got != 1 {
				t.Errorf("log has the notice %d times, want once:\n%s", got, buf)
			}
			for _, want := range []string{"level=WARN", "channel=mail", "server=" + s.addr, tc.want} {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, buf)
				}
			}
		})
	}
}

// TestOpportunisticCredentials: over a session whose certificate cannot be
// verified the credentials are not sent (the delivery fails, saying why),
// unless AllowUnverifiedAuth.
func TestOpportunisticCredentials(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN LOGIN", user: testUser, pass: testPass})
	cfg := config(s)
	cfg.InsecureSkipVerify = false
	cfg.TLS = smtp.TLSStartTLSOpportunistic
	err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("credentials were accepted over an unverified session")
	}
	for _, want := range []string{s.addr, "certificate signed by unknown authority", "refusing to send the credentials", "allow_unverified_auth"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, ss := range s.allSessions() {
		if ss.authTried || ss.accepted {
			t.Fatalf("session %+v: credentials or mail were sent", ss)
		}
	}

	cfg.AllowUnverifiedAuth = true
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	if m := s.messages(); len(m) != 1 || !m[0].startTLS || m[0].authUser != testUser {
		t.Fatalf("messages %+v, want one, authenticated over STARTTLS", m)
	}
}

// strictRelay starts a STARTTLS relay whose self-signed certificate (cert,
// valid an hour either side of now) no system CA signs, makes another
// certificate for the same name (other), and returns a configuration that
// verifies the relay strictly.
func strictRelay(t *testing.T, now time.Time) (cert, other testCert, s *testServer, base smtp.Config) {
	t.Helper()
	cert = makeCert(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	other = makeCert(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	s = newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, cert: &cert.tls})
	base = config(s)
	base.InsecureSkipVerify = false
	base.TLS = smtp.TLSStartTLS
	return cert, other, s, base
}

// TestPrivateRelay: strict TLS accepts a private relay's certificate
// through a CA file or a pinned fingerprint, and refuses a wrong pin.
func TestPrivateRelay(t *testing.T) {
	now := time.Now()
	cert, other, s, base := strictRelay(t, now)

	cfg := base
	cfg.CAFile = writeFile(t, "ca.pem", cert.pem)
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Errorf("CA file: %v", err)
	}
	cfg = base
	cfg.TLSFingerprints = []string{other.sha256, strings.ToLower(strings.ReplaceAll(cert.sha256, ":", ""))}
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Errorf("pinned fingerprint: %v", err)
	}
	if m := s.messages(); len(m) != 2 || m[0].authUser != testUser || m[1].authUser != testUser {
		t.Errorf("messages %+v, want two authenticated", m)
	}

	cfg = base
	cfg.TLSFingerprints = []string{"SHA256:" + other.sha256}
	err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("a wrong pin was accepted")
	}
	for _, want := range []string{s.addr, "its fingerprint is not one of tls_fingerprint", cert.sha256} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if m := s.messages(); len(m) != 2 {
		t.Errorf("%d messages after a wrong pin, want still 2", len(m))
	}
}

func TestTLSSettingErrors(t *testing.T) {
	s := newTestServer(t, serverConfig{})
	for _, tc := range []struct {
		name string
		edit func(*smtp.Config)
		want string
	}{
		{"missing CA file", func(c *smtp.Config) { c.CAFile = "/nonexistent/ca.pem" }, "CA file: open /nonexistent/ca.pem: no such file or directory"},
		{"CA file without PEM", func(c *smtp.Config) { c.CAFile = writeFile(t, "ca.pem", []byte("hello\n")) }, "holds no PEM certificate"},
		{"bad fingerprint", func(c *smtp.Config) { c.TLSFingerprints = []string{"AB:CD"} }, `TLS fingerprint "AB:CD" is not a SHA-256 fingerprint`},
		{"local name over SMTP", func(c *smtp.Config) { c.To = []string{"root"} }, `invalid To address "root": a bare local name is only for via "sendmail"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(s)
			tc.edit(&cfg)
			_, err := smtp.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `smtp "mail"`) {
				t.Errorf("got %v, want an error naming the channel and %q", err, tc.want)
			}
		})
	}
}

// TestDroppedMidData: a server that hangs up in the middle of the message
// makes the attempt fail (to be retried), saying so; nothing is accepted.
func TestDroppedMidData(t *testing.T) {
	s := newTestServer(t, serverConfig{startTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, drop: "mid-data"})
	err := newNotifier(t, config(s)).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("Send succeeded")
	}
	for _, want := range []string{`smtp "mail"`, "sending to " + s.addr, "01JTESTALERTERROR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	t.Log(err)
	if m := s.messages(); len(m) != 0 {
		t.Errorf("%d messages accepted", len(m))
	}
}

// TestImplicitTLSVerified: tls = "tls" verifies as starttls does, and
// accepts a pinned certificate.
func TestImplicitTLSVerified(t *testing.T) {
	now := time.Now()
	cert := makeCert(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour))
	s := newTestServer(t, serverConfig{implicitTLS: true, authMechs: "PLAIN", user: testUser, pass: testPass, cert: &cert.tls})
	cfg := config(s)
	cfg.TLS = smtp.TLSImplicit
	cfg.InsecureSkipVerify = false
	err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("a self-signed certificate was accepted")
	}
	for _, want := range []string{"connecting to " + s.addr, "the certificate of " + s.addr + " cannot be verified", "certificate signed by unknown authority", cert.sha256} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, ss := range s.allSessions() {
		if ss.authTried || ss.accepted {
			t.Fatalf("session %+v: credentials or mail were sent", ss)
		}
	}
	cfg.TLSFingerprints = []string{cert.sha256}
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatal(err)
	}
	if m := s.messages(); len(m) != 1 || !m[0].tls || m[0].authUser != testUser {
		t.Errorf("messages %+v, want one over TLS, authenticated", m)
	}
}
