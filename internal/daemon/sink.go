package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify/journal"
	"github.com/fshealth/fshealth/internal/policy"
	"github.com/fshealth/fshealth/internal/store"
)

// The daemon's part of an event's path (docs/architecture.md has the
// whole map). The watcher hands each batch of enriched events to sink, in
// its own goroutine; sink runs the batch through these stages, in order:
//
//	decide    ids, policy: alerts (one outbox row per channel), actions, incidents
//	account   how many of ext4's recorded errors are now reported
//	commit    all of it in one transaction (one fdatasync): nothing about an
//	          event leaves the process before this; its alerts are handed to
//	          the outbox in memory (outbox.CommitAndHand) as soon as it is
//	          durable, before the error summary is written (store.Commit)
//	log       the journal and the metrics
//	handOff   wake the action runner; ask for the disks' health
//	followUp  overflow reconciliation, the shortfall check, retention, the policy timer
//
// Detail that arrives after an event (its inode's path, ext4's record of
// the error) is attached to the history later, in the same goroutine
// (paths.go, ext4detail.go); no stage waits for it.

// sink is the watcher's sink: it runs for every batch of events, in order.
func (d *Daemon) sink(evs []event.Event) error {
	now := time.Now()
	b, jw := d.decide(evs, now)
	b.Ext4Reported = d.reportedCounts(evs)
	err := d.outbox.CommitAndHand(func(hand func()) error {
		b.Durable = hand
		return d.commit(b)
	}, func() []store.Delivery { return b.Deliveries })
	d.logEvents(evs, jw)
	if err != nil {
		// The events are in the journal and the metrics, but not in the
		// history, and their alerts are not queued: say so loudly. The
		// daemon keeps watching; a later batch may commit again.
		d.log.Error("COULD NOT RECORD EVENTS, not even in memory: history and alerts for them are lost (they are in the journal)",
			"events", len(evs), "err", err)
		return nil
	}
	d.handOff(b, evs)
	d.followUp(evs, now)
	return nil
}

// decide gives each event its id and applies the policy: the batch holds
// the events, one outbox row per alert and channel, the actions to run and
// the incidents that changed. It returns the journal channel of the
// configuration it decided with.
func (d *Daemon) decide(evs []event.Event, now time.Time) (*store.Batch, *journal.Writer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := &store.Batch{Events: evs}
	for i := range evs {
		evs[i].ID = NewID(evs[i].Time.Time)
		dec := d.engine.Evaluate(&evs[i], now)
		d.enqueue(b, dec.Alerts, now)
		for _, a := range dec.Actions {
			b.Actions = append(b.Actions, store.Action{IncidentKey: dec.Incident.Key(), FSKey: dec.Incident.FSKey,
				EventID: evs[i].ID, Name: a.Name, Argv: a.Argv, DryRun: a.DryRun, Timeout: a.Timeout})
		}
		if len(dec.Withheld) > 0 {
			names := make([]string, len(dec.Withheld))
			for j, a := range dec.Withheld {
				names[j] = a.Name
			}
			d.log.Warn("recovery actions not run: only the kernel log reports this error and nothing corroborates it (set act_on_kernel_log = true in the rule to run them anyway)",
				"rule", dec.Rule, "actions", names, "device", evs[i].Device, "event", evs[i].ID)
		}
	}
	b.Incidents = incidentsToStore(d.engine.Changed())
	b.BtrfsCounters, d.btrfsDirty = d.btrfsDirty, nil
	return b, d.channels.Journal
}

// commit writes the batch to the history, timing it until it is durable
// (what the alerts wait for; the error summary is written after).
func (d *Daemon) commit(b *store.Batch) error {
	start := time.Now()
	durable, observed := b.Durable, false
	b.Durable = func() {
		d.metrics.ObserveCommit(time.Since(start))
		observed = true
		if durable != nil {
			durable()
		}
	}
	err := d.store.Commit(context.Background(), b)
	if !observed {
		d.metrics.ObserveCommit(time.Since(start))
	}
	return err
}

// logEvents writes the events to the journal and counts them.
func (d *Daemon) logEvents(evs []event.Event, jw *journal.Writer) {
	for i := range evs {
		jw.LogEvent(&evs[i])
		d.metrics.Event(&evs[i])
	}
}

// handOff starts what happens apart once a batch is committed: the outbox
// delivers its alerts (handed over in memory, not read back from the
// history, when nothing older waits), the action runner runs its actions, the disks'
// health is read, and a degraded history publishes its state.
func (d *Daemon) handOff(b *store.Batch, evs []event.Event) {
	if len(b.Actions) > 0 {
		d.actions.Wake()
	}
	if d.disks != nil {
		d.disks.askEvents(evs)
	}
	if d.store.Degraded() != nil {
		d.publishState()
	}
}

// followUp schedules what a committed batch calls for later: the policy
// timer's next deadline, a reconciliation after an overflow, the shortfall
// check after ext4 errors, and retention.
func (d *Daemon) followUp(evs []event.Event, now time.Time) {
	d.kickPolicy()
	overflows := 0
	for i := range evs {
		if evs[i].Kind == event.KindOverflow {
			overflows++
		}
	}
	if overflows > 0 && d.watcher != nil {
		d.reconcile(overflows)
	}
	d.settleLater(evs)
	d.pruneDaily(context.Background(), now)
}

// ext4Report reports whether e is an error ext4 reported through fanotify
// (its record in the superblock is, or will be, read for it).
func ext4Report(e *event.Event) bool {
	return e.Kind == event.KindError && e.Source == event.SourceFanotify && (e.Ext4 != nil || e.Ext4Pending)
}

