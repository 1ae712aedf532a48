package e2e_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/testutil"
)

// historyJSON returns the raw JSON objects `fshealth events --json` prints,
// decoded as generic values, by event id.
func historyJSON(t *testing.T, dir string) map[string]any {
	t.Helper()
	out := mustRun(t, "events", "--json", "--state-dir", dir)
	m := map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("events --json: %v: %q", err, l)
		}
		id, _ := v["id"].(string)
		m[id] = v
	}
	return m
}

// eventObject returns the "event" member of an alert's JSON, generically.
func eventObject(t *testing.T, alertJSON []byte) any {
	t.Helper()
	var v struct {
		Event any `json:"event"`
	}
	if err := json.Unmarshal(alertJSON, &v); err != nil {
		t.Fatalf("alert JSON: %v: %q", err, alertJSON)
	}
	return v.Event
}

// TestErrorReachesWebhook: one real ext4 error, read by the daemon from the
// kernel, reaches a webhook as one alert carrying the event. It is the
// daemon's whole path on one channel, small enough for the kernel matrix's
// guests (TestErrorReachesWebhookHookAndSMTP checks the channels in detail).
func TestErrorReachesWebhook(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	dir := t.TempDir()
	wh := newReceiver(t)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s
`, tomlString(wh.URL()+"/alerts")), 0o600)
	d := startDaemon(t, cfg, filepath.Join(dir, "state"))

	trigger(t, im, "e2e: webhook")
	req := wh.waitAccepted(t, 1)[0]
	var a alertBody
	if err := json.Unmarshal(req.Body, &a); err != nil {
		t.Fatalf("webhook body is not an alert's JSON: %v: %q", err, req.Body)
	}
	if a.ID == "" || a.Type != "error" || a.Severity != "critical" || a.Host != "e2e-host" || a.ErrorKind != "EUCLEAN" || a.Count != 1 ||
		a.Filesystem.Device != im.Dev || a.Filesystem.UUID != uuid || a.Filesystem.FSType != "ext4" ||
		!slices.Contains(a.Filesystem.Mountpoints, im.Mountpoint) || a.Test {
		t.Errorf("webhook alert %+v, want a critical EUCLEAN alert about %s (%s, uuid %s)", a, im.Dev, im.Mountpoint, uuid)
	}
	if e := a.Event; e == nil || e.ID == "" || e.Kind != "error" || e.Source != "fanotify" || e.Errno != 117 || e.Error != "EUCLEAN" ||
		e.ErrorCount != 1 || e.Device != im.Dev || e.FSType != "ext4" || e.UUID != uuid || !slices.Contains(e.Mountpoints, im.Mountpoint) || e.Inode != nil {
		t.Errorf("the alert's event %+v, want the EUCLEAN error (fanotify, count 1, no inode) on %s", e, im.Dev)
	}
	// One error, one alert: nothing else arrives until the daemon stops.
	d.stop()
	if n := len(wh.requests()); n != 1 {
		t.Errorf("the webhook got %d requests, want 1", n)
	}
}

// TestFirstAlertDoesNotWaitForExt4Record: the first error of a file system
// is alerted with what its event carries, before ext4 publishes its record
// of the error (the alert's event says ext4_pending); the record is then
// added to the event in the history, and to the incident.
func TestFirstAlertDoesNotWaitForExt4Record(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	wh := newReceiver(t)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s
`, tomlString(wh.URL()+"/alerts")), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: first alert")
	req := wh.waitAccepted(t, 1)[0]
	var a alertBody
	if err := json.Unmarshal(req.Body, &a); err != nil {
		t.Fatalf("webhook body is not an alert's JSON: %v: %q", err, req.Body)
	}
	if a.Event == nil || !a.Event.Ext4Pending || a.Event.Ext4 != nil {
		t.Fatalf("the first alert's event %+v, want it sent without ext4's record, saying it follows", a.Event)
	}
	var evs []event
	eventually(t, func() string { return fmt.Sprintf("history %+v, want the alert's event with ext4's record", evs) }, func() bool {
		evs = events(t, state)
		return len(evs) == 1 && evs[0].ID == a.Event.ID && !evs[0].Ext4Pending && evs[0].Ext4 != nil
	})
	if x := evs[0].Ext4; x.ErrorsCount != 1 || x.LastError == nil || x.LastError.Function != "trigger_test_error" {
		t.Errorf("ext4's record in the history: %+v, want 1 error, the last in trigger_test_error", x)
	}
	d.stop()
	if n := len(wh.requests()); n != 1 {
		t.Errorf("the webhook got %d requests, want 1 (the record is not alerted again)", n)
	}
}

