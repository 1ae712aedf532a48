package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// healthInterval is how often the progress probes run when no service
// manager's watchdog sets it: for /healthz (container liveness probes).
const healthInterval = 30 * time.Second

// startWatchdog runs the progress probes: while the fanotify reader loop
// turns (it answers a probe between two batches, woken from read(2) when
// idle) and while a history commit can run (an empty write transaction
// through the store's write path returns). Under systemd's watchdog
// (WatchdogSec=, and notified says READY=1 reached the service manager) it
// feeds it (WATCHDOG=1) only while both answer: when either has not
// answered for half the interval, the daemon stops feeding it, says why in
// STATUS= and in its log, and systemd restarts it once the interval has
// passed without WATCHDOG=1. The same verdict is served at /healthz on the
// metrics listener, for a container's liveness probe; without systemd's
// watchdog the probes run every healthInterval for it when serveHealth (the
// metrics listener is on).
func (d *Daemon) startWatchdog(ctx context.Context, wg *sync.WaitGroup, notified, serveHealth bool) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	wd := &watchdog{log: d.log}
	if err == nil && interval > 0 && notified {
		wd.notify = func(state string) error {
			_, err := sddaemon.SdNotify(false, state)
			return err
		}
	} else if serveHealth {
		interval = healthInterval
	} else {
		return
	}
	wd.grace = interval / 2
	wd.probes = []*watchdogProbe{
		{name: "the fanotify reader", ask: d.watcher.Probe, detail: func(now time.Time) string {
			if since := d.watcher.InSink(); !since.IsZero() {
				return fmt.Sprintf("it has been handing a batch of events to the history commit for %s", roundDuration(now.Sub(since)))
			}
			return "it is not in the history commit: it is stuck reading or enriching events"
		}},
		{name: "the history database", ask: func(answer func()) {
			go func() {
				d.store.Probe(ctx) // its error is not the watchdog's business: only that it returns
				answer()
			}()
		}, detail: func(time.Time) string { return "a write transaction cannot start: a commit is stuck" }},
	}
	d.watchdog.Store(wd)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				wd.tick(now)
			}
		}
	}()
}

// watchdog decides, at each tick, whether systemd's watchdog is fed.
type watchdog struct {
	probes []*watchdogProbe
	// grace is how long a probe may stay unanswered.
	grace time.Duration
	// notify sends one sd_notify message; nil when no service manager
	// watches the daemon.
	notify func(state string) error
	// verdict is "" while every probe answers, else what does not
	// (healthz serves it).
	verdict atomic.Pointer[string]
	log     *slog.Logger
	// stuck is whether the last tick found a probe unanswered.
	stuck bool
	// notifyFailed is whether the last notification failed: failures are
	// logged once, not at every tick.
	notifyFailed bool
}

// watchdogProbe is one part of the daemon that must answer for the
// watchdog to be fed.
type watchdogProbe struct {
	// name says what did not answer.
	name string
	// ask asks the part to answer: it calls answer, once, from any
	// goroutine, when it has.
	ask func(answer func())
	// detail, if set, says more about a part that does not answer.
	detail func(now time.Time) string

	mu sync.Mutex
	// asked is when the pending question was asked; zero when none is.
	asked time.Time
}

// check asks p again if it answered, and returns how long it has left the
// pending question unanswered (zero if it answered).
func (p *watchdogProbe) check(now time.Time) time.Duration {
	p.mu.Lock()
	if !p.asked.IsZero() {
		waited := now.Sub(p.asked)
		p.mu.Unlock()
		return waited
	}
	p.asked = now
	p.mu.Unlock()
	p.ask(func() {
		p.mu.Lock()
		p.asked = time.Time{}
		p.mu.Unlock()
	})
	return 0
}

// tick feeds the watchdog if every probe answered within the grace period,
// and otherwise says what does not answer (STATUS= at every tick, the log
// when it starts and ends).
func (wd *watchdog) tick(now time.Time) {
	var stuck []string
	for _, p := range wd.probes {
		waited := p.check(now)
		if waited <= wd.grace {
			continue
		}
		s := fmt.Sprintf("%s has not answered for %s", p.name, roundDuration(waited))
		if p.detail != nil {
			s += " (" + p.detail(now) + ")"
		}
		stuck = append(stuck, s)
	}
	verdict := ""
	if len(stuck) > 0 {
		verdict = strings.Join(stuck, "; ")
	}
	wd.verdict.Store(&verdict)
	if len(stuck) == 0 {
		state := sddaemon.SdNotifyWatchdog
		if wd.stuck {
			wd.stuck = false
			wd.log.Warn("feeding the watchdog again: the fanotify reader and the history database answer")
			state += "\nSTATUS="
		}
		wd.send(state)
		return
	}
	msg := "NOT feeding the watchdog: " + verdict
	if !wd.stuck {
		wd.stuck = true
		wd.log.Error(msg + "; the service manager will restart the daemon unless it recovers")
	}
	wd.send("STATUS=" + msg)
}

// send sends state to the service manager, logging the first failure.
func (wd *watchdog) send(state string) {
	if wd.notify == nil {
		return
	}
	err := wd.notify(state)
	if err != nil && !wd.notifyFailed {
		wd.log.Warn("could not notify the service manager (logged once until it works again)", "err", err)
	}
	wd.notifyFailed = err != nil
}

// roundDuration rounds d for people: to 100 ms below 10 s, else to 1 s.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// healthz answers a liveness probe: 200 "ok" while the fanotify reader and
// the history database make progress, 503 with what does not answer once
// one has not for half the probe interval, and 503 "starting" until the
// daemon is ready.
func (d *Daemon) healthz(w http.ResponseWriter, _ *http.Request) {
	wd := d.watchdog.Load()
	if wd == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if v := wd.verdict.Load(); v != nil && *v != "" {
		http.Error(w, "not making progress: "+*v, http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}