// reportedCounts returns, per ext4 UUID in evs, how many of ext4's
// recorded errors are now reported: what was reported before plus the
// errors of these events. It never jumps to ext4's own count: errors whose
// events were lost are counted there too, and must stay unreported until
// reconciliation reports them.
func (d *Daemon) reportedCounts(evs []event.Event) map[string]uint64 {
	var out map[string]uint64
	for i := range evs {
		e := &evs[i]
		// ext4 counts every error in errors_count, also one whose
		// FAN_FS_ERROR report was lost and that came from the kernel log,
		// and one found in its record (source "recorded").
		if e.Kind != event.KindError || e.UUID == "" || e.Ext4 == nil && !e.Ext4Pending && !(e.LostReport && enrich.IsExt4(e.FSType)) {
			continue
		}
		if out == nil {
			out = map[string]uint64{}
		}
		prev, ok := out[e.UUID]
		if !ok {
			prev, _, _ = d.store.Ext4Reported(context.Background(), e.UUID)
		}
		out[e.UUID] = prev + uint64(e.ErrorCount)
	}
	return out
}

// enqueue adds one outbox row per alert and channel to b. The caller holds
// d.mu.
func (d *Daemon) enqueue(b *store.Batch, alerts []alert.Alert, now time.Time) {
	for i := range alerts {
		a := &alerts[i]
		if a.Host == "" {
			a.Host = d.cfg.Host()
		}
		for _, ch := range d.engine.Channels(a) {
			b.Deliveries = append(b.Deliveries, store.Delivery{Channel: ch, Alert: *a, Created: now, NextAttempt: now})
		}
	}
}

// incidentsToStore converts the engine's changed incidents for the store.
func incidentsToStore(states []policy.IncidentState) []store.Incident {
	out := make([]store.Incident, 0, len(states))
	for _, s := range states {
		raw, _ := json.Marshal(s)
		var actionsRun []string
		for name := range s.Actions {
			actionsRun = append(actionsRun, name)
		}
		out = append(out, store.Incident{Key: s.Key(), FSKey: s.FSKey, ErrorKind: s.ErrorKind, Opened: s.Opened,
			LastEvent: s.LastEventTime, LastAlert: s.LastAlert, NextReminder: s.NextReminder, FoldedSince: s.FoldedSince,
			Events: s.Events, Errors: s.Errors, Folded: s.Folded, RemindersSent: int(s.RemindersSent),
			ActionsRun: actionsRun, Resolved: s.Resolved, State: raw})
	}
	return out
}

// reconcile handles lost events (a queue overflow): each file system's
// recorded error count is compared with what was reported, and the
// difference reported, now and once more a moment later — errors dropped
// after the overflow notice was queued have no notice of their own. While
// events wait unread in the kernel's queue the comparison is put off (see
// checkRecorded), so that no error is reported both by it and by its
// event; the follow-up runs again until the queue was found empty. It runs
// in the watcher's goroutine. n is the number of overflow events in the
// batch.
func (d *Daemon) reconcile(n int) {
	const why = "missed: the kernel's event queue overflowed"
	d.overflows += n
	d.checkRecorded(context.Background(), d.watcher.Watched(), why)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reconcileTimer != nil {
		d.reconcileTimer.Stop()
	}
	var again func()
	again = func() {
		d.watcher.Do(func() {
			if !d.checkRecorded(context.Background(), d.watcher.Watched(), why) {
				d.mu.Lock()
				d.reconcileTimer = time.AfterFunc(reconcileAgain, again)
				d.mu.Unlock()
				return
			}
			d.log.Info("follow-up reconciliation after an overflow done", "overflows", d.overflows)
		})
	}
	d.reconcileTimer = time.AfterFunc(reconcileAgain, again)
}

// reconcileAgain is how long after an overflow the counts are compared once
// more.
const reconcileAgain = time.Second

// settleAfter is how long after the last ext4 error event of a batch the
// shortfall check runs.
const settleAfter = time.Second

// settleLater schedules the shortfall check for the ext4 file systems of
// evs' fanotify error events: once no event has come for settleAfter,
// each one's errors_count is compared with what was reported, and errors
// ext4 counted but the kernel never delivered — a report lost without an
// overflow (Linux 7.0+ drops reports when short of memory) — are reported.
// Only a timer runs, and only after errors.
func (d *Daemon) settleLater(evs []event.Event) {
	if d.watcher == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	any := false
	for i := range evs {
		e := &evs[i]
		if ext4Report(e) && e.UUID != "" {
			if d.settleUUIDs == nil {
				d.settleUUIDs = map[string]bool{}
			}
			d.settleUUIDs[e.UUID] = true
			any = true
		}
	}
	if !any {
		return
	}
	if d.settleTimer == nil {
		d.settleTimer = time.AfterFunc(settleAfter, func() { d.watcher.Do(d.settle) })
	} else {
		d.settleTimer.Reset(settleAfter)
	}
}

// settle is the shortfall check; it runs in the watcher's goroutine. While
// events wait unread in the kernel's queue their errors are counted by ext4
// but not yet reported, so it looks again later.
func (d *Daemon) settle() {
	d.mu.Lock()
	uuids := d.settleUUIDs
	d.mu.Unlock()
	var fss []*enrich.Filesystem
	for _, fs := range d.watcher.Watched() {
		if uuids[fs.UUID] {
			fss = append(fss, fs)
		}
	}
	if !d.checkRecorded(context.Background(), fss, "missed: the kernel delivered fewer errors than ext4 counted") {
		d.mu.Lock()
		d.settleTimer.Reset(settleAfter)
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	for u := range uuids {
		delete(d.settleUUIDs, u)
	}
	d.mu.Unlock()
}