// TestErrorReachesWebhookHookAndSMTP: one real ext4 error reaches a webhook
// (the alert's JSON, with its id in a header, a verifiable HMAC signature
// and a custom header), a hook program (the alert on stdin and FSHEALTH_*
// variables) and an SMTP server (subject and body naming the device), and
// the event object each carries is the one in the history.
func TestErrorReachesWebhookHookAndSMTP(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	// The history has the event before any alert about it leaves the
	// daemon: the receiver looks it up while the request is in flight.
	var inHistory sync.Map // event id → bool
	wh := newInspectingReceiver(t, func(body []byte) {
		var a alertBody
		if json.Unmarshal(body, &a) != nil || a.Event == nil {
			return
		}
		// Not run(): t.Fatal must not be called off the test's goroutine.
		cmd := exec.Command(binary, "events", "--json", "--state-dir", state)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.Output()
		inHistory.Store(a.Event.ID, err == nil && bytes.Contains(out, []byte(`"id":"`+a.Event.ID+`"`)))
	})
	hooks := newHookRecorder(t)
	smtpd := newSMTPServer(t)
	const secret = "e2e-hmac-secret"
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[hooks]
dir = %s
timeout = "10s"

[[webhook]]
name = "hq"
url = %s
secret = %q
headers = { "X-E2e-Token" = "token-123" }

[[smtp]]
name = "mail"
host = "127.0.0.1"
port = %d
tls = "none"
from = "fshealth <fshealth@e2e.test>"
to = ["ops@e2e.test"]
`, tomlString(hooks.Dir), tomlString(wh.URL()+"/alerts"), secret, smtpd.port()), 0o600)
	d := startDaemon(t, cfg, state)

	trigger(t, im, "e2e: webhook, hook and smtp")
	evs := waitErrors(t, state, 1)
	if len(evs) != 1 {
		t.Fatalf("history has %d events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.ID == "" || ev.Kind != "error" || ev.Error != "EUCLEAN" || ev.Errno != 117 || ev.Device != im.Dev ||
		ev.FSType != "ext4" || ev.UUID != uuid || !slices.Contains(ev.Mountpoints, im.Mountpoint) {
		t.Errorf("history event %+v, want an EUCLEAN error on %s (%s, uuid %s) with an id", ev, im.Dev, im.Mountpoint, uuid)
	}
	history := historyJSON(t, state)
	// The alerts carry the event as it was sent: ext4's record of the error
	// followed it and is in the history now, or soon.
	if h, ok := history[ev.ID].(map[string]any); ok {
		if _, has := h["ext4"]; has {
			delete(h, "ext4")
			h["ext4_pending"] = true
		}
	}

	// The webhook.
	req := wh.waitAccepted(t, 1)[0]
	var a alertBody
	if err := json.Unmarshal(req.Body, &a); err != nil {
		t.Fatalf("webhook body is not JSON: %v: %q", err, req.Body)
	}
	if a.ID == "" || req.Header.Get("X-Fshealth-Alert-Id") != a.ID {
		t.Errorf("X-Fshealth-Alert-Id %q, alert id %q: want the same, not empty", req.Header.Get("X-Fshealth-Alert-Id"), a.ID)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.Body)
	if got, want := req.Header.Get("X-Fshealth-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("X-Fshealth-Signature %q, want %q (HMAC-SHA256 of the exact body)", got, want)
	}
	if got := req.Header.Get("X-E2e-Token"); got != "token-123" {
		t.Errorf("custom header X-E2e-Token = %q, want token-123", got)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if a.Type != "error" || a.Severity != "critical" || a.Host != "e2e-host" || a.ErrorKind != "EUCLEAN" || a.Count != 1 ||
		a.Filesystem.Device != im.Dev || a.Filesystem.UUID != uuid || a.Filesystem.FSType != "ext4" ||
		!slices.Contains(a.Filesystem.Mountpoints, im.Mountpoint) || a.Test {
		t.Errorf("webhook alert %+v", a)
	}
	if a.Event == nil || a.Event.ID != ev.ID {
		t.Fatalf("webhook alert's event %+v, want the history's event %s", a.Event, ev.ID)
	}
	if got := eventObject(t, req.Body); !reflect.DeepEqual(got, history[ev.ID]) {
		t.Errorf("the webhook's event object differs from the history's:\nwebhook: %v\nhistory: %v", got, history[ev.ID])
	}
	// The alert each channel carries is the documented one.
	schema := notifytest.AlertSchema(t)
	notifytest.CheckAlertJSON(t, schema, "webhook body", req.Body)
	if ok, _ := inHistory.Load(ev.ID); ok != true {
		t.Errorf("event %s was not in the history when its alert reached the webhook", ev.ID)
	}

	// The hook: the same alert.
	runs := hooks.waitRuns(t, 1)
	run, ok := runs[a.ID]
	if !ok || len(runs) != 1 {
		t.Fatalf("hook runs for alerts %v, want one for %s", slices.Collect(maps.Keys(runs)), a.ID)
	}
	for k, want := range map[string]string{"FSHEALTH_ALERT_ID": a.ID, "FSHEALTH_ALERT_TYPE": "error", "FSHEALTH_SEVERITY": "critical",
		"FSHEALTH_EVENT_ID": ev.ID, "FSHEALTH_ERROR": "EUCLEAN", "FSHEALTH_ERRNO": "117", "FSHEALTH_DEVICE": im.Dev,
		"FSHEALTH_FSTYPE": "ext4", "FSHEALTH_UUID": uuid, "FSHEALTH_MOUNTPOINT": im.Mountpoint, "FSHEALTH_PATH": "",
		"FSHEALTH_INODE": "", "FSHEALTH_TEST": "", "FSHEALTH_HOST": "e2e-host"} {
		if got := run.Env[k]; got != want {
			t.Errorf("hook: %s=%q, want %q", k, got, want)
		}
	}
	var hookAlert alertBody
	if err := json.Unmarshal(run.Stdin, &hookAlert); err != nil {
		t.Fatalf("hook stdin is not JSON: %v: %q", err, run.Stdin)
	}
	notifytest.CheckAlertJSON(t, schema, "hook stdin", run.Stdin)
	if hookAlert.ID != a.ID {
		t.Errorf("hook stdin alert id %q, want %q", hookAlert.ID, a.ID)
	}
	if got := eventObject(t, run.Stdin); !reflect.DeepEqual(got, history[ev.ID]) {
		t.Errorf("the hook's event object differs from the history's:\nhook:    %v\nhistory: %v", got, history[ev.ID])
	}
	d.waitLog("hook recorded alert "+a.ID, 1) // the hook's output is logged

	// The e-mail.
	var msgs []smtpMessage
	eventually(t, func() string { return "no e-mail arrived" }, func() bool { msgs = smtpd.messages(); return len(msgs) > 0 })
	if len(msgs) != 1 {
		t.Errorf("%d e-mails, want 1", len(msgs))
	}
	m := parseMail(t, msgs[0].Data)
	if !strings.Contains(msgs[0].From, "fshealth@e2e.test") || len(msgs[0].To) != 1 || !strings.Contains(msgs[0].To[0], "ops@e2e.test") {
		t.Errorf("envelope from %q to %q", msgs[0].From, msgs[0].To)
	}
	if !strings.HasPrefix(m.Subject, "[fshealth] critical ") || !strings.Contains(m.Subject, "EUCLEAN") ||
		!strings.HasSuffix(m.Subject, " on e2e-host") {
		t.Errorf("subject %q, want \"[fshealth] critical ...EUCLEAN... on e2e-host\"", m.Subject)
	}
	if !strings.Contains(m.Text, im.Dev) || !strings.Contains(m.Text, a.ID) || !strings.Contains(m.Text, im.Mountpoint) {
		t.Errorf("the e-mail's text does not name the device %s, mount point and alert id %s:\n%s", im.Dev, a.ID, m.Text)
	}
	if got := m.Header.Get("X-Fshealth-Alert-Id"); got != a.ID {
		t.Errorf("e-mail X-Fshealth-Alert-Id %q, want %q", got, a.ID)
	}
	notifytest.CheckAlertJSON(t, schema, "e-mail attachment", m.JSON)
	if got := eventObject(t, m.JSON); !reflect.DeepEqual(got, history[ev.ID]) {
		t.Errorf("the e-mail's attached event differs from the history's:\nmail:    %v\nhistory: %v", got, history[ev.ID])
	}

	// The journal channel (stderr here) logged the error, and nothing is
	// left to deliver.
	if log := d.stderr.String(); !strings.Contains(log, im.Dev) || !strings.Contains(log, "EUCLEAN") {
		t.Errorf("the daemon's log does not mention the error on %s:\n%s", im.Dev, log)
	}
	eventually(t, func() string { return fmt.Sprintf("backlog: %+v", getStatus(t, state).Deliveries) }, func() bool {
		s := getStatus(t, state)
		for _, ch := range []string{"hq", "hooks", "mail"} {
			if b := s.channelBacklog(ch); b.Pending != 0 || b.Failed != 0 {
				return false
			}
		}
		return true
	})
	d.stop()
}

// TestErrorReachesAlertmanager: an error reaches a real Alertmanager, as an
// active alert with the labels the issue asks for.
func TestErrorReachesAlertmanager(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	am := startAlertmanager(t)
	wh := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s

[[alertmanager]]
name = "am"
urls = [%s]
resend_interval = "1m"
labels = { team = "storage" }
`, tomlString(wh.URL()), tomlString(am)), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: alertmanager")
	ev := waitErrors(t, state, 1)[0]
	wh.waitAccepted(t, 1)
	a := wh.accepted(t)

	var got amAlert
	eventually(t, func() string { return fmt.Sprintf("no alert for %s in Alertmanager: %+v", im.Dev, amAlerts(t, am)) }, func() bool {
		for _, x := range amAlerts(t, am) {
			if x.Labels["device"] == im.Dev {
				got = x
				return true
			}
		}
		return false
	})
	want := map[string]string{"alertname": "FilesystemError", "instance": "e2e-host", "device": im.Dev,
		"mountpoint": im.Mountpoint, "fstype": "ext4", "uuid": uuid, "errno": "EUCLEAN", "severity": "critical", "team": "storage"}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Errorf("Alertmanager label %s = %q, want %q (labels %v)", k, got.Labels[k], v, got.Labels)
		}
	}
	if got.Status.State != "active" {
		t.Errorf("Alertmanager alert state %q, want active", got.Status.State)
	}
	if got.Annotations["alert_id"] != a[0].ID || got.Annotations["event_id"] != ev.ID {
		t.Errorf("Alertmanager annotations %v, want alert_id %s (as the webhook got) and event_id %s", got.Annotations, a[0].ID, ev.ID)
	}
	d.stop()
}

