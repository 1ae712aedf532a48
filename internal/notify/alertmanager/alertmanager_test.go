package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/alertmanager"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
)

// hostileMount is a mount point an attacker could create: a newline, a
// carriage return, quotes, a shell substitution and an invalid UTF-8 byte.
const hostileMount = "/mnt/evil\r\nBcc: x@y \"$(reboot)\"\xff"

func newNotifier(t *testing.T, cfg alertmanager.Config) *alertmanager.Notifier {
	t.Helper()
	n, err := alertmanager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestSendPostsAPIv2(t *testing.T) {
	rec := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, alertmanager.Config{
		Name:           "am",
		URLs:           []string{rec.URL + "/prefix/"},
		Headers:        map[string]string{"X-Scope-OrgID": "tenant1"},
		ResendInterval: time.Minute,
		ExtraLabels:    map[string]string{"env": "prod"},
		GeneratorURL:   "https://grafana.example/d/fs",
		Version:        "1.2.3",
	})
	a := notifytest.Alert(alert.TypeError)
	before := time.Now()
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if len(rec.Requests()) != 1 {
		t.Fatalf("got %d requests, want 1", len(rec.Requests()))
	}
	req := rec.Requests()[0]
	body := req.Body
	if req.Method != http.MethodPost || req.Path != "/prefix/api/v2/alerts" {
		t.Errorf("request %s %s, want POST /prefix/api/v2/alerts", req.Method, req.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if v := req.Header.Get("X-Scope-OrgID"); v != "tenant1" {
		t.Errorf("X-Scope-OrgID %q", v)
	}
	if v := req.Header.Get("User-Agent"); v != "fshealth/1.2.3" {
		t.Errorf("User-Agent %q", v)
	}
	var got []struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(got) != 1 {
		t.Fatalf("body has %d alerts, want 1: %s", len(got), body)
	}
	p := got[0]
	want := map[string]string{
		"alertname": "FilesystemError", "instance": "web1.example.org", "device": "/dev/loop7",
		"mountpoint": "/mnt/data", "fstype": "ext4", "uuid": a.Filesystem.UUID,
		"errno": "EUCLEAN", "severity": "critical", "env": "prod",
	}
	if len(p.Labels) != len(want) {
		t.Errorf("labels %v, want %v", p.Labels, want)
	}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, p.Labels[k], v)
		}
	}
	for k, v := range map[string]string{
		"alert_id": a.ID, "event_id": "01JTESTEVENT", "count": "3", "since": "2025-03-01T10:00:00Z",
		"alert_type": "error", "rule": "default", "inode": "12", "path": "/mnt/data/dir/bad",
		"summary": "EUCLEAN on /dev/loop7 (/mnt/data) on web1.example.org", "mountpoints": "/mnt/data, /srv/data",
	} {
		if p.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.Annotations[k], v)
		}
	}
	d := p.Annotations["description"]
	for _, s := range []string{"3 EUCLEAN error(s) since 2025-03-01T10:00:00Z", "/dev/loop7 (ext4) mounted at /mnt/data, /srv/data",
		"UUID " + a.Filesystem.UUID, "Inode: 12 (generation 7)", "Path: /mnt/data/dir/bad",
		"structure needs cleaning", "ext4 recorded state: 4 error(s)", "ext4_lookup:1812", "Alert id: " + a.ID} {
		if !strings.Contains(d, s) {
			t.Errorf("description lacks %q:\n%s", s, d)
		}
	}
	if !p.StartsAt.Equal(a.Since) {
		t.Errorf("startsAt %v, want Since %v", p.StartsAt, a.Since)
	}
	if lo, hi := before.Add(3*time.Minute), time.Now().Add(3*time.Minute); p.EndsAt.Before(lo.Add(-time.Second)) || p.EndsAt.After(hi) {
		t.Errorf("endsAt %v, want now + 3 × ResendInterval (%v..%v)", p.EndsAt, lo, hi)
	}
	if p.GeneratorURL != "https://grafana.example/d/fs" {
		t.Errorf("generatorURL %q", p.GeneratorURL)
	}
	if n.ResendInterval() != time.Minute {
		t.Errorf("ResendInterval %v", n.ResendInterval())
	}
}

