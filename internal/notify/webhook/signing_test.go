package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/testutil"
)

// testSigningSecret is a Standard Webhooks secret of 32 bytes.
var testSigningSecret = SigningSecretPrefix + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef-signing-key-32b"))

// verifyV1 is a receiver's check of a Standard Webhooks request, written
// from the scheme's description independently of SignV1: the headers must
// be there, the timestamp within tolerance of now, and one of the
// space-separated v1 signatures the HMAC of "id.timestamp.Body".
func verifyV1(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing header")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("timestamp out of tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// TestStandardWebhooksSignature sends alerts to a real HTTP server and
// checks that each request verifies, that the id is the alert's on every
// retry while the timestamp is the attempt's, and that a request changed
// in any signed part, or replayed after the tolerance, does not verify.
func TestStandardWebhooksSignature(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusServiceUnavailable, "try later")
	n := newNotifier(t, Config{Name: "signed", URL: rcv.URL, SigningSecret: testSigningSecret,
		Template: `{"text": {{ .Summary }}, "path": {{ .Event.Path }}}`})
	t1 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(90 * time.Second)
	clock := []time.Time{t1, t2}
	n.now = func() time.Time { c := clock[0]; clock = clock[1:]; return c }

	a := hostileAlert()
	if err := n.Send(context.Background(), a); err == nil {
		t.Fatal("a 503 was a success")
	}
	rcv.Answer(http.StatusOK, "", nil)
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatalf("retry: %v", err)
	}
	reqs := rcv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		at := []time.Time{t1, t2}[i]
		if got := r.Header.Get("webhook-id"); got != a.ID {
			t.Errorf("attempt %d: webhook-id %q, want the alert id %q", i+1, got, a.ID)
		}
		if got, want := r.Header.Get("webhook-timestamp"), strconv.FormatInt(at.Unix(), 10); got != want {
			t.Errorf("attempt %d: webhook-timestamp %q, want %q", i+1, got, want)
		}
		if got := r.Header.Get(AlertIDHeader); got != a.ID {
			t.Errorf("attempt %d: %s %q", i+1, AlertIDHeader, got)
		}
		if err := verifyV1(testSigningSecret, r.Header, r.Body, at, 5*time.Minute); err != nil {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
		if !json.Valid(r.Body) {
			t.Errorf("attempt %d: body is not JSON: %s", i+1, r.Body)
		}
	}

	r := reqs[1]
	tamper := func(name string, change func(h http.Header, body []byte) []byte) {
		t.Helper()
		h := r.Header.Clone()
		body := change(h, bytes.Clone(r.Body))
		if err := verifyV1(testSigningSecret, h, body, t2, 5*time.Minute); err == nil {
			t.Errorf("%s: still verifies", name)
		}
	}
	tamper("another timestamp", func(h http.Header, b []byte) []byte {
		h.Set("webhook-timestamp", strconv.FormatInt(t2.Unix()+1, 10))
		return b
	})
	tamper("another id", func(h http.Header, b []byte) []byte {
		h.Set("webhook-id", "01JH0000000000000000000043")
		return b
	})
	tamper("another body", func(h http.Header, b []byte) []byte {
		return bytes.Replace(b, []byte("EUCLEAN"), []byte("EIO"), 1)
	})
	tamper("another secret", func(h http.Header, b []byte) []byte {
		h.Set("webhook-signature", SignV1([]byte("another-key-another-key-another"), a.ID, t2.Unix(), b))
		return b
	})
	tamper("no signature", func(h http.Header, b []byte) []byte {
		h.Del("webhook-signature")
		return b
	})
	// The same request, replayed ten minutes later, is refused.
	if err := verifyV1(testSigningSecret, r.Header, r.Body, t2.Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Error("a replay after the tolerance verifies")
	}
	// Without a signing secret there are no Standard Webhooks headers.
	plain := newNotifier(t, Config{URL: rcv.URL})
	if err := plain.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if h := rcv.Requests()[2].Header; h.Get("webhook-signature") != "" || h.Get("webhook-id") != "" {
		t.Errorf("unsigned channel sent %v", h)
	}
}

