package smtp_test

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
)

// TestPinsAndCAFile: with both tls_fingerprint and ca_file, a certificate
// that is not pinned is still accepted when it chains to the CA file; when
// it does not, the error gives both reasons. With pins alone the error is
// the pin's only; with neither, it does not speak of pins.
func TestPinsAndCAFile(t *testing.T) {
	now := time.Now()
	cert, other, s, base := strictRelay(t, now)

	// Not pinned, but signed by the CA file: delivered.
	cfg := base
	cfg.TLSFingerprints = []string{other.sha256}
	cfg.CAFile = writeFile(t, "ca.pem", cert.pem)
	if err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Fatalf("a certificate of the CA file with another one pinned: %v", err)
	}
	if m := s.messages(); len(m) != 1 || m[0].authUser != testUser {
		t.Fatalf("messages %+v, want one, authenticated", m)
	}

	send := func(cfg smtp.Config) string {
		t.Helper()
		err := newNotifier(t, cfg).Send(context.Background(), notifytest.Alert(alert.TypeError))
		if err == nil {
			t.Fatal("an unverifiable certificate was accepted")
		}
		return err.Error()
	}
	suffix := " (certificate \"CN=fshealth test mail server\", valid " + now.Add(-time.Hour).UTC().Format("2006-01-02") +
		" to " + now.Add(time.Hour).UTC().Format("2006-01-02") + ", SHA-256 fingerprint " + cert.sha256 + ")"

	// Not pinned, not signed by the CA file (a CA of another name, so
	// that crypto/x509 names no candidate): both reasons.
	_, ca := selfSignedCert(t)
	cfg.CAFile = writeFile(t, "other.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	want := "the certificate of " + s.addr + " cannot be verified: its fingerprint is not one of tls_fingerprint, " +
		"and x509: certificate signed by unknown authority" + suffix
	if got := send(cfg); !strings.HasSuffix(got, want) {
		t.Errorf("wrong pin and CA file: %q, want it to end in %q", got, want)
	}

	// Pins alone: the pin's reason only.
	cfg.CAFile = ""
	want = "the certificate of " + s.addr + " cannot be verified: its fingerprint is not one of tls_fingerprint" + suffix
	if got := send(cfg); !strings.HasSuffix(got, want) {
		t.Errorf("wrong pin: %q, want it to end in %q", got, want)
	}

	// Neither: the chain's reason only.
	cfg.TLSFingerprints = nil
	want = "the certificate of " + s.addr + " cannot be verified: x509: certificate signed by unknown authority" + suffix
	if got := send(cfg); !strings.HasSuffix(got, want) {
		t.Errorf("no pin: %q, want it to end in %q", got, want)
	}
	if m := s.messages(); len(m) != 1 {
		t.Errorf("%d messages after the refusals, want still 1", len(m))
	}
}

// TestFormatFingerprint: upper-case hex pairs joined by colons, as
// `openssl x509 -fingerprint -sha256` prints them, which ParseFingerprint
// reads back in any of its forms.
func TestFormatFingerprint(t *testing.T) {
	sum := sha256.Sum256(nil)
	const want = "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
	if got := smtp.FormatFingerprint(sum); got != want {
		t.Errorf("FormatFingerprint = %q, want %q", got, want)
	}
	for _, s := range []string{want, "sha256:" + want, " SHA256:" + strings.ToLower(want) + "\n", strings.ReplaceAll(want, ":", "")} {
		if got, err := smtp.ParseFingerprint(s); err != nil || got != sum {
			t.Errorf("ParseFingerprint(%q) = %X, %v; want %X", s, got, err, sum)
		}
	}
	for _, s := range []string{"", "sha256:", "sha256", want[3:], want + ":00", "sha1:" + want, strings.Replace(want, "E3", "G3", 1)} {
		if _, err := smtp.ParseFingerprint(s); err == nil || !strings.Contains(err.Error(), "is not a SHA-256 fingerprint") {
			t.Errorf("ParseFingerprint(%q): %v, want an error", s, err)
		}
	}
}
