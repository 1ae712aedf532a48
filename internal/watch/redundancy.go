package watch

import (
	"sync/atomic"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// DefaultRedundancyInterval is how often the md arrays (and dm-raid and
// multipath devices) under watched file systems are read when nothing else
// wakes the watcher.
const DefaultRedundancyInterval = 30 * time.Second

// settleEvery is how often an array that is settling (a recovery or
// check running, a spare to be recovered onto) is read: md's events do not
// mark the end of every recovery on every kernel.
const settleEvery = 2 * time.Second

// redundancy follows the RAID arrays under the watched file systems.
type redundancy struct {
	tracker storage.Tracker
	timer   *time.Timer
	every   time.Duration
	// md waits for md's events (mdstat.go); nil without md in the kernel.
	md     *mdEvents
	mdDone chan struct{}
	// dmctl reads dm-raid targets' states; dm waits for device-mapper's
	// events (dmraid_redundancy.go). Both nil without device-mapper, or
	// when SysRoot is not this machine's /sys.
	dmctl  *storage.DMControl
	dm     *dmEvents
	dmDone chan struct{}
	// evented says an md or device-mapper event came since the last
	// reading: the reading it causes is followed by another one soon,
	// since md updates some of sysfs after it signalled the event (a
	// member removed still showed in md/dev-* at the reading its event
	// caused, seen on 6.12).
	evented atomic.Bool
}

// onRedundancyEvent is what md's and device-mapper's waiters call.
func (w *Watcher) onRedundancyEvent() {
	w.redund.evented.Store(true)
	w.wakeForRedundancy()
}

// startRedundancy takes the first reading of the arrays (an array already
// degraded is reported now) and starts the periodic check. It runs in
// Run's goroutine before the loop.
func (w *Watcher) startRedundancy() []event.Event {
	every := w.cfg.RedundancyInterval
	if every <= 0 {
		every = DefaultRedundancyInterval
	}
	w.redund = &redundancy{every: every, timer: time.AfterFunc(every, w.wakeForRedundancy)}
	if w.cfg.SysRoot == "/sys" {
		// Device-mapper's state is the running kernel's: a fixture
		// sysfs has none to go with it.
		if ctl, err := storage.OpenDMControl(""); err != nil {
			w.log.Debug("not reading dm-raid targets", "err", err)
		} else {
			w.redund.dmctl = ctl
		}
	}
	out := w.checkRedundancy(nil)
	if w.redund.dmctl != nil {
		if dm, err := openDMEvents(); err != nil {
			w.log.Debug("not waiting for device-mapper events", "err", err)
		} else {
			r := w.redund
			r.dm, r.dmDone = dm, make(chan struct{})
			go func() {
				defer close(r.dmDone)
				if err := dm.wait(w.onRedundancyEvent); err != nil {
					w.log.Error("waiting for device-mapper events failed; dm-raid targets are read every interval only", "err", err, "interval", every)
				}
			}()
		}
	}
	if md, err := openMDEvents(w.cfg.ProcRoot); err != nil {
		w.log.Debug("not waiting for md events", "err", err)
	} else {
		r := w.redund
		r.md, r.mdDone = md, make(chan struct{})
		go func() {
			defer close(r.mdDone)
			if err := md.wait(w.onRedundancyEvent); err != nil {
				w.log.Error("waiting for md events failed; md arrays are read every interval only", "err", err, "interval", every)
			}
		}()
	}
	return out
}

// wakeForRedundancy makes the reader goroutine read the arrays.
func (w *Watcher) wakeForRedundancy() {
	w.redundWanted.Store(true)
	w.wait.interrupt()
}

// stopRedundancy stops the periodic check and the wait for md events.
func (w *Watcher) stopRedundancy() {
	r := w.redund
	if r == nil {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.md != nil {
		r.md.stop()
		<-r.mdDone
		r.md.close()
	}
	if r.dm != nil {
		r.dm.stop()
		<-r.dmDone
		r.dm.close()
	}
	if r.dmctl != nil {
		r.dmctl.Close()
	}
}

// checkRedundancy reads every md array, dm-raid target and multipath
// device under a watched file system once (however many file systems or
// mounts are on it) and appends an event per change and file system above
// the array: a member (leg, path) faulty or removed, the array degraded, a
// check's mismatch count grown, the array whole again. It runs at start,
// after every md event (/proc/mdstat's POLLPRI) and device-mapper event
// (/dev/mapper/control's POLLIN), at every wake-up for the kernel log and
// every RedundancyInterval, and re-arms the periodic check.
func (w *Watcher) checkRedundancy(out []event.Event) []event.Event {
	r := w.redund
	if r == nil {
		return out
	}
	settling := false
	evented := r.evented.Swap(false)
	defer func() {
		if r.timer == nil {
			return
		}
		if settling || evented {
			r.timer.Reset(min(r.every, settleEvery))
		} else {
			r.timer.Reset(r.every)
		}
	}()
	above := map[string][]*enrich.Filesystem{}
	var order []string
	dmLayers := map[string]storage.Layer{}
	for _, fs := range w.watched {
		names := storage.Arrays(fs.Storage)
		if r.dmctl != nil {
			for i := range fs.Storage {
				if l := &fs.Storage[i]; dmRaidCandidate(l) {
					names = append(names, l.Name)
					dmLayers[l.Name] = *l
				}
			}
		}
		for _, a := range names {
			if _, ok := above[a]; !ok {
				order = append(order, a)
			}
			above[a] = append(above[a], fs)
		}
	}
	keep := map[string]bool{}
	now := time.Now()
	for _, name := range order {
		var a *storage.ArrayState
		var err error
		source := event.SourceMD
		if l, ok := dmLayers[name]; ok {
			a, err = r.dmctl.Array(w.cfg.SysRoot, &l)
			if err == nil && a == nil {
				continue // a device-mapper device of another target
			}
			source = event.SourceDMRaid
			if a != nil && a.Driver == storage.DriverDMMultipath {
				source = event.SourceDMMultipath
			}
		} else {
			a, err = storage.ReadArray(w.cfg.SysRoot, name)
		}
		keep[name] = true
		if err != nil {
			// The array was stopped or vanished: a rescan of the
			// mount table or the kernel log tells.
			w.log.Debug("cannot read a RAID array", "array", name, "err", err)
			continue
		}
		settling = settling || a.Settling()
		first := !r.tracker.Known(name)
		changes := r.tracker.Update(a)
		settling = settling || r.tracker.Pending(name)
		for _, fs := range above[name] {
			cs := changes
			if first && len(cs) == 0 && a.Whole() && w.cfg.RedundancyLost != nil &&
				w.cfg.RedundancyLost(event.FilesystemKey(fs.UUID, fs.Device, fs.FSID.String())) {
				// Repaired while nobody watched: the loss
				// recorded before ends.
				cs = []storage.Redundancy{a.Redundancy(storage.ChangeRestored)}
			}
			if len(cs) == 0 {
				continue
			}
			w.readStorage(fs)
			for i := range cs {
				c := cs[i]
				e := event.Event{Kind: event.KindRedundancy, Time: event.Time{Time: now}, Source: source,
					ErrorCount: 1, Storage: fs.Storage, Redundancy: &c, Message: c.String()}
				fs.Describe(&e)
				out = append(out, e)
			}
		}
		for _, c := range changes {
			w.log.Info("RAID array redundancy changed", "array", name, "driver", a.Driver, "alias", a.Alias, "change", c.Change, "member", c.Member, "degraded", c.Degraded)
		}
	}
	r.tracker.Forget(keep)
	return out
}
