package watch

import (
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// DefaultRedundancyInterval is how often the md arrays under watched file
// systems are read when nothing else wakes the watcher.
const DefaultRedundancyInterval = 30 * time.Second

// redundancy follows the RAID arrays under the watched file systems.
type redundancy struct {
	tracker storage.Tracker
	timer   *time.Timer
	every   time.Duration
}

// startRedundancy takes the first reading of the arrays (an array already
// degraded is reported now) and starts the periodic check. It runs in
// Run's goroutine before the loop.
func (w *Watcher) startRedundancy() []event.Event {
	every := w.cfg.RedundancyInterval
	if every <= 0 {
		every = DefaultRedundancyInterval
	}
	w.redund = &redundancy{every: every}
	out := w.checkRedundancy(nil)
	w.redund.timer = time.AfterFunc(every, w.wakeForRedundancy)
	return out
}

// wakeForRedundancy makes the reader goroutine read the arrays.
func (w *Watcher) wakeForRedundancy() {
	w.redundWanted.Store(true)
	w.group.SetReadDeadline(pastDeadline)
}

// stopRedundancy stops the periodic check.
func (w *Watcher) stopRedundancy() {
	if w.redund != nil && w.redund.timer != nil {
		w.redund.timer.Stop()
	}
}

// checkRedundancy reads every md array under a watched file system once
// (however many file systems or mounts are on it) and appends an event per
// change and file system above the array: a member faulty or removed, the
// array degraded, a check's mismatch count grown, the array whole again.
// It runs at start, at every wake-up for the kernel log (md logs each
// failure and recovery) and every RedundancyInterval, and re-arms the
// periodic check.
func (w *Watcher) checkRedundancy(out []event.Event) []event.Event {
	r := w.redund
	if r == nil {
		return out
	}
	if r.timer != nil {
		r.timer.Reset(r.every)
	}
	above := map[string][]*enrich.Filesystem{}
	var order []string
	for _, fs := range w.watched {
		for _, a := range storage.Arrays(fs.Storage) {
			if _, ok := above[a]; !ok {
				order = append(order, a)
			}
			above[a] = append(above[a], fs)
		}
	}
	keep := map[string]bool{}
	now := time.Now()
	for _, name := range order {
		keep[name] = true
		a, err := storage.ReadArray(w.cfg.SysRoot, name)
		if err != nil {
			// The array was stopped or vanished: a rescan of the
			// mount table or the kernel log tells.
			w.log.Debug("cannot read an md array", "array", name, "err", err)
			continue
		}
		changes := r.tracker.Update(a)
		if len(changes) == 0 {
			continue
		}
		for _, fs := range above[name] {
			w.readStorage(fs)
			for i := range changes {
				c := changes[i]
				out = append(out, event.Event{Kind: event.KindRedundancy, Time: event.Time{Time: now}, Source: event.SourceMD,
					ErrorCount: 1, FSID: fs.FSID.String(), Device: fs.Device, DeviceNumber: fs.Dev(), FSType: fs.FSType,
					UUID: fs.UUID, Label: fs.Label, Mountpoints: fs.Mountpoints, Storage: fs.Storage,
					Redundancy: &c, Message: c.String()})
			}
		}
		for _, c := range changes {
			w.log.Info("md array redundancy changed", "array", name, "change", c.Change, "member", c.Member, "degraded", c.Degraded)
		}
	}
	r.tracker.Forget(keep)
	return out
}
