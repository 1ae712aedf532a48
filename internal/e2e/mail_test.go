package e2e_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// alertMessages returns the messages that carry an alert (not the MTA's
// reports to the sender, which quote them) and the alert ids.
func alertMessages(msgs [][]byte) (out [][]byte, ids []string) {
	for _, m := range msgs {
		head, _, _ := strings.Cut(string(m), "\r\n\r\n")
		for _, l := range strings.Split(head, "\r\n") {
			if id, ok := strings.CutPrefix(l, "X-Fshealth-Alert-Id: "); ok {
				out, ids = append(out, m), append(ids, id)
			}
		}
	}
	return out, ids
}

// isAlert reports whether m carries an alert.
func isAlert(m []byte) bool {
	msgs, _ := alertMessages([][]byte{m})
	return len(msgs) == 1
}

// TestMailTestAlert: `fshealth test-alert` through a test-local exim4, as
// an SMTP server with a self-signed certificate (starttls-opportunistic)
// and through its sendmail interface to root; test-alert says that the
// SMTP session was encrypted but not authenticated. check-config names a
// missing sendmail program.
func TestMailTestAlert(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, _ := testutil.SelfSignedCert(t, []string{"fshealth-test.invalid"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	e := testutil.StartExim(t, testutil.EximOptions{Daemon: true, CertPEM: certPEM, KeyPEM: keyPEM,
		Aliases: map[string]string{"root": "admin"}})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	mail := func(sendmail string) string {
		return fmt.Sprintf(`hostname = "e2e-host"

[journal]
mode = "stderr"

[[mail]]
name = "relay"
host = "127.0.0.1"
port = %d
tls = "starttls-opportunistic"
from = "fshealth@e2e.test"
to = ["ops@e2e.test"]

[[mail]]
name = "local"
via = "sendmail"
sendmail = %s
from = "fshealth"
to = "root"
`, e.Port, tomlString(sendmail))
	}
	writeFile(t, cfg, mail(e.Sendmail), 0o600)

	stdout, stderr, code := run(t, "check-config", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "relay, local") {
		t.Fatalf("check-config: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "test-alert", "--config", cfg)
	if code != 0 {
		t.Fatalf("test-alert: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, ch := range []string{"relay", "local"} {
		if !strings.Contains(stdout, fmt.Sprintf("%-20s ok\n", ch)) {
			t.Errorf("test-alert does not say %s is ok:\n%s", ch, stdout)
		}
	}
	notice := "mail session encrypted but not authenticated"
	if strings.Count(stderr, notice) != 1 || !strings.Contains(stderr, fmt.Sprintf("server=127.0.0.1:%d", e.Port)) ||
		!strings.Contains(stderr, "cannot be verified") {
		t.Errorf("test-alert's output does not say once that the session was not authenticated:\n%s", stderr)
	}
	msgs, ids := alertMessages(e.WaitMatching(t, 2, isAlert))
	if len(msgs) != 2 {
		t.Fatalf("exim has %d alerts, want 2:\n%s", len(msgs), e.Log("main"))
	}
	for i, m := range msgs {
		if id := ids[i]; !strings.HasPrefix(id, "test-") {
			t.Errorf("alert %s is not a test alert", id)
		}
		sm := testutil.CheckMessageStrict(t, m)
		if !strings.Contains(sm.Subject, "TEST") || !strings.Contains(sm.Subject, "e2e-host") {
			t.Errorf("subject %q", sm.Subject)
		}
	}
	if !strings.Contains(e.Log("main"), "=> admin <root@fshealth-test.invalid>") {
		t.Errorf("root's test alert did not reach admin:\n%s", e.Log("main"))
	}

	writeFile(t, cfg, mail("/nonexistent/sendmail"), 0o600)
	stdout, stderr, code = run(t, "check-config", "--config", cfg)
	want := `mail[2].sendmail: "/nonexistent/sendmail" does not exist`
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("check-config with a missing sendmail: exit %d, want an error with %q\nstdout:\n%s\nstderr:\n%s", code, want, stdout, stderr)
	}
}

// TestMailSendmailRetried: while the local MTA refuses the message, the
// daemon keeps the alert in its outbox and retries; once the MTA takes it,
// it arrives, once.
func TestMailSendmailRetried(t *testing.T) {
	im := newFS(t)
	e := testutil.StartExim(t, testutil.EximOptions{Aliases: map[string]string{"root": "admin"}})
	e.SetFailure(t, "temp")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[mail]]
name = "local"
via = "sendmail"
sendmail = %s
from = "fshealth"
to = "root"
`, tomlString(e.Sendmail)), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)

	trigger(t, im, "e2e: mail through sendmail")
	waitErrors(t, state, 1)
	d.waitLog("alert delivery failed; will retry", 2)
	b := getStatus(t, state).channelBacklog("local")
	if b.Pending != 1 || !strings.Contains(b.LastError, "exited with status 1") {
		t.Errorf("backlog %+v, want one pending with the exit status", b)
	}
	if msgs, _ := alertMessages(e.Messages(t)); len(msgs) != 0 {
		t.Fatalf("%d alerts delivered while the MTA refused", len(msgs))
	}

	e.SetFailure(t, "")
	msgs, _ := alertMessages(e.WaitMatching(t, 1, isAlert))
	if len(msgs) != 1 {
		t.Fatalf("exim has %d alerts, want 1", len(msgs))
	}
	for _, m := range msgs {
		sm := testutil.CheckMessageStrict(t, m)
		if !strings.Contains(sm.Subject, im.Dev) {
			t.Errorf("subject %q does not name %s", sm.Subject, im.Dev)
		}
	}
	eventually(t, func() string { return fmt.Sprintf("backlog %+v", getStatus(t, state).channelBacklog("local")) },
		func() bool { return getStatus(t, state).channelBacklog("local").Pending == 0 })
	d.stop()
	// Only alerts about this error count: a busy machine may also get one
	// about kernel log records lost to other tests' floods.
	msgs, _ = alertMessages(e.Messages(t))
	n := 0
	for _, m := range msgs {
		if strings.Contains(testutil.CheckMessageStrict(t, m).Subject, im.Dev) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d alerts about %s delivered, want 1", n, im.Dev)
	}
}