func TestPayloadTimes(t *testing.T) {
	n := newNotifier(t, alertmanager.Config{URLs: []string{"http://127.0.0.1:9093"}})
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	fire := n.Payload(notifytest.Alert(alert.TypeReminder), now)
	if want := now.Add(3 * alertmanager.DefaultResendInterval); !fire.EndsAt.Equal(want) {
		t.Errorf("reminder endsAt %v, want %v", fire.EndsAt, want)
	}

	res := n.Payload(notifytest.Alert(alert.TypeResolved), now)
	if !res.EndsAt.Equal(now) {
		t.Errorf("resolved endsAt %v, want now %v", res.EndsAt, now)
	}
	if !equalMaps(res.Labels, fire.Labels) {
		t.Errorf("resolved labels %v differ from firing labels %v", res.Labels, fire.Labels)
	}
	if !strings.HasPrefix(res.Annotations["summary"], "resolved: ") {
		t.Errorf("resolved summary %q", res.Annotations["summary"])
	}

	tst := n.Payload(notifytest.Alert(alert.TypeTest), now)
	if tst.Labels["test"] != "true" {
		t.Errorf("test alert labels %v lack test=\"true\"", tst.Labels)
	}
	if !tst.EndsAt.Equal(now.Add(alertmanager.TestAlertLifetime)) {
		t.Errorf("test endsAt %v", tst.EndsAt)
	}
	if !strings.HasPrefix(tst.Annotations["summary"], "TEST: ") || !strings.Contains(tst.Annotations["description"], "test alert") {
		t.Errorf("test annotations %v", tst.Annotations)
	}

	// A Since after now (clock skew) must still give startsAt < endsAt.
	a := notifytest.Alert(alert.TypeResolved)
	a.Since = now.Add(time.Hour)
	if p := n.Payload(a, now); !p.StartsAt.Before(p.EndsAt) {
		t.Errorf("startsAt %v not before endsAt %v", p.StartsAt, p.EndsAt)
	}

	d := n.Payload(notifytest.Alert(alert.TypeDigest), now).Annotations["description"]
	if !strings.Contains(d, "3 more EUCLEAN error(s) since 2025-03-01T10:00:00Z") {
		t.Errorf("digest description:\n%s", d)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHostileStrings(t *testing.T) {
	rec := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, alertmanager.Config{URLs: []string{rec.URL}})
	a := notifytest.Alert(alert.TypeError)
	a.Filesystem.Mountpoints = []string{hostileMount}
	a.Filesystem.Label = "lab\nel"
	a.Event.Path = hostileMount + "/file\n"
	a.Summary = "EUCLEAN on /dev/loop7 (" + hostileMount + ")"
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(rec.Requests()[0].Body) {
		t.Fatalf("body is not valid JSON: %q", rec.Requests()[0].Body)
	}
	var got []alertmanager.PostableAlert
	if err := json.Unmarshal(rec.Requests()[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range got[0].Labels {
		if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n\x00") {
			t.Errorf("label %s = %q is not a clean UTF-8 line", k, v)
		}
	}
	if mp := got[0].Labels["mountpoint"]; !strings.Contains(mp, `\r\nBcc`) {
		t.Errorf("mountpoint label %q: want the control characters escaped", mp)
	}
	for k, v := range got[0].Annotations {
		if !utf8.ValidString(v) {
			t.Errorf("annotation %s = %q is not valid UTF-8", k, v)
		}
		if k != "description" && strings.ContainsAny(v, "\r\n") {
			t.Errorf("annotation %s = %q has a line break", k, v)
		}
	}
	for _, l := range strings.Split(got[0].Annotations["description"], "\n") {
		if strings.HasPrefix(l, "Bcc") || strings.HasPrefix(l, "el") || strings.Contains(l, "\r") {
			t.Errorf("description has a forged line %q", l)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   []string
	}{
		{400, `"start time must be before end time"`, []string{"HTTP 400 Bad Request", "start time must be before end time"}},
		{500, "internal failure", []string{"HTTP 500 Internal Server Error", "internal failure"}},
		{503, `{"code":503,"message":"not ready"}`, []string{"HTTP 503", "not ready"}},
		{307, "", []string{"HTTP 307", "redirects are not followed"}},
	} {
		rec := notifytest.NewReceiver(t, tc.status, tc.body)
		n := newNotifier(t, alertmanager.Config{Name: "am-status", URLs: []string{rec.URL}})
		err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
		if err == nil {
			t.Errorf("HTTP %d: Send succeeded", tc.status)
			continue
		}
		msg := err.Error()
		for _, w := range append(tc.want, `alertmanager "am-status"`, "01JTESTALERTERROR", rec.URL+"/api/v2/alerts") {
			if !strings.Contains(msg, w) {
				t.Errorf("HTTP %d: error %q lacks %q", tc.status, msg, w)
			}
		}
	}
}

func TestHighAvailability(t *testing.T) {
	ok := notifytest.NewReceiver(t, http.StatusOK, "")
	bad := notifytest.NewReceiver(t, http.StatusServiceUnavailable, "down for maintenance")
	dead := notifytest.DeadURL(t)

	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))

	// Both accept: success, and nothing is logged.
	ok2 := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, alertmanager.Config{URLs: []string{ok2.URL, ok.URL}, Logger: logger})
	if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Errorf("both Alertmanagers accepting: %v", err)
	}
	logMu.Lock()
	if logBuf.Len() != 0 {
		t.Errorf("a send every Alertmanager accepted logged %q", logBuf.String())
	}
	logMu.Unlock()

	// One of two down (refusing connections): success.
	n = newNotifier(t, alertmanager.Config{URLs: []string{dead, ok.URL}, Logger: logger})
	if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Errorf("one Alertmanager down: %v", err)
	}
	// One answers 503: success, and the failure is logged.
	n = newNotifier(t, alertmanager.Config{URLs: []string{bad.URL, ok.URL}, Logger: logger})
	if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
		t.Errorf("one Alertmanager failing: %v", err)
	}
	if len(ok.Requests()) != 3 || len(bad.Requests()) != 1 || len(ok2.Requests()) != 1 {
		t.Errorf("requests: ok %d (want 3), ok2 %d (want 1), bad %d (want 1)", len(ok.Requests()), len(ok2.Requests()), len(bad.Requests()))
	}
	logMu.Lock()
	if !strings.Contains(logBuf.String(), "HTTP 503") {
		t.Errorf("partial failure not logged: %q", logBuf.String())
	}
	logMu.Unlock()

	// Both down: an error naming both.
	dead2 := notifytest.DeadURL(t)
	n = newNotifier(t, alertmanager.Config{Name: "ha", URLs: []string{dead, bad.URL, dead2}})
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil {
		t.Fatal("all Alertmanagers down: Send succeeded")
	}
	for _, w := range []string{"any of the 3 Alertmanagers", dead + "/api/v2/alerts", dead2 + "/api/v2/alerts", "connection refused", "HTTP 503", "down for maintenance"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBasicAuthNeverInErrors(t *testing.T) {
	const user, pass = "fsuser", "s3cr3t-pa55word"
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	var fail bool
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		f := fail
		mu.Unlock()
		if f {
			// A hostile or buggy server echoing the credentials.
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "auth was "+r.Header.Get("Authorization")+" password "+pass+" token "+r.Header.Get("X-Token"))
		}
	}))
	t.Cleanup(srv.Close)
	hostport := strings.TrimPrefix(srv.URL, "http://")

	for _, cfg := range []alertmanager.Config{
		{URLs: []string{srv.URL}, Username: user, Password: pass, Headers: map[string]string{"X-Token": "Bearer tok-123456"}},
		{URLs: []string{"http://" + user + ":" + pass + "@" + hostport}, Headers: map[string]string{"X-Token": "Bearer tok-123456"}},
		// The same credentials in the URL and configured do not conflict.
		{URLs: []string{"http://" + user + ":" + pass + "@" + hostport}, Username: user, Password: pass, Headers: map[string]string{"X-Token": "Bearer tok-123456"}},
	} {
		mu.Lock()
		fail = false
		mu.Unlock()
		n := newNotifier(t, cfg)
		if err := n.Send(context.Background(), notifytest.Alert(alert.TypeError)); err != nil {
			t.Fatalf("with basic auth: %v", err)
		}
		mu.Lock()
		fail = true
		mu.Unlock()
		err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
		if err == nil {
			t.Fatal("Send succeeded on HTTP 502")
		}
		for _, secret := range []string{pass, cred, "tok-123456", user + ":"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret %q", err, secret)
			}
		}
		if !strings.Contains(err.Error(), "HTTP 502") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("error %q: want HTTP 502 and the secrets scrubbed", err)
		}
	}

	// A wrong password: 401, and still no secret in the error.
	n := newNotifier(t, alertmanager.Config{URLs: []string{"http://" + user + ":wrong-password@" + hostport}})
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("wrong password: got %v, want HTTP 401", err)
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), user) {
		t.Errorf("error %q shows the URL's user information", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	n := newNotifier(t, alertmanager.Config{URLs: []string{srv.URL}, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hanging server: got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 200ms timeout", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Send(ctx, notifytest.Alert(alert.TypeError)); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("canceled context: got %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  alertmanager.Config
		want string
	}{
		{alertmanager.Config{Name: "x"}, `alertmanager "x": no URL`},
		{alertmanager.Config{URLs: []string{"ftp://h:1"}}, "scheme must be http or https"},
		{alertmanager.Config{URLs: []string{"http://"}}, "has no host"},
		{alertmanager.Config{URLs: []string{"http://h:9093?x=1"}}, "no query"},
		{alertmanager.Config{URLs: []string{"http://h:9093", "http://h:9093/"}}, "listed twice"},
		{alertmanager.Config{URLs: []string{"http://u:pw-secret@h:9093"}, Username: "v", Password: "other"}, "differs"},
		// Either part differing is a conflict.
		{alertmanager.Config{URLs: []string{"http://u:pw-secret@h:9093"}, Username: "u", Password: "other"}, "differs"},
		{alertmanager.Config{URLs: []string{"http://v:pw-secret@h:9093"}, Username: "u", Password: "pw-secret"}, "differs"},
		{alertmanager.Config{URLs: []string{"http://h"}, Password: "pw-secret"}, "no username"},
		{alertmanager.Config{URLs: []string{"http://h"}, Headers: map[string]string{"Bad Name": "v"}}, "header name"},
		{alertmanager.Config{URLs: []string{"http://h"}, Headers: map[string]string{"X-A": "v\r\nX-B: y"}}, "control character"},
		{alertmanager.Config{URLs: []string{"http://h"}, Headers: map[string]string{"content-type": "text/plain"}}, "cannot be set"},
		{alertmanager.Config{URLs: []string{"http://h"}, Username: "u", Headers: map[string]string{"Authorization": "Bearer pw-secret"}}, "conflicts"},
		{alertmanager.Config{URLs: []string{"http://h"}, ExtraLabels: map[string]string{"bad-name": "v"}}, "not valid"},
		{alertmanager.Config{URLs: []string{"http://h"}, ExtraLabels: map[string]string{"severity": "v"}}, "replace"},
		{alertmanager.Config{URLs: []string{"http://h"}, ExtraLabels: map[string]string{"env": "\xff"}}, "UTF-8"},
		{alertmanager.Config{URLs: []string{"http://h"}, GeneratorURL: "/relative"}, "generator URL"},
		{alertmanager.Config{URLs: []string{"http://h"}, Timeout: -1}, "negative"},
		{alertmanager.Config{URLs: []string{"http://h"}, ResendInterval: -1}, "negative"},
	} {
		_, err := alertmanager.New(tc.cfg)
		if err == nil {
			t.Errorf("%+v: New succeeded, want %q", tc.cfg.URLs, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "alertmanager \"") {
			t.Errorf("error %q, want it to name the channel and contain %q", err, tc.want)
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("error %q shows a secret", err)
		}
	}
}

// TestNoMountpoint: an alert about a file system that is not mounted (an
// event about an unmounted one) has no mountpoint label and no mountpoints
// annotation, rather than empty ones.
func TestNoMountpoint(t *testing.T) {
	n := newNotifier(t, alertmanager.Config{URLs: []string{"http://127.0.0.1:9093"}})
	a := notifytest.Alert(alert.TypeError)
	a.Filesystem.Mountpoints = nil
	p := n.Payload(a, time.Now())
	if v, ok := p.Labels["mountpoint"]; ok {
		t.Errorf("labels have mountpoint %q, want none: %v", v, p.Labels)
	}
	if v, ok := p.Annotations["mountpoints"]; ok {
		t.Errorf("annotations have mountpoints %q, want none", v)
	}
	if d := p.Annotations["description"]; !strings.Contains(d, "File system: /dev/loop7 (ext4)\n") {
		t.Errorf("description %q, want the file system without mount points", d)
	}
	if p.Labels["device"] != "/dev/loop7" {
		t.Errorf("labels %v, want the device", p.Labels)
	}
}

// TestDescriptionOptionalLines: the identity and host lines of the
// description are there when known, and only then.
func TestDescriptionOptionalLines(t *testing.T) {
	for _, tc := range []struct {
		uuid, label, host string
		want              []string
		not               []string
	}{
		{"", "", "", []string{"File system: /dev/loop7 (ext4) mounted at /mnt/data, /srv/data\nAlert id"}, []string{"UUID", "Host:"}},
		{"", "data", "h1", []string{"\nUUID -, label data\nHost: h1\n"}, nil},
		{"u-1", "", "", []string{"\nUUID u-1\nAlert id"}, []string{"label", "Host:"}},
		{"u-1", "data", "h1", []string{"\nUUID u-1, label data\nHost: h1\n"}, nil},
	} {
		a := notifytest.Alert(alert.TypeError)
		a.Filesystem.UUID, a.Filesystem.Label, a.Host = tc.uuid, tc.label, tc.host
		a.Event = nil
		a.Rule = ""
		d := alertmanager.Description(a)
		for _, w := range tc.want {
			if !strings.Contains(d, w) {
				t.Errorf("uuid %q, label %q, host %q: description %q lacks %q", tc.uuid, tc.label, tc.host, d, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(d, w) {
				t.Errorf("uuid %q, label %q, host %q: description %q has %q", tc.uuid, tc.label, tc.host, d, w)
			}
		}
	}
}

// TestDescriptionEventLines: the event's lines of the description, each
// there when its datum is known, and only then.
func TestDescriptionEventLines(t *testing.T) {
	const head = "The file system reported 3 EUCLEAN error(s) since 2025-03-01T10:00:00Z.\n" +
		"File system: /dev/loop7 (ext4) mounted at /mnt/data, /srv/data\n" +
		"UUID 0b1c2d3e-1111-2222-3333-444455556666, label data\nHost: web1.example.org\n"
	for _, tc := range []struct {
		name   string
		change func(a *alert.Alert)
		want   string
	}{
		{"everything", func(a *alert.Alert) { a.Event.Message = "a note" },
			head + "Error: EUCLEAN (structure needs cleaning), errno 117\nInode: 12 (generation 7)\nPath: /mnt/data/dir/bad\n" +
				"ext4 recorded state: 4 error(s) since the last fsck; the last at 2025-03-01T10:00:00Z in ext4_lookup:1812 inode 12 block 99 EUCLEAN\n" +
				"Note: a note\nRule: default\nAlert id: 01JTESTALERTERROR"},
		{"last error without inode, block, errno; no rule", func(a *alert.Alert) {
			l := a.Event.Ext4.LastError
			l.Inode, l.Block, l.Error = 0, 0, ""
			a.Rule = ""
		}, head + "Error: EUCLEAN (structure needs cleaning), errno 117\nInode: 12 (generation 7)\nPath: /mnt/data/dir/bad\n" +
			"ext4 recorded state: 4 error(s) since the last fsck; the last at 2025-03-01T10:00:00Z in ext4_lookup:1812\n" +
			"Alert id: 01JTESTALERTERROR"},
		{"no errno, generation, path or last error", func(a *alert.Alert) {
			e := a.Event
			e.Error, e.Generation, e.Path, e.PathError = "", nil, "", "ESTALE"
			e.Ext4.LastError = nil
		}, head + "Inode: 12\nPath: unknown (ESTALE)\next4 recorded state: 4 error(s) since the last fsck\nRule: default\nAlert id: 01JTESTALERTERROR"},
		{"no inode, path or ext4 state", func(a *alert.Alert) {
			e := a.Event
			e.Error, e.Inode, e.Path, e.Ext4 = "", nil, "", nil
		}, head + "Rule: default\nAlert id: 01JTESTALERTERROR"},
	} {
		a := notifytest.Alert(alert.TypeError)
		tc.change(a)
		if got := alertmanager.Description(a); got != tc.want {
			t.Errorf("%s: description\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}