// TestDeliverySurvivesSIGKILL: with both receivers down (one refusing
// connections, one answering 503), errors queue up in the outbox, visible
// in `status`; the daemon is killed with SIGKILL; the receivers come back;
// after a restart every pending alert is delivered to both, with the ids
// they had before the crash.
func TestDeliverySurvivesSIGKILL(t *testing.T) {
	im := newFS(t)
	busy := newReceiver(t)
	busy.status.Store(http.StatusServiceUnavailable)
	down := deadAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "busy"
url = %s

[[webhook]]
name = "down"
url = %s
`, tomlString(busy.URL()+"/hook"), tomlString("http://"+down+"/hook")), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)

	const n = 3
	for i := 1; i <= n; i++ {
		trigger(t, im, fmt.Sprint("e2e: durable ", i))
		waitErrors(t, state, uint64(i)) // one event per error
	}
	evs := events(t, state)
	if len(evs) != n {
		t.Fatalf("history has %d events, want %d", len(evs), n)
	}
	// Every alert is pending on both channels, each has been tried.
	var st status
	eventually(t, func() string { return fmt.Sprintf("backlog %+v", st.Deliveries) }, func() bool {
		st = getStatus(t, state)
		b, dn := st.channelBacklog("busy"), st.channelBacklog("down")
		return b.Pending == n && dn.Pending == n && b.LastError != "" && dn.LastError != ""
	})
	if !st.Daemon.Running || st.Daemon.PID != d.pid() {
		t.Errorf("status says daemon %+v, want running with pid %d", st.Daemon, d.pid())
	}
	if le := st.channelBacklog("busy").LastError; !strings.Contains(le, "503") {
		t.Errorf("busy's last error %q does not mention the 503", le)
	}
	var before []string // alert ids the busy receiver refused before the crash
	for _, q := range busy.requests() {
		before = append(before, q.Header.Get("X-Fshealth-Alert-Id"))
	}
	if len(before) == 0 {
		t.Fatal("the busy receiver saw no attempt")
	}

	t.Logf("before the crash: backlog %+v; busy refused alert ids %v", st.Deliveries, before)
	d.kill()
	st = getStatus(t, state)
	if st.Daemon.Running {
		t.Errorf("status says the daemon runs after SIGKILL: %+v", st.Daemon)
	}
	for _, ch := range []string{"busy", "down"} {
		if b := st.channelBacklog(ch); b.Pending != n {
			t.Errorf("after SIGKILL channel %s has %d pending, want %d", ch, b.Pending, n)
		}
	}

	// The receivers come back; so does the daemon.
	busy.status.Store(http.StatusOK)
	up := newReceiverAt(t, down)
	d = startDaemon(t, cfg, state)
	wantEvents := map[string]bool{}
	for _, e := range evs {
		wantEvents[e.ID] = true
	}
	ids := map[string]map[string]bool{}
	for name, r := range map[string]*receiver{"busy": busy, "down": up} {
		var got map[string]bool
		eventually(t, func() string { return fmt.Sprintf("%s received alerts %v, want %d", name, got, n) }, func() bool {
			got = map[string]bool{}
			for _, a := range r.accepted(t) {
				got[a.ID] = true
			}
			return len(got) >= n
		})
		evSeen := map[string]bool{}
		for _, q := range r.requests() {
			if q.Status != http.StatusOK {
				continue
			}
			var a alertBody
			json.Unmarshal(q.Body, &a)
			if q.Header.Get("X-Fshealth-Alert-Id") != a.ID || a.Event == nil {
				t.Errorf("%s: alert id header %q, body id %q, event %v", name, q.Header.Get("X-Fshealth-Alert-Id"), a.ID, a.Event)
				continue
			}
			evSeen[a.Event.ID] = true
		}
		if !reflect.DeepEqual(evSeen, wantEvents) {
			t.Errorf("%s got alerts for events %v, want %v", name, evSeen, wantEvents)
		}
		ids[name] = got
	}
	if !reflect.DeepEqual(ids["busy"], ids["down"]) {
		t.Errorf("the channels got different alert ids: busy %v, down %v", ids["busy"], ids["down"])
	}
	for _, id := range before {
		if !ids["busy"][id] {
			t.Errorf("alert %s, refused before the crash, was delivered under another id after it: %v", id, ids["busy"])
		}
	}
	eventually(t, func() string { return fmt.Sprintf("backlog %+v", getStatus(t, state).Deliveries) }, func() bool {
		st := getStatus(t, state)
		return st.channelBacklog("busy").Pending == 0 && st.channelBacklog("down").Pending == 0
	})
	if got := events(t, state); len(got) != n {
		t.Errorf("after the restart the history has %d events, want %d", len(got), n)
	}

	// A new error after the restart is a new alert: receivers that
	// de-duplicate on the id must not drop it.
	trigger(t, im, "e2e: after the restart")
	evs = waitErrors(t, state, n+1)
	var fresh alertBody
	eventually(t, func() string { return "the error after the restart was not delivered" }, func() bool {
		for _, a := range busy.accepted(t) {
			if a.Event != nil && a.Event.ID == evs[len(evs)-1].ID {
				fresh = a
				return true
			}
		}
		return false
	})
	if ids["busy"][fresh.ID] {
		t.Errorf("the alert for the error after the restart reuses the id %s of an earlier alert", fresh.ID)
	}
	d.stop()
}

// TestBadConfigRefused: a bad configuration is refused by the daemon and by
// check-config, each problem named as file:line: key: reason, without a
// secret in sight; a good one passes check-config.
func TestBadConfigRefused(t *testing.T) {
	dir := t.TempDir()
	secrets := []string{"hunter2-url-pass", "url-token-42", "hmac-secret-42", "header-secret-42", "unterminated-secret-99"}
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, `# a configuration with mistakes
hostname = "e2e-host"

[history]
retension = "5d"

[[webhook]]
name = "ops"
url = "ftp://user:hunter2-url-pass@example.com/x?token=url-token-42"
secret = "hmac-secret-42"
headers = { Authorization = "Bearer header-secret-42" }

[[rule]]
match = { errno = ["EFOO"] }
`, 0o600)
	want := []string{
		bad + `:5: unknown key "retension" in [history]`,
		bad + `:9: webhook[1].url: not an absolute http(s) URL: "ftp://<redacted>@example.com/x?token=<redacted>"`,
		bad + `:14: rule[1].match.errno[1]: unknown errno name "EFOO"`,
	}
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, out)
			}
		}
	}
	checkRefused := func(what string, args []string, want []string) {
		t.Helper()
		stdout, stderr, code := run(t, args...)
		if code == 0 {
			t.Errorf("%s: exit 0, want a failure\nstdout:\n%s\nstderr:\n%s", what, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(stderr, "fshealth: ")), "\n")
		if !reflect.DeepEqual(lines, want) {
			t.Errorf("%s: stderr\n%s\nwant exactly\n%s", what, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		noSecrets(what, stdout+stderr)
	}
	state := filepath.Join(dir, "state")
	checkRefused("daemon --config bad.toml", []string{"daemon", "--config", bad, "--state-dir", state, "--metrics-listen", ""}, want)
	checkRefused("check-config --config bad.toml", []string{"check-config", "--config", bad}, want)
	if _, err := os.Stat(filepath.Join(state, "fshealth.pid")); err == nil {
		t.Error("the refused daemon took the state directory's lock file")
	}

	// A file that does not even parse, on a line holding a secret.
	unparsable := filepath.Join(dir, "unparsable.toml")
	writeFile(t, unparsable, "hostname = \"x\"\n[[webhook]]\nurl = \"https://h.example/x\"\nsecret = \"unterminated-secret-99\n", 0o600)
	checkRefused("check-config on a broken line with a secret", []string{"check-config", "--config", unparsable},
		[]string{unparsable + ":4:33: syntax error: invalid value (details withheld: the line may hold a secret)"})

	// A bad flag is refused like a bad key.
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, `hostname = "e2e-host"

[flood]
window = "0s"

[[webhook]]
name = "ops"
url = "https://user:hunter2-url-pass@hooks.example.com/x?token=url-token-42"
secret = "hmac-secret-42"
headers = { Authorization = "Bearer header-secret-42" }
`, 0o600)
	checkRefused("daemon --webhook ftp://x", []string{"daemon", "--config", good, "--state-dir", state, "--webhook", "ftp://x"},
		[]string{`--webhook: not an absolute http(s) URL: "ftp://x"`})

	// The good file passes, with a warning for window = "0s".
	stdout, stderr, code := run(t, "check-config", "--config", good)
	if code != 0 || !strings.HasPrefix(stdout, "configuration OK: "+good+": 2 channels (journal, ops), 1 rules") {
		t.Errorf("check-config on a good file: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "warning:") {
		t.Errorf("check-config: no warning for window = \"0s\":\n%s", stderr)
	}
	noSecrets("check-config", stdout+stderr)
	stdout, stderr, code = run(t, "check-config", "--config", good, "--show")
	if code != 0 || !strings.Contains(stdout, `url = 'https://<redacted>@hooks.example.com/x?token=<redacted>'`) ||
		!strings.Contains(stdout, `secret = '<redacted>'`) || !strings.Contains(stdout, `Authorization = '<redacted>'`) {
		t.Errorf("check-config --show: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	noSecrets("check-config --show", stdout+stderr)
}

// TestSIGHUPReload: SIGHUP switches to a new configuration (a webhook
// pointing elsewhere) while errors keep coming, and no event or alert is
// lost across the switch; a bad configuration is then refused and the
// running one kept.
func TestSIGHUPReload(t *testing.T) {
	im := newFS(t)
	first, second := newReceiver(t), newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	webhookConfig := func(r *receiver) string {
		return baseConfig(im.Mountpoint) + fmt.Sprintf("\n[[webhook]]\nname = \"main\"\nurl = %s\n", tomlString(r.URL()))
	}
	writeFile(t, cfg, webhookConfig(first), 0o600)
	state := filepath.Join(dir, "state")
	startCount, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: before the reload")
	first.waitAccepted(t, 1)

	// Errors keep coming while the configuration is switched.
	writeFile(t, cfg, webhookConfig(second), 0o600)
	const storm = 30
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < storm; i++ {
			if err := im.TriggerError(fmt.Sprint("e2e: during the reload ", i)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(10 * time.Millisecond)
	d.signal(syscall.SIGHUP)
	wg.Wait()
	d.waitLog("configuration reloaded", 1)

	trigger(t, im, "e2e: after the reload")
	const total = storm + 2
	// ext4 updates errors_count a little after it reports the error.
	var counted int
	eventually(t, func() string { return fmt.Sprintf("ext4 counted %d errors, want %d", counted, total) }, func() bool {
		end, err := im.ErrorsCount()
		if err != nil {
			t.Fatal(err)
		}
		counted = end - startCount
		return counted >= total
	})
	if counted != total {
		t.Errorf("ext4 counted %d errors, want %d", counted, total)
	}
	evs := waitErrors(t, state, total)
	if got := errorSum(evs); got != total {
		t.Errorf("history has %d errors, ext4 counted %d", got, total)
	}
	last := evs[len(evs)-1]
	// Every event was alerted (window = "0s"), to the first receiver or,
	// from the reload on, to the second; the last one to the second.
	alerted := func() map[string]bool {
		m := map[string]bool{}
		for _, r := range []*receiver{first, second} {
			for _, a := range r.accepted(t) {
				if a.Event != nil {
					m[a.Event.ID] = true
				}
			}
		}
		return m
	}
	eventually(t, func() string { return fmt.Sprintf("alerted events %v, history %+v", alerted(), evs) }, func() bool {
		m := alerted()
		for _, e := range evs {
			if !m[e.ID] {
				return false
			}
		}
		return true
	})
	reachedSecond := func(eventID string) bool {
		for _, a := range second.accepted(t) {
			if a.Event != nil && a.Event.ID == eventID {
				return true
			}
		}
		return false
	}
	if !reachedSecond(last.ID) {
		t.Errorf("the error after the reload (event %s) did not go to the second receiver", last.ID)
	}
	for _, a := range first.accepted(t) {
		if a.Event != nil && a.Event.ID == last.ID {
			t.Errorf("the error after the reload went to the first receiver")
		}
	}

	// A bad configuration is refused; the running one stays.
	badConfig := baseConfig(im.Mountpoint) + "\n[[webhook]]\nname = \"main\"\nurl = \"ftp://nowhere\"\n"
	writeFile(t, cfg, badConfig, 0o600)
	d.signal(syscall.SIGHUP)
	d.waitLog("NOT reloaded", 1)
	line := strings.Count(badConfig[:strings.Index(badConfig, "url = ")], "\n") + 1
	reason := fmt.Sprintf(`%s:%d: webhook[1].url: not an absolute http(s) URL: "ftp://nowhere"`, cfg, line)
	if log := d.stderr.String(); !strings.Contains(log, reason) && !strings.Contains(log, strings.ReplaceAll(reason, `"`, `\"`)) {
		t.Errorf("the log does not say why the configuration was refused (%s):\n%s", reason, log)
	}
	trigger(t, im, "e2e: after the refused reload")
	evs = waitErrors(t, state, total+1)
	eventually(t, func() string { return "the error after the refused reload did not reach the second receiver" },
		func() bool { return reachedSecond(evs[len(evs)-1].ID) })
	select {
	case <-d.exited:
		t.Fatalf("the daemon exited: %v", d.err)
	default:
	}
	d.stop()
}

