package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// stateRule and stateErrorKind name the alerts about fshealth's own state.
const (
	stateRule      = "fshealth-state"
	stateErrorKind = "FSHEALTH_STATE"
)

// historyChanged follows a switch of the history between the database and
// memory: it publishes the state (metrics, the runtime status file, the
// log) and raises one critical alert, on every channel, when the history
// degrades, and its resolved alert when it is recorded again.
func (d *Daemon) historyChanged() {
	g := d.publishState()
	now := time.Now()
	if g != nil {
		d.log.Error("HISTORY NOT RECORDED: keeping events and alerts in memory until the state directory works again; "+
			"every event still reaches the journal, the metrics and every channel", "path", g.Path, "cause", g.Cause,
			"state_fs", g.StateFS, "err", event.Clean(g.Err))
	}
	if g == nil && d.watcher != nil {
		// In the watcher's goroutine, which owns the watched list: the
		// health gauges and the watched file systems from the database
		// again, and the requests `fshealth resolve` recorded meanwhile.
		d.watcher.Do(func() {
			if err := d.recordWatched(context.Background()); err != nil {
				d.log.Error("recording the watched file systems", "err", err)
			}
			d.handleRequests(context.Background())
		})
	}

	d.mu.Lock()
	b := &store.Batch{}
	switch {
	case g != nil && d.stateAlert == nil:
		a := d.stateAlertFor(g, now)
		d.stateAlert = &a
		d.enqueueAll(b, a, now)
		d.kickPolicy() // Alertmanager re-sends it while degraded
	case g == nil && d.stateAlert != nil:
		a := *d.stateAlert
		// Same severity and file system: Alertmanager resolves the alert
		// with the same labels.
		a.ID, a.Type, a.Time = NewID(now)+"-resolved", alert.TypeResolved, now
		a.Summary = fmt.Sprintf("fshealth records its history again in %s (not recorded from %s to %s; what happened meanwhile is now in it)",
			event.Safe(d.store.dir), a.Since.Format(time.RFC3339), now.Format(time.RFC3339))
		d.stateAlert = nil
		d.enqueueAll(b, a, now)
	}
	d.mu.Unlock()
	if len(b.Deliveries) == 0 {
		return
	}
	if err := d.store.Commit(context.Background(), b); err != nil {
		d.log.Error("could not queue the alert about fshealth's state", "err", err)
		return
	}
	if d.outbox != nil {
		d.outbox.Wake()
	}
	if d.actions != nil {
		d.actions.Wake()
	}
}

// publishState publishes the history's state in the metrics and the
// runtime status file, and returns it.
func (d *Daemon) publishState() *Degraded {
	g := d.store.Degraded()
	st := &RuntimeStatus{PID: os.Getpid(), StateDir: d.store.dir, Degraded: g, MovedAside: d.store.MovedAside(), Updated: time.Now()}
	if g != nil {
		d.metrics.SetDegraded(g.Path, g.Cause, g.Since)
		if n, err := d.store.Store().CountEvents(context.Background()); err == nil {
			st.MemoryEvents = n
			d.metrics.SetMemoryEvents(n)
		}
	} else {
		d.metrics.SetRecorded()
	}
	// Published only while degraded: `status` sees the rest in the state
	// directory.
	if g == nil {
		removeStatusFile(d.store.dir)
	} else if err := writeStatusFile(st); err != nil {
		d.log.Warn("could not publish the daemon's state for `fshealth status`", "file", StatusFile(d.store.dir), "err", err)
	}
	return g
}

// stateAlertFor is the critical alert about the degraded history g. The
// caller holds d.mu.
func (d *Daemon) stateAlertFor(g *Degraded, now time.Time) alert.Alert {
	fs := alert.Filesystem{Mountpoints: []string{}}
	if m := stateMount(d.store.dir); m != nil {
		fs = alert.Filesystem{Device: m.Source, FSType: m.FSType, Mountpoints: []string{m.Point}}
	}
	summary := fmt.Sprintf("fshealth cannot record its history: %s: %s since %s; events and alerts are kept in memory",
		event.Safe(g.Path), event.Clean(g.Cause), g.Since.Format(time.RFC3339))
	if g.StateFS != "" {
		summary += "; " + event.Clean(g.StateFS)
	}
	if !g.Released {
		summary += ". Prefer a state directory on a file system other than the ones being watched for errors"
	}
	return alert.Alert{ID: NewID(now) + "-state", Type: alert.TypeError, Severity: alert.SeverityCritical, Rule: stateRule,
		Host: d.cfg.Host(), Time: now, Summary: summary, Filesystem: fs, ErrorKind: stateErrorKind, Count: 1, Since: g.Since}
}

// enqueueAll queues a on every configured channel, whatever the rules say:
// fshealth's own state concerns whoever gets any alert. The caller holds
// d.mu.
func (d *Daemon) enqueueAll(b *store.Batch, a alert.Alert, now time.Time) {
	for _, ch := range d.cfg.ChannelNames() {
		b.Deliveries = append(b.Deliveries, store.Delivery{Channel: ch, Alert: a, Created: now, NextAttempt: now})
	}
}

// releaseFor lets go of the database while a remount-ro of the file system
// holding the state directory runs: files open for writing there would make
// the remount fail (EBUSY). The history is kept in memory meanwhile and
// committed once the database can be written again (remounted rw).
func (d *Daemon) releaseFor(name string, t actions.Target) func() {
	if name != "remount-ro" {
		return func() {}
	}
	on := false
	for _, mp := range t.Mountpoints {
		if d.store.onStateFS(mp) {
			on = true
			break
		}
	}
	if !on {
		return func() {}
	}
	d.log.Warn("releasing the history database so that its file system can be remounted read-only; history is kept in memory meanwhile",
		"device", t.Device, "state_dir", d.store.dir)
	d.store.release("remount-ro of the state directory's file system " + t.Device)
	return d.store.unhold
}