// TestSignV1Vector checks SignV1 against an HMAC computed with the
// standard library over the documented layout.
func TestSignV1Vector(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("msg_1.1700000000.{\"a\":1}"))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := SignV1(key, "msg_1", 1700000000, []byte(`{"a":1}`)); got != want {
		t.Errorf("SignV1 = %q, want %q", got, want)
	}
	// A different split of the same bytes is a different signature.
	if SignV1(key, "msg_1.1", 700000000, []byte(`{"a":1}`)) == want {
		t.Error("id and timestamp are not delimited")
	}
}

func TestSigningSecretErrors(t *testing.T) {
	short := SigningSecretPrefix + base64.StdEncoding.EncodeToString([]byte("short-s3cr3t"))
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{SigningSecret: "hmac-s3cr3t-without-prefix"}, `signing secret: a signing secret must start with "whsec_" (value not shown)`},
		{Config{SigningSecret: "whsec_s3cr3t!!not-base64"}, `signing secret: a signing secret is "whsec_" followed by standard base64 (value not shown)`},
		{Config{SigningSecret: short}, `signing secret: a signing secret's key must be 24 to 64 bytes, not 12`},
		{Config{SigningSecret: testSigningSecret, Headers: map[string]string{"webhook-timestamp": "1"}}, `header Webhook-Timestamp is set by fshealth`},
		{Config{SigningSecret: testSigningSecret, Headers: map[string]string{"Webhook-Signature": "v1,x"}}, `header Webhook-Signature is set by fshealth`},
	} {
		tc.cfg.URL = "https://example.com/hook"
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	// Without a signing secret these headers are the user's to set.
	if _, err := New(Config{URL: "https://example.com/hook", Headers: map[string]string{"Webhook-Id": "x"}}); err != nil {
		t.Errorf("Webhook-Id without signing: %v", err)
	}
}

// TestDocumentedVerifier runs the Python receiver snippet of
// docs/configuration.md, as it is written there, on requests the channel
// really sent: a fresh one verifies; one whose timestamp is ten minutes old
// (a replay), one with another id or one with a changed body does not.
func TestDocumentedVerifier(t *testing.T) {
	testutil.RequireCommand(t, "python3", "python3")
	doc, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	if !ok {
		t.Fatal("docs/configuration.md has no Python example")
	}
	snippet, _, ok := strings.Cut(rest, "```")
	if !ok || !strings.Contains(snippet, "def verify(") {
		t.Fatalf("the Python example is not the verifier:\n%s", snippet)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "verify.py")
	harness := `
import json, sys
req = json.load(open(sys.argv[1]))
print("valid" if verify(req["secret"], req["headers"], bytes.fromhex(req["body"])) else "invalid")
`
	if err := os.WriteFile(script, []byte(snippet+harness), 0o600); err != nil {
		t.Fatal(err)
	}

	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, Config{URL: rcv.URL, SigningSecret: testSigningSecret})
	now := time.Now()
	n.now = func() time.Time { return now }
	if err := n.Send(context.Background(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	n.now = func() time.Time { return now.Add(-10 * time.Minute) }
	if err := n.Send(context.Background(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.Requests()
	run := func(name string, h http.Header, body []byte, want string) {
		t.Helper()
		headers := map[string]string{}
		for k := range h {
			headers[strings.ToLower(k)] = h.Get(k)
		}
		in, _ := json.Marshal(map[string]any{"secret": testSigningSecret, "headers": headers, "body": hex.EncodeToString(body)})
		reqFile := filepath.Join(dir, "req.json")
		if err := os.WriteFile(reqFile, in, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("python3", script, reqFile).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: python3: %v\n%s", name, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: the documented verifier says %q, want %q", name, got, want)
		}
	}
	run("fresh request", reqs[0].Header, reqs[0].Body, "valid")
	run("ten-minute-old request", reqs[1].Header, reqs[1].Body, "invalid")
	other := reqs[0].Header.Clone()
	other.Set("webhook-id", "01JH0000000000000000000043")
	run("another id", other, reqs[0].Body, "invalid")
	run("another body", reqs[0].Header, append(bytes.Clone(reqs[0].Body), ' '), "invalid")
}