// hostileName is a path, relative to a mount point, whose directory names
// contain a newline, quotes, command substitutions and template syntax.
// Running any of it through a shell would create /tmp/pwned-<tok>*.
func hostileName(tok string) string {
	return "evil\n\"q' $(touch /tmp/pwned-" + tok + ")`touch /tmp/pwned-" + tok + "-bt` {{.ID}} \\ ; rm -rf x; dir"
}

// TestHostileFileNameIsHarmless: an error reported against a directory
// whose path holds a newline, quotes, $(...) and backticks reaches a hook
// (FSHEALTH_PATH and the JSON on stdin exactly the path), a webhook
// template using {{json .Event.Path}} (valid JSON, decoding to the path)
// and an e-mail (exact in the attachment, escaped in the text); nothing is
// ever run through a shell and no text output gets a forged line.
func TestHostileFileNameIsHarmless(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	var r [6]byte
	rand.Read(r[:])
	tok := hex.EncodeToString(r[:])
	pwned := []string{"/tmp/pwned-" + tok, "/tmp/pwned-" + tok + "-bt"}
	t.Cleanup(func() {
		for _, p := range pwned {
			os.Remove(p)
		}
	})
	rel := hostileName(tok)
	hostile := filepath.Join(im.Mountpoint, rel)
	// A directory entry pointing at inode 1 (reserved): looking it up
	// reports EUCLEAN against the directory holding it.
	corruptDir(t, im, hostile)

	wh := newReceiver(t)
	hooks := newHookRecorder(t)
	smtpd := newSMTPServer(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[hooks]
dir = %s

[[webhook]]
name = "chat"
url = %s
template = '''{"path": {{json .Event.Path}}, "id": {{json .ID}}, "text": {{printf "%%s: %%s" .Host .Summary | json}}}'''

[[smtp]]
name = "mail"
host = "127.0.0.1"
port = %d
tls = "none"
from = "fshealth@e2e.test"
to = ["ops@e2e.test"]
`, tomlString(hooks.Dir), tomlString(wh.URL()), smtpd.port()), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)

	// The first alert goes out at once, the path pending; the path is
	// found on the device and added to the history; the next error about
	// the directory is alerted with it.
	if _, err := os.Lstat(filepath.Join(hostile, "bad_link")); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link: %v, want EUCLEAN", err)
	}
	var evs []event
	eventually(t, func() string { return fmt.Sprintf("history %+v, want one event with the path %q", evs, hostile) },
		func() bool { evs = events(t, state); return len(evs) == 1 && evs[0].Path == hostile })
	first := wh.waitAccepted(t, 1)[0]
	if _, err := os.Lstat(filepath.Join(hostile, "bad_link")); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link again: %v, want EUCLEAN", err)
	}
	waitErrors(t, state, 2)
	var req request
	for _, q := range wh.waitAccepted(t, 2) {
		if q.Header.Get("X-Fshealth-Alert-Id") != first.Header.Get("X-Fshealth-Alert-Id") {
			req = q
		}
	}
	if !json.Valid(req.Body) {
		t.Fatalf("the template's body is not valid JSON: %q", req.Body)
	}
	var body struct{ Path, ID, Text string }
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Path != hostile {
		t.Errorf("webhook template path %q, want %q", body.Path, hostile)
	}
	if body.ID != req.Header.Get("X-Fshealth-Alert-Id") {
		t.Errorf("webhook template id %q, header %q", body.ID, req.Header.Get("X-Fshealth-Alert-Id"))
	}

	runs := hooks.waitRuns(t, 2)
	run, ok := runs[body.ID]
	if !ok {
		t.Fatalf("no hook run for alert %s: %v", body.ID, slices.Collect(maps.Keys(runs)))
	}
	if got := run.Env["FSHEALTH_PATH"]; got != hostile {
		t.Errorf("hook FSHEALTH_PATH %q, want %q", got, hostile)
	}
	var a alertBody
	if err := json.Unmarshal(run.Stdin, &a); err != nil {
		t.Fatalf("hook stdin: %v: %q", err, run.Stdin)
	}
	if a.Event == nil || a.Event.Path != hostile {
		t.Errorf("hook stdin event %+v, want path %q", a.Event, hostile)
	}

	// The e-mail carries the exact path in its JSON attachment.
	var msgs []smtpMessage
	eventually(t, func() string { return "fewer than two e-mails arrived" }, func() bool { msgs = smtpd.messages(); return len(msgs) >= 2 })
	var m parsedMail
	var ma alertBody
	for _, msg := range msgs {
		m = parseMail(t, msg.Data)
		if err := json.Unmarshal(m.JSON, &ma); err != nil {
			t.Fatal(err)
		}
		if ma.ID == body.ID {
			break
		}
	}
	if ma.ID != body.ID || ma.Event == nil || ma.Event.Path != hostile {
		t.Errorf("e-mail attachment: alert %s event %+v, want alert %s with path %q", ma.ID, ma.Event, body.ID, hostile)
	}

	// The text outputs escape the path: no line of the log, the events
	// table or the e-mail's text starts with what follows the newline.
	after := rel[strings.IndexByte(rel, '\n')+1:]
	table := mustRun(t, "events", "--state-dir", state)
	for what, out := range map[string]string{"the daemon's log": d.stderr.String(), "fshealth events": table,
		"the e-mail's text": m.Text, "the e-mail's subject": m.Subject} {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, after[:5]) {
				t.Errorf("%s has a line forged by the file name: %q", what, l)
			}
		}
	}
	if n := strings.Count(strings.TrimRight(table, "\n"), "\n"); n != 2 {
		t.Errorf("fshealth events printed %d lines after the header for two events:\n%s", n, table)
	}
	d.stop()
	for _, p := range pwned {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists: the file name was run through a shell", p)
		}
	}
}

// TestHostileMountPoint: a file system mounted on a directory whose name
// holds a newline, quotes, $(...) and backticks is watched, and its mount
// point reaches the history, hooks and metrics exactly (and the metrics
// still pass promtool), harmlessly.
func TestHostileMountPoint(t *testing.T) {
	im := newFS(t)
	var r [6]byte
	rand.Read(r[:])
	tok := hex.EncodeToString(r[:])
	pwned := []string{"/tmp/pwned-" + tok, "/tmp/pwned-" + tok + "-bt"}
	t.Cleanup(func() {
		for _, p := range pwned {
			os.Remove(p)
		}
	})
	mnt := filepath.Join(t.TempDir(), hostileName(tok))
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	hooks := newHookRecorder(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(mnt)+fmt.Sprintf("\n[hooks]\ndir = %s\n", tomlString(hooks.Dir)), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: hostile mount point")
	ev := waitErrors(t, state, 1)[0]
	if !slices.Equal(ev.Mountpoints, []string{mnt}) {
		t.Errorf("history mount points %q, want [%q]", ev.Mountpoints, mnt)
	}
	if got := events(t, state, "--fs", mnt); len(got) != 1 {
		t.Errorf("events --fs <hostile mount point>: %d events, want 1", len(got))
	}
	for _, run := range hooks.waitRuns(t, 1) {
		if got := run.Env["FSHEALTH_MOUNTPOINT"]; got != mnt {
			t.Errorf("hook FSHEALTH_MOUNTPOINT %q, want %q", got, mnt)
		}
	}
	var body []byte
	eventually(t, func() string { return fmt.Sprintf("no error counted in the metrics:\n%s", body) }, func() bool {
		resp, err := http.Get("http://" + d.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		// The counters are there at 0 from the start: wait for the error's.
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, `fshealth_filesystem_errors_total{device="`+im.Dev+`",errno="EUCLEAN",`) && strings.HasSuffix(l, "} 1") {
				return true
			}
		}
		return false
	})
	if !bytes.Contains(body, []byte(`mountpoint="`+strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(mnt, `\`, `\\`), "\n", `\n`), `"`, `\"`)+`"`)) {
		t.Errorf("metrics do not carry the mount point, escaped:\n%s", body)
	}
	checkMetrics(t, body, false)
	// fshealth check names it escaped, on its one status line.
	if out, code := check(t, state); code != 2 || !strings.Contains(out, `evil\n\"q'`) {
		t.Errorf("check: exit %d: %q", code, out)
	}
	if out, code := check(t, state, "--format", "npd"); code != 1 || !strings.Contains(out, `evil\n`) {
		t.Errorf("check --format npd: exit %d: %q", code, out)
	}
	d.stop()
	for _, p := range pwned {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists: the mount point was run through a shell", p)
		}
	}
}

