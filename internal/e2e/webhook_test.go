package e2e_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// e2eSigningSecret is a Standard Webhooks secret of 32 bytes.
var e2eSigningSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e-signing-key-e2e-signing-key!"))

// verifyStandardWebhook checks a request as a Standard Webhooks receiver
// would: the v1 signature of "id.timestamp.body" under the secret, and a
// timestamp within tolerance of now.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return errors.New("no webhook-id or webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %v from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// TestSignedWebhookHostilePath: a real ext4 error against a directory whose
// path holds a newline, quotes, braces and template syntax reaches a
// webhook with a signing secret and a JSON template that inserts the path
// without any escaping function. The path is found after the first alert
// (read-only, on the device); the second error's alert carries it. The
// receiver refuses that alert's first attempts: every attempt carries the
// alert id as webhook-id and verifies with its own timestamp; the body
// parses and gives back the exact path; a changed timestamp or id does not
// verify.
func TestSignedWebhookHostilePath(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	var r [6]byte
	rand.Read(r[:])
	tok := hex.EncodeToString(r[:])
	t.Cleanup(func() {
		os.Remove("/tmp/pwned-" + tok)
		os.Remove("/tmp/pwned-" + tok + "-bt")
	})
	hostile := filepath.Join(im.Mountpoint, hostileName(tok)+` "}} {"x": 1} \"`)
	corruptDir(t, im, hostile)

	wh := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "signed"
url = %s
signing_secret = %s
template = '''{"path": {{ .Event.Path }}, "text": {{ printf "%%s: %%s" .Host .Summary }}, "count": {{ .Count }}}'''

# Never sent to: here for the warning about its password over http://.
[[alertmanager]]
name = "am"
urls = ["http://am.invalid:9093"]
username = "u"
password = "e2e-pass-42"

[[rule]]
channels = ["signed"]
`, tomlString(wh.URL()+"/hook"), tomlString(e2eSigningSecret)), 0o600)
	if out := mustRun(t, "check-config", "--config", cfg); !strings.HasPrefix(out, "configuration OK") {
		t.Errorf("check-config: %s", out)
	}
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	d.waitLog("alertmanager[1].urls[1]: credentials (username and password) would be sent unencrypted over http:// to am.invalid:9093", 1)

	// The first alert goes out with the path pending (it is looked up on
	// the device meanwhile); once the history has the path, the next
	// error about the directory is alerted with it: that alert is the
	// one checked here.
	if _, err := os.Lstat(filepath.Join(hostile, "bad_link")); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link: %v, want EUCLEAN", err)
	}
	eventually(t, func() string { return "the history has no path for the first error" },
		func() bool { evs := events(t, state); return len(evs) == 1 && evs[0].Path == hostile })
	first := wh.waitAccepted(t, 1)[0].Header.Get("X-Fshealth-Alert-Id")
	wh.status.Store(http.StatusServiceUnavailable)
	if _, err := os.Lstat(filepath.Join(hostile, "bad_link")); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link again: %v, want EUCLEAN", err)
	}
	waitErrors(t, state, 2)
	attempts := func() (n int) {
		for _, q := range wh.requests() {
			if q.Header.Get("X-Fshealth-Alert-Id") != first {
				n++
			}
		}
		return n
	}
	eventually(t, func() string { return fmt.Sprintf("%d refused attempts of the second alert, want 2", attempts()) },
		func() bool { return attempts() >= 2 })
	wh.status.Store(http.StatusOK)
	wh.waitAccepted(t, 2)
	d.stop()

	reqs := wh.requests()
	var id string
	var accepted *request
	for i, q := range reqs {
		aid := q.Header.Get("X-Fshealth-Alert-Id")
		if got := q.Header.Get("webhook-id"); got != aid || aid == "" {
			t.Errorf("attempt %d: webhook-id %q, want the alert id %q", i+1, got, aid)
		}
		if err := verifyStandardWebhook(e2eSigningSecret, q.Header, q.Body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
		var body struct {
			Path, Text string
			Count      int
		}
		if err := json.Unmarshal(q.Body, &body); err != nil {
			t.Fatalf("attempt %d: the body is not JSON: %v: %q", i+1, err, q.Body)
		}
		want := hostile
		if aid == first {
			want = "" // sent before the path was found
		}
		if body.Path != want || body.Count != 1 || !strings.HasPrefix(body.Text, "e2e-host: EUCLEAN") {
			t.Errorf("attempt %d: body %+v, want path %q", i+1, body, want)
		}
		if q.Status == http.StatusOK && aid != first {
			accepted, id = &reqs[i], aid
		}
	}
	if accepted == nil {
		t.Fatal("no attempt of the second alert was accepted")
	}
	for name, change := range map[string]func(h http.Header){
		"another timestamp": func(h http.Header) {
			ts, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
			h.Set("webhook-timestamp", strconv.FormatInt(ts-1, 10))
		},
		"another id": func(h http.Header) { h.Set("webhook-id", id+"0") },
	} {
		h := accepted.Header.Clone()
		change(h)
		if verifyStandardWebhook(e2eSigningSecret, h, accepted.Body, time.Now(), 5*time.Minute) == nil {
			t.Errorf("%s still verifies", name)
		}
	}
	if verifyStandardWebhook(e2eSigningSecret, accepted.Header, bytes.ToUpper(accepted.Body), time.Now(), 5*time.Minute) == nil {
		t.Error("another body still verifies")
	}
	if strings.Contains(d.stderr.String(), "e2e-pass-42") {
		t.Error("the daemon's log shows the Alertmanager password")
	}
	for _, p := range []string{"/tmp/pwned-" + tok, "/tmp/pwned-" + tok + "-bt"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: something ran the path through a shell", p)
		}
	}
}

// TestCheckConfigWebhookChecks: check-config (and the daemon) report a
// template that breaks JSON for a sample or a hostile alert and a bad
// signing secret at their file:line, without showing a secret; credentials
// over plain http:// are warned about by check-config and in the daemon's
// log.
func TestCheckConfigWebhookChecks(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, `hostname = "e2e-host"

[[webhook]]
name = "quoted"
url = "https://hooks.example.com/a"
template = '{"text": "{{ .Summary }}"}'

[[webhook]]
name = "hostile"
url = "https://hooks.example.com/b"
template = '''
{"a": 1{{ with .Event.Btrfs }},{{ end }}}'''

[[webhook]]
name = "signed"
url = "https://hooks.example.com/c"
signing_secret = "whsec_c2hvcnQtc2VjcmV0LTQy"
`, 0o600)
	want := []string{
		bad + ":6: webhook[1].template: fails on a sample alert: the body is not valid JSON (content type application/json): invalid character 'E' after object key:value pair at byte 12, near `{\"text\": \"\"EUCLEAN on` (each {{ }} inserts one complete JSON value, quotes included)",
		bad + ":11: webhook[2].template: fails on a hostile sample alert: the body is not valid JSON (content type application/json): invalid character '}' looking for beginning of object key string at byte 9, near `{\"a\": 1,}` (each {{ }} inserts one complete JSON value, quotes included)",
		bad + ":17: webhook[3].signing_secret: a signing secret's key must be 24 to 64 bytes, not 15: make one with: echo \"whsec_$(head -c 32 /dev/urandom | base64)\"",
	}
	for _, args := range [][]string{
		{"check-config", "--config", bad},
		{"daemon", "--config", bad, "--state-dir", filepath.Join(dir, "state"), "--metrics-listen", ""},
	} {
		stdout, stderr, code := run(t, args...)
		if code == 0 {
			t.Errorf("%s: exit 0\nstdout:\n%s", args[0], stdout)
		}
		got := strings.Split(strings.TrimSpace(strings.TrimPrefix(stderr, "fshealth: ")), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: stderr\n%s\nwant exactly\n%s", args[0], strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if strings.Contains(stdout+stderr, "c2hvcnQtc2VjcmV0LTQy") {
			t.Errorf("%s shows the signing secret", args[0])
		}
	}

	warn := filepath.Join(dir, "warn.toml")
	writeFile(t, warn, `hostname = "e2e-host"

[[webhook]]
name = "plain"
url = "http://hooks.example.com/x"
headers = { Authorization = "Bearer e2e-token-42" }

[[alertmanager]]
name = "am"
urls = ["http://am.example.com:9093"]
username = "u"
password = "e2e-pass-42"
`, 0o600)
	stdout, stderr, code := run(t, "check-config", "--config", warn)
	if code != 0 {
		t.Fatalf("check-config: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, w := range []string{
		"warning: " + warn + `:5: webhook[1].url: credentials (header "Authorization") would be sent unencrypted over http:// to hooks.example.com: use https://`,
		"warning: " + warn + `:10: alertmanager[1].urls[1]: credentials (username and password) would be sent unencrypted over http:// to am.example.com:9093: use https://`,
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("check-config lacks the warning\n%s\nstderr:\n%s", w, stderr)
		}
	}
	if strings.Contains(stdout+stderr, "e2e-token-42") || strings.Contains(stdout+stderr, "e2e-pass-42") {
		t.Errorf("check-config shows a secret:\n%s%s", stdout, stderr)
	}
}
