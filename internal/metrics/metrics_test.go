package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/fshealth/fshealth/internal/event"
)

func TestExpositionIsLintClean(t *testing.T) {
	m := New("test")
	e := &event.Event{Kind: event.KindError, Time: event.Time{Time: time.Unix(1795470877, 0)}, Error: "EUCLEAN", ErrorCount: 3,
		Device: "/dev/loop0", FSType: "ext4", UUID: "u", Mountpoints: []string{"/srv/a b", "/b"}}
	m.Event(e)
	m.Event(&event.Event{Kind: event.KindOverflow})
	m.SetWatched(2)
	m.Delivery("hook", nil)
	m.Delivery("hook", errors.New("x"))
	m.SetBacklog("hook", 1, 0)
	m.Action("remount-ro", "ok")
	m.ObserveCommit(time.Millisecond)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`fshealth_filesystem_errors_total{device="/dev/loop0",errno="EUCLEAN",fstype="ext4",mountpoint="/srv/a b",uuid="u"} 3`,
		`fshealth_filesystem_error_events_total{device="/dev/loop0",errno="EUCLEAN",fstype="ext4",mountpoint="/srv/a b",uuid="u"} 1`,
		`fshealth_filesystem_healthy{device="/dev/loop0",fstype="ext4",mountpoint="/srv/a b",uuid="u"} 0`,
		`fshealth_filesystem_last_error_timestamp_seconds{device="/dev/loop0",fstype="ext4",mountpoint="/srv/a b",uuid="u"} 1.795470877e+09`,
		"fshealth_queue_overflows_total 1",
		"fshealth_filesystems_watched 2",
		`fshealth_delivery_attempts_total{channel="hook"} 2`,
		`fshealth_delivery_failures_total{channel="hook"} 1`,
		`fshealth_actions_total{action="remount-ro",result="ok"} 1`,
		`fshealth_build_info{version="test"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "fshealth_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}