// corruptDir makes the directory dir on im and adds to it an entry
// "bad_link" pointing at inode 1, with debugfs on the unmounted image, and
// mounts it again.
func corruptDir(t *testing.T, im *loopfs.Image, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	ino := st.Ino
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Debugfs(fmt.Sprintf("ln <1> <%d>/bad_link", ino)); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
}

// TestEventsAndStatus: `fshealth events` (table and JSON, --since, --fs by
// mount point, UUID and device) and `fshealth status` while the daemon
// runs, and status after it stopped.
func TestEventsAndStatus(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)

	// Before any error.
	if _, code := runStatus(t, "--state-dir", state); code != 0 {
		t.Errorf("status, healthy and running: exit %d, want 0", code)
	}
	s := getStatus(t, state)
	if !s.Daemon.Running || s.Daemon.PID != d.pid() || s.Daemon.StateDir != state {
		t.Errorf("status daemon %+v, want running, pid %d, state %s", s.Daemon, d.pid(), state)
	}
	if len(s.Filesystems) != 1 || s.Filesystems[0].Device != im.Dev || !s.Filesystems[0].Watched || s.Filesystems[0].Health != "ok" {
		t.Errorf("status file systems %+v, want only %s, watched, ok", s.Filesystems, im.Dev)
	}
	if _, stderr, code := run(t, "events", "--state-dir", state); code != 0 || !strings.Contains(stderr, "no events recorded") {
		t.Errorf("events with no events: exit %d, stderr %q", code, stderr)
	}

	trigger(t, im, "e2e: first")
	waitErrors(t, state, 1)
	trigger(t, im, "e2e: second")
	evs := waitErrors(t, state, 2)
	if len(evs) != 2 || evs[0].ID == evs[1].ID {
		t.Fatalf("events %+v, want two", evs)
	}

	// JSON and filters.
	count := func(args ...string) int { return len(events(t, state, args...)) }
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--since", "1h"}, 2},
		{[]string{"--since", "1d"}, 2},
		{[]string{"--since", evs[1].Time}, 1},
		{[]string{"--since", "2999-01-01"}, 0},
		{[]string{"--fs", im.Mountpoint}, 2},
		{[]string{"--fs", im.Mountpoint + "/"}, 2},
		{[]string{"--fs", uuid}, 2},
		{[]string{"--fs", im.Dev}, 2},
		{[]string{"--fs", "/nonexistent"}, 0},
		{[]string{"--fs", im.Dev, "--since", evs[1].Time}, 1},
		{[]string{"--limit", "1"}, 1},
	} {
		if got := count(c.args...); got != c.want {
			t.Errorf("events --json %v: %d events, want %d", c.args, got, c.want)
		}
	}
	if got := events(t, state, "--since", evs[1].Time); len(got) == 1 && got[0].ID != evs[1].ID {
		t.Errorf("events --since the second's time gave %s, want %s", got[0].ID, evs[1].ID)
	}
	if _, stderr, code := run(t, "events", "--state-dir", state, "--since", "yesterday-ish"); code == 0 || !strings.Contains(stderr, "--since") {
		t.Errorf("events --since garbage: exit %d, stderr %q", code, stderr)
	}
	// A limit that may have left older events out says so; one that
	// showed fewer does not; a negative one is refused.
	if out, stderr, code := run(t, "events", "--state-dir", state, "--json", "--limit", "1"); code != 0 || strings.Count(out, "\n") != 1 ||
		!strings.Contains(stderr, "the newest 1 events are shown; older ones may be left out") {
		t.Errorf("events --limit 1: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := run(t, "events", "--state-dir", state, "--limit", "5"); code != 0 || stderr != "" {
		t.Errorf("events --limit 5 with 2 events: exit %d, stderr %q, want nothing said", code, stderr)
	}
	if _, stderr, code := run(t, "events", "--state-dir", state, "--limit", "-1"); code == 0 || !strings.Contains(stderr, "--limit -1") {
		t.Errorf("events --limit -1: exit %d, stderr %q", code, stderr)
	}

	// The table.
	table := mustRun(t, "events", "--state-dir", state)
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if len(lines) != 3 || !reflect.DeepEqual(strings.Fields(lines[0]), []string{"TIME", "DEVICE", "MOUNTPOINT", "ERROR", "COUNT", "INODE", "PATH"}) {
		t.Fatalf("events table:\n%s", table)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 8 || f[2] != im.Dev || f[3] != im.Mountpoint || f[4] != "EUCLEAN" || f[5] != "1" || f[6] != "-" || f[7] != "-" {
			t.Errorf("events table row %q", l)
		}
	}
	if _, stderr, _ := run(t, "events", "--state-dir", state, "--fs", "/nonexistent"); !strings.Contains(stderr, "no events recorded on /nonexistent") {
		t.Errorf("events --fs /nonexistent: stderr %q", stderr)
	}

	// Status while running.
	s = getStatus(t, state)
	if !s.Daemon.Running || s.Daemon.PID != d.pid() {
		t.Errorf("status daemon %+v, want running with pid %d", s.Daemon, d.pid())
	}
	if len(s.Filesystems) != 1 {
		t.Fatalf("status file systems %+v", s.Filesystems)
	}
	f := s.Filesystems[0]
	if f.Device != im.Dev || f.UUID != uuid || f.FSType != "ext4" || !slices.Contains(f.Mountpoints, im.Mountpoint) || !f.Watched ||
		f.Health == "ok" || f.Errors != 2 || f.Events != 2 || f.LastErrno != "EUCLEAN" || f.LastEventID != evs[1].ID ||
		f.FirstError == nil || f.LastError == nil {
		t.Errorf("status file system %+v, want %s unhealthy with 2 errors, last %s", f, im.Dev, evs[1].ID)
	}
	text, code := runStatus(t, "--state-dir", state)
	if code != 1 {
		t.Errorf("status with an unhealthy file system: exit %d, want 1", code)
	}
	if !strings.Contains(text, fmt.Sprintf("daemon: running (pid %d)", d.pid())) || !regexp.MustCompile(regexp.QuoteMeta(im.Dev)+`\s+`+
		regexp.QuoteMeta(im.Mountpoint)+`\s+ext4\s+ERRORS\s+2\s`).MatchString(text) {
		t.Errorf("status:\n%s", text)
	}

	d.stop()
	s = getStatus(t, state)
	if s.Daemon.Running || s.Daemon.PID != 0 {
		t.Errorf("after the daemon stopped, status says %+v", s.Daemon)
	}
	if len(s.Filesystems) != 1 || s.Filesystems[0].Errors != 2 {
		t.Errorf("after the daemon stopped, status file systems %+v", s.Filesystems)
	}
	if text, code := runStatus(t, "--state-dir", state); !strings.Contains(text, "daemon: NOT running") || code != 1 {
		t.Errorf("status after stop (exit %d, want 1: still unhealthy):\n%s", code, text)
	}

	if got := count(); got != 2 {
		t.Errorf("after the daemon stopped, events shows %d events, want 2", got)
	}
}

