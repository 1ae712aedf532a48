package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/notify/alertmanager"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/testutil"
)

// alertmanagerConfig routes everything to a receiver that notifies nobody.
const alertmanagerConfig = `route:
  receiver: "null"
  group_wait: 0s
receivers:
  - name: "null"
`

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = testutil.SyncBuffer

// startAlertmanager runs a single-node Alertmanager on a free loopback port
// with its storage in a temporary directory, waits until it is ready and
// returns its base URL and version. It is killed when the test ends.
func startAlertmanager(t *testing.T) (baseURL, version string) {
	t.Helper()
	testutil.RequireCommand(t, "prometheus-alertmanager", "prometheus-alertmanager")
	bin, err := loopfs.FindTool("prometheus-alertmanager")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", bin, err, out)
	}
	version = string(bytes.SplitN(bytes.TrimSpace(out), []byte("\n"), 2)[0])

	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The port is free when we look; should another process take it before
	// Alertmanager binds, try again with another one.
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()

		var log syncBuffer
		cmd := exec.Command(bin,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--cluster.listen-address=", // single node: no gossip port
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = &log, &log
		// Die with the test binary even if it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}

		base := "http://" + addr
		err = waitReady(base, exited, 30*time.Second)
		if err == nil {
			t.Cleanup(stop)
			return base, version
		}
		stop()
		if attempt == 3 {
			t.Fatalf("Alertmanager (%s) did not become ready: %v\n%s", version, err, log.String())
		}
		t.Logf("Alertmanager attempt %d: %v; retrying", attempt, err)
	}
}

// waitReady polls base/-/ready until it answers 200, the process exits or
// the time is up.
func waitReady(base string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for /-/ready")
		}
	}
}

// gettableAlert is an alert as GET /api/v2/alerts returns it.
type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
	Fingerprint string `json:"fingerprint"`
}

// activeAlerts returns the active alerts of the Alertmanager at base.
func activeAlerts(t *testing.T, base string) []gettableAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: %s: %s", resp.Status, body)
	}
	var as []gettableAlert
	if err := json.Unmarshal(body, &as); err != nil {
		t.Fatalf("GET /api/v2/alerts: %v: %s", err, body)
	}
	return as
}

// find returns the active alerts whose labels are exactly labels.
func find(as []gettableAlert, labels map[string]string) []gettableAlert {
	var out []gettableAlert
	for _, a := range as {
		if equalMaps(a.Labels, labels) {
			out = append(out, a)
		}
	}
	return out
}

// waitFor polls the active alerts until cond holds for the ones with labels.
func waitFor(t *testing.T, base string, labels map[string]string, what string, cond func([]gettableAlert) bool) []gettableAlert {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := find(activeAlerts(t, base), labels)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: alerts with labels %v: %+v", what, labels, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealAlertmanager(t *testing.T) {
	base, version := startAlertmanager(t)
	t.Logf("testing with %s", version)

	n := newNotifier(t, alertmanager.Config{
		Name:           "am-real",
		URLs:           []string{base, notifytest.DeadURL(t)}, // one HA peer down
		ResendInterval: time.Minute,
		ExtraLabels:    map[string]string{"env": "test"},
		GeneratorURL:   "http://fshealth.example/status",
	})
	ctx := context.Background()

	// The first alert of an incident, on a hostile mount point.
	a := notifytest.Alert(alert.TypeError)
	a.Filesystem.Mountpoints = []string{hostileMount, "/srv/data"}
	if err := n.Send(ctx, a); err != nil {
		t.Fatal(err)
	}
	labels := n.Labels(a)
	got := waitFor(t, base, labels, "after the first alert", func(g []gettableAlert) bool { return len(g) == 1 })[0]
	if got.Status.State != "active" {
		t.Errorf("state %q, want active", got.Status.State)
	}
	for k, v := range map[string]string{"alertname": "FilesystemError", "instance": "web1.example.org", "device": "/dev/loop7",
		"fstype": "ext4", "uuid": a.Filesystem.UUID, "errno": "EUCLEAN", "severity": "critical", "env": "test"} {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if mp := got.Labels["mountpoint"]; mp != `/mnt/evil\r\nBcc: x@y \"$(reboot)\"\xff` {
		t.Errorf("mountpoint label %q", mp)
	}
	if got.Annotations["alert_id"] != a.ID || got.Annotations["count"] != "3" || got.Annotations["event_id"] != "01JTESTEVENT" {
		t.Errorf("annotations %v", got.Annotations)
	}
	if !got.StartsAt.Equal(a.Since) {
		t.Errorf("startsAt %v, want %v", got.StartsAt, a.Since)
	}
	if d := time.Until(got.EndsAt); d < 2*time.Minute || d > 3*time.Minute+time.Second {
		t.Errorf("endsAt %v is %v away, want about 3m", got.EndsAt, d)
	}

	// A digest for the same incident updates the same alert.
	dg := notifytest.Alert(alert.TypeDigest)
	dg.Filesystem.Mountpoints = a.Filesystem.Mountpoints
	dg.Count = 41
	dg.Since = a.Since.Add(30 * time.Second)
	if err := n.Send(ctx, dg); err != nil {
		t.Fatal(err)
	}
	got = waitFor(t, base, labels, "after the digest", func(g []gettableAlert) bool {
		return len(g) == 1 && g[0].Annotations["count"] == "41"
	})[0]
	if got.Annotations["alert_type"] != "digest" || got.Annotations["alert_id"] != dg.ID {
		t.Errorf("after the digest: annotations %v", got.Annotations)
	}
	if !got.StartsAt.Equal(a.Since) {
		t.Errorf("after the digest: startsAt %v, want the incident's start %v", got.StartsAt, a.Since)
	}

	// A test alert is a separate alert, marked test="true".
	ta := notifytest.Alert(alert.TypeTest)
	if err := n.Send(ctx, ta); err != nil {
		t.Fatal(err)
	}
	tl := n.Labels(ta)
	if tl["test"] != "true" {
		t.Fatalf("test labels %v", tl)
	}
	tg := waitFor(t, base, tl, "after the test alert", func(g []gettableAlert) bool { return len(g) == 1 })[0]
	if d := time.Until(tg.EndsAt); d > alertmanager.TestAlertLifetime+time.Second {
		t.Errorf("test alert endsAt %v away, want at most %v", d, alertmanager.TestAlertLifetime)
	}

	// Resolving the incident: it is no longer active, the test alert is.
	rs := notifytest.Alert(alert.TypeResolved)
	rs.Filesystem.Mountpoints = a.Filesystem.Mountpoints
	if err := n.Send(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, base, labels, "after resolving", func(g []gettableAlert) bool { return len(g) == 0 })
	waitFor(t, base, tl, "the test alert after resolving the incident", func(g []gettableAlert) bool { return len(g) == 1 })

	// Re-sending the same resolved alert (at-least-once delivery) is harmless.
	if err := n.Send(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, base, labels, "after re-sending resolved", func(g []gettableAlert) bool { return len(g) == 0 })

	t.Logf("Alertmanager %s at %s: %d active alerts at the end", version, base, len(activeAlerts(t, base)))
}
