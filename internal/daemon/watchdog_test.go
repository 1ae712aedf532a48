package daemon

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWatchdogFedOnlyWhileProbesAnswer: the watchdog is fed while every
// probe answers within the grace period, stops being fed (and STATUS= says
// which part does not answer) once one has not, and is fed again once it
// answers.
func TestWatchdogFedOnlyWhileProbesAnswer(t *testing.T) {
	var sent []string
	// The reader answers at once unless held; held answers wait here.
	var held []func()
	hold := false
	reader := &watchdogProbe{name: "the reader", ask: func(answer func()) {
		if hold {
			held = append(held, answer)
			return
		}
		answer()
	}, detail: func(time.Time) string { return "in the sink" }}
	commits := 0
	commit := &watchdogProbe{name: "the commit", ask: func(answer func()) { commits++; answer() }}
	wd := &watchdog{probes: []*watchdogProbe{reader, commit}, grace: 15 * time.Second,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), notify: func(s string) error { sent = append(sent, s); return nil }}
	t0 := time.Unix(1_000_000, 0)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	last := func() string { return sent[len(sent)-1] }

	for sec := 0; sec < 30; sec += 7 {
		wd.tick(at(sec))
		if last() != "WATCHDOG=1" {
			t.Fatalf("healthy at %ds: sent %q, want WATCHDOG=1", sec, last())
		}
	}
	if commits != 5 {
		t.Errorf("the commit probe ran %d times in 5 ticks, want 5", commits)
	}

	hold = true
	wd.tick(at(35)) // asks; the reader does not answer
	wd.tick(at(42)) // 7 s unanswered: within the grace period
	if last() != "WATCHDOG=1" {
		t.Errorf("7 s without an answer (grace 15 s): sent %q, want WATCHDOG=1", last())
	}
	for _, sec := range []int{51, 58, 65} {
		n := len(sent)
		wd.tick(at(sec))
		if len(sent) != n+1 || strings.Contains(last(), "WATCHDOG=1") ||
			!strings.HasPrefix(last(), "STATUS=NOT feeding the watchdog: the reader has not answered for") ||
			!strings.Contains(last(), "(in the sink)") || strings.Contains(last(), "the commit") {
			t.Errorf("reader stuck at %ds: sent %q, want only a STATUS= naming the reader", sec, sent[n:])
		}
	}
	if len(held) != 1 {
		t.Errorf("the stuck reader was asked %d times, want once", len(held))
	}
	held[0]()
	hold = false
	wd.tick(at(70))
	if last() != "WATCHDOG=1\nSTATUS=" {
		t.Errorf("after the reader answered: sent %q, want WATCHDOG=1 and STATUS= cleared", last())
	}
	wd.tick(at(77))
	if last() != "WATCHDOG=1" {
		t.Errorf("healthy again: sent %q, want WATCHDOG=1", last())
	}
}

// TestWatchdogNotifyFailureLoggedOnce: a notify socket that fails is
// logged once, not at every tick, and again after it worked in between.
func TestWatchdogNotifyFailureLoggedOnce(t *testing.T) {
	var log strings.Builder
	fail := true
	wd := &watchdog{probes: []*watchdogProbe{{name: "p", ask: func(answer func()) { answer() }}}, grace: time.Second,
		log: slog.New(slog.NewTextHandler(&log, nil)), notify: func(string) error {
			if fail {
				return errors.New("connect: no such file or directory")
			}
			return nil
		}}
	now := time.Unix(1_000_000, 0)
	for i := 0; i < 5; i++ {
		wd.tick(now.Add(time.Duration(i) * time.Second))
	}
	if n := strings.Count(log.String(), "could not notify"); n != 1 {
		t.Errorf("5 failed notifications logged %d times, want once:\n%s", n, log.String())
	}
	fail = false
	wd.tick(now.Add(6 * time.Second))
	fail = true
	wd.tick(now.Add(7 * time.Second))
	wd.tick(now.Add(8 * time.Second))
	if n := strings.Count(log.String(), "could not notify"); n != 2 {
		t.Errorf("after one success, failures logged %d times in all, want 2:\n%s", n, log.String())
	}
}

// TestHealthzFollowsTheWatchdog: /healthz says "starting" until the
// watchdog runs, "ok" while the probes answer, and 503 naming the part that
// does not answer once it has not for the grace period, with no service
// manager to notify.
func TestHealthzFollowsTheWatchdog(t *testing.T) {
	d := &Daemon{}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		d.healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := get(); code != http.StatusServiceUnavailable || body != "starting" {
		t.Errorf("before the watchdog runs: %d %q, want 503 \"starting\"", code, body)
	}
	var held func()
	hold := false
	reader := &watchdogProbe{name: "the fanotify reader", ask: func(answer func()) {
		if hold {
			held = answer
			return
		}
		answer()
	}}
	wd := &watchdog{probes: []*watchdogProbe{reader}, grace: 15 * time.Second,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.watchdog.Store(wd)
	t0 := time.Unix(1_000_000, 0)
	wd.tick(t0)
	if code, body := get(); code != http.StatusOK || body != "ok" {
		t.Errorf("probes answer: %d %q, want 200 \"ok\"", code, body)
	}
	hold = true
	wd.tick(t0.Add(10 * time.Second))
	wd.tick(t0.Add(20 * time.Second)) // 10 s unanswered: within the grace period
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("10 s unanswered (grace 15 s): %d, want 200", code)
	}
	wd.tick(t0.Add(30 * time.Second))
	code, body := get()
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not making progress: the fanotify reader has not answered for 20s") {
		t.Errorf("reader stuck for 20 s: %d %q, want 503 naming the reader", code, body)
	}
	held()
	hold = false
	wd.tick(t0.Add(40 * time.Second))
	if code, body := get(); code != http.StatusOK || body != "ok" {
		t.Errorf("reader answers again: %d %q, want 200 \"ok\"", code, body)
	}
}