// TestTestAlert: `fshealth test-alert` sends a marked test alert through
// every channel and says ok per channel; a channel whose receiver is down
// is FAILED and the exit status is not zero.
func TestTestAlert(t *testing.T) {
	wh := newReceiver(t)
	hooks := newHookRecorder(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	channels := fmt.Sprintf(`hostname = "e2e-host"

[journal]
mode = "stderr"

[hooks]
dir = %s

[[webhook]]
name = "hq"
url = %s
`, tomlString(hooks.Dir), tomlString(wh.URL()))
	writeFile(t, cfg, channels, 0o600)
	stdout, stderr, code := run(t, "test-alert", "--config", cfg, "--timeout", "20s")
	if code != 0 {
		t.Errorf("test-alert: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, ch := range []string{"hooks", "hq", "journal"} {
		if !regexp.MustCompile(`(?m)^` + ch + `\s+ok$`).MatchString(stdout) {
			t.Errorf("test-alert does not report %s ok:\n%s", ch, stdout)
		}
	}
	reqs := wh.waitAccepted(t, 1)
	var a alertBody
	if err := json.Unmarshal(reqs[0].Body, &a); err != nil {
		t.Fatal(err)
	}
	if !a.Test || a.Type != "test" || a.Host != "e2e-host" || !strings.Contains(a.Summary, "TEST") || reqs[0].Header.Get("X-Fshealth-Alert-Id") != a.ID {
		t.Errorf("test alert %+v", a)
	}
	schema := notifytest.AlertSchema(t)
	notifytest.CheckAlertJSON(t, schema, "test alert's webhook body", reqs[0].Body)
	runs := hooks.waitRuns(t, 1)
	notifytest.CheckAlertJSON(t, schema, "test alert on the hook's stdin", runs[a.ID].Stdin)
	if r, ok := runs[a.ID]; !ok || r.Env["FSHEALTH_TEST"] != "1" || r.Env["FSHEALTH_ALERT_TYPE"] != "test" {
		t.Errorf("hook runs %v, want the test alert %s with FSHEALTH_TEST=1", runs, a.ID)
	}

	// One receiver down.
	writeFile(t, cfg, channels+fmt.Sprintf("\n[[webhook]]\nname = \"down\"\nurl = %s\n", tomlString("http://"+deadAddr(t)+"/x")), 0o600)
	stdout, stderr, code = run(t, "test-alert", "--config", cfg, "--timeout", "20s")
	if code == 0 {
		t.Errorf("test-alert with a receiver down: exit 0\nstdout:\n%s", stdout)
	}
	if !regexp.MustCompile(`(?m)^down\s+FAILED: .*connection refused`).MatchString(stdout) {
		t.Errorf("test-alert does not report the down channel FAILED:\n%s", stdout)
	}
	for _, ch := range []string{"hooks", "hq", "journal"} {
		if !regexp.MustCompile(`(?m)^` + ch + `\s+ok$`).MatchString(stdout) {
			t.Errorf("test-alert does not report %s ok with another channel down:\n%s", ch, stdout)
		}
	}
	if !strings.Contains(stderr, "1 of 4 channels failed") {
		t.Errorf("test-alert stderr %q", stderr)
	}
}

// TestMetrics: after an error, /metrics counts it for the file system and
// passes `promtool check metrics` (which needs Debian package prometheus).
func TestMetrics(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	wh := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf("\n[[webhook]]\nname = \"hq\"\nurl = %s\n", tomlString(wh.URL())), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	if d.metrics == "" {
		t.Fatalf("the daemon did not log its metrics address:\n%s", d.stderr.String())
	}
	fsLabels := fmt.Sprintf(`device=%q,fstype="ext4",mountpoint=%q,uuid=%q`, im.Dev, im.Mountpoint, uuid)
	// A watched file system without errors is healthy from the start.
	scrape(t, d, []string{`fshealth_filesystem_healthy{` + fsLabels + `} 1`}, nil)

	trigger(t, im, "e2e: metrics")
	waitErrors(t, state, 1)
	wh.waitAccepted(t, 1)
	body := scrape(t, d, []string{
		`fshealth_filesystem_errors_total{` + fsLabels[:strings.Index(fsLabels, ",fstype")] + `,errno="EUCLEAN",` + fsLabels[strings.Index(fsLabels, "fstype"):] + `} 1`,
		`fshealth_filesystem_healthy{` + fsLabels + `} 0`,
		`fshealth_filesystems_watched 1`,
		`fshealth_delivery_attempts_total{channel="hq"} 1`,
		`fshealth_delivery_backlog{channel="hq"} 0`,
	}, nil)
	d.stop()
	checkMetrics(t, body, true)

	// After a restart the file system is still unhealthy, with the time
	// of its last error.
	d = startDaemon(t, cfg, state)
	scrape(t, d, []string{`fshealth_filesystem_healthy{` + fsLabels + `} 0`},
		[]string{`fshealth_filesystem_last_error_timestamp_seconds{` + fsLabels + `} `})
	d.stop()
}

// scrape waits until d's /metrics has every line of lines and a line
// starting with each of prefixes, and returns it.
func scrape(t *testing.T, d *daemon, lines, prefixes []string) []byte {
	t.Helper()
	var body []byte
	missing := func() []string {
		var m []string
		got := strings.Split(string(body), "\n")
		for _, w := range lines {
			if !slices.Contains(got, w) {
				m = append(m, w)
			}
		}
		for _, p := range prefixes {
			if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, p) }) {
				m = append(m, p+"...")
			}
		}
		return m
	}
	eventually(t, func() string { return fmt.Sprintf("metrics lack %q:\n%s", missing(), body) }, func() bool {
		resp, err := http.Get("http://" + d.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && len(missing()) == 0
	})
	return body
}

// checkMetrics lints a scrape with client_golang's promlint (the linter
// `promtool check metrics` runs) and with promtool itself: if required,
// promtool must be installed (Debian package prometheus); otherwise it is
// used when it is.
func checkMetrics(t *testing.T, body []byte, require bool) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
	if require {
		testutil.RequireCommand(t, "promtool", "prometheus")
	}
	promtool, err := loopfs.FindTool("promtool")
	if err != nil {
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestSystemdUnitVerifies: dist/fshealth.service passes systemd-analyze
// verify with its ExecStart and ExecReload pointing at the binary under
// test, and needs no program but fshealth (no /bin/kill).
func TestSystemdUnitVerifies(t *testing.T) {
	unit := shippedUnit(t)
	for _, want := range []string{"Type=notify", "WatchdogSec=30s", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ExecStart=/usr/local/bin/fshealth daemon", "ExecReload=/usr/local/bin/fshealth reload --pid $MAINPID",
		"SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM", "IPAddressDeny=any", "EnvironmentFile=-/etc/default/fshealth"} {
		if !bytes.Contains(unit, []byte("\n"+want+"\n")) {
			t.Errorf("the unit lacks the line %s", want)
		}
	}
	if n := regexp.MustCompile(`(?m)^Exec[A-Za-z]*=(.*)$`).FindAllSubmatch(unit, -1); len(n) != 2 {
		t.Errorf("the unit has %d Exec*= lines, want ExecStart and ExecReload only", len(n))
	} else {
		for _, m := range n {
			if !bytes.HasPrefix(m[1], []byte("/usr/local/bin/fshealth ")) {
				t.Errorf("the unit runs %s: only fshealth itself may be needed", m[1])
			}
		}
	}
	path := installUnit(t, t.TempDir())
	out, err := systemdAnalyze(t, "verify", path)
	if err != nil || strings.Contains(out, "fshealth") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	} else if len(out) > 0 {
		t.Logf("systemd-analyze verify (about other units):\n%s", out)
	}
}

// TestSIGTERMWithDeliveriesInFlight: SIGTERM while a webhook receiver
// never answers and a hook never ends still stops the daemon with status 0,
// and the hook does not outlive it; the undelivered alerts stay pending.
func TestSIGTERMWithDeliveriesInFlight(t *testing.T) {
	im := newFS(t)
	stuck := make(chan struct{})
	var arrived sync.Once
	requestArrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Do(func() { close(requestArrived) })
		select { // never answers while the daemon is connected
		case <-r.Context().Done():
		case <-stuck:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stuck) }) // runs before the server's Close
	base := t.TempDir()
	hooksDir, out := filepath.Join(base, "hooks.d"), filepath.Join(base, "out")
	for _, d := range []string{hooksDir, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o755)
	}
	writeFile(t, filepath.Join(hooksDir, "sleep"), fmt.Sprintf(`#!/bin/sh
echo $$ > '%[1]s/pid.tmp'
mv '%[1]s/pid.tmp' '%[1]s/pid'
exec sleep 600
`, out), 0o755)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[hooks]
dir = %s
timeout = "10m"

[[webhook]]
name = "stuck"
url = %s
timeout = "10m"
`, tomlString(hooksDir), tomlString(srv.URL)), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: in flight")
	waitErrors(t, state, 1)

	var pid int
	eventually(t, func() string { return "the hook did not start" }, func() bool {
		b, err := os.ReadFile(filepath.Join(out, "pid"))
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	// Should the daemon leave the hook behind, do not leave it running.
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	select {
	case <-requestArrived:
	case <-time.After(wait):
		t.Fatal("the webhook request did not arrive")
	}

	d.stop()
	eventually(t, func() string { return fmt.Sprintf("the hook (pid %d) outlived the daemon", pid) }, func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
	s := getStatus(t, state)
	for _, ch := range []string{"stuck", "hooks"} {
		if b := s.channelBacklog(ch); b.Pending != 1 {
			t.Errorf("after SIGTERM channel %s has %d pending, want 1 (%+v)", ch, b.Pending, s.Deliveries)
		}
	}
}

// TestSignals: SIGTERM and SIGINT stop the daemon with status 0 (telling
// the service manager STOPPING=1 and releasing the state directory), a
// second daemon on a state directory in use is refused, and a SIGHUP while
// the daemon starts up does not kill it.
func TestSignals(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint), 0o600)
	state := filepath.Join(dir, "state")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		d := startDaemon(t, cfg, state)
		_, stderr, code := run(t, "daemon", "--config", cfg, "--state-dir", state, "--metrics-listen", "")
		if code == 0 || !strings.Contains(stderr, "another fshealth daemon (pid "+strconv.Itoa(d.pid())+")") {
			t.Errorf("a second daemon on the same state directory: exit %d, stderr %q", code, stderr)
		}
		d.signal(sig)
		if err := d.waitExit(); err != nil {
			t.Errorf("after %v the daemon exited with %v, want status 0:\n%s", sig, err, d.stderr.String())
		}
		timeout := time.After(wait)
	notes:
		for {
			select {
			case msg := <-d.notes:
				if strings.Contains(msg, "STOPPING=1") {
					break notes
				}
			case <-timeout:
				t.Errorf("after %v: no STOPPING=1 on the notify socket", sig)
				break notes
			}
		}
		if s := getStatus(t, state); s.Daemon.Running {
			t.Errorf("after %v status says %+v", sig, s.Daemon)
		}
	}

	// A SIGHUP while the daemon starts up (right after it has read its
	// configuration, as its warning about window = "0s" shows) must not
	// kill it: it reloads once ready. (systemd would not restart a
	// service a SIGHUP ended.)
	d := startDaemonWith(t, func(d *daemon) {
		deadline := time.Now().Add(wait)
		for !strings.Contains(d.stderr.String(), "configuration: ") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		d.signal(syscall.SIGHUP)
	}, cfg, state)
	d.waitLog("configuration reloaded", 1)
	d.stop()
}

// TestActionTimeout: a recovery action is stopped when its own timeout
// passes, and the outcome says so.
func TestActionTimeout(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+`
[[rule]]
name = "slow"
actions = [ { name = "command", argv = ["/bin/sleep", "60"], timeout = "1s" } ]
`, 0o644)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "slow action")
	var outcome, st string
	eventually(t, func() string { return fmt.Sprintf("action state %q, outcome %q", st, outcome) }, func() bool {
		out := statusOut(t, "--json", "--state-dir", state)
		var s struct {
			Filesystems []struct {
				Device     string `json:"device"`
				LastAction *struct {
					State   string `json:"state"`
					Outcome string `json:"outcome"`
				} `json:"last_action"`
			} `json:"filesystems"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		for _, f := range s.Filesystems {
			if f.Device == im.Dev && f.LastAction != nil {
				st, outcome = f.LastAction.State, f.LastAction.Outcome
			}
		}
		return st == "failed"
	})
	if !strings.Contains(outcome, "timed out") {
		t.Errorf("outcome %q, want it to say the action timed out", outcome)
	}
	d.stop()
	// The outcome is logged once (it was twice: by the runner and the
	// daemon).
	if n := strings.Count(d.stderr.String(), `msg="recovery action"`); n != 1 {
		t.Errorf("the action's outcome is logged %d times, want once:\n%s", n, d.stderr.String())
	}
}

// TestActionsOfFilesystemsRunApart: a long action on one file system does
// not hold up the actions of another.
func TestActionsOfFilesystemsRunApart(t *testing.T) {
	testutil.CheckNoLeaks(t) // once: it must run after both images' cleanups
	slow, quick := testutil.NewExt4(t, 0), testutil.NewExt4(t, 0)
	dir := t.TempDir()
	done, started := filepath.Join(dir, "quick-done"), filepath.Join(dir, "slow-started")
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, strings.Replace(baseConfig(slow.Mountpoint), "paths = ["+tomlString(slow.Mountpoint)+"]",
		"paths = ["+tomlString(slow.Mountpoint)+", "+tomlString(quick.Mountpoint)+"]", 1)+fmt.Sprintf(`
[[rule]]
name = "slow"
match = { mountpoint = [%s] }
actions = [ { name = "command", argv = ["/bin/sh", "-c", "/usr/bin/touch \"$0\" && exec /bin/sleep 60", %s], timeout = "30s" } ]

[[rule]]
name = "quick"
match = { mountpoint = [%s] }
actions = [ { name = "command", argv = ["/usr/bin/touch", %s] } ]
`, tomlString(slow.Mountpoint), tomlString(started), tomlString(quick.Mountpoint), tomlString(done)), 0o644)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, slow, "slow")
	waitErrors(t, state, 1)
	eventually(t, func() string { return "the slow action did not start" }, func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	trigger(t, quick, "quick")
	start := time.Now()
	eventually(t, func() string { return "the quick file system's action did not run while the slow one's ran" }, func() bool {
		_, err := os.Stat(done)
		return err == nil
	})
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the quick action ran %v after its error: it waited for the slow one", took)
	}
	d.stop()
}
