package daemon

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// checkRecorded compares what ext4 has recorded in each file system's
// superblock with what fshealth has reported for it (by UUID): errors
// recorded but never reported — they happened while the daemon was stopped,
// the machine crashed, or the file system was last mounted elsewhere —
// become one event with source "recorded", which goes through policy and
// alerts like any other. A file system whose record was cleared (e2fsck
// repaired it) is marked healthy and its incidents resolved. It runs before
// the watcher's Run, or from its goroutine (OnChange, the sink), like
// enrichment. why, if set, says why errors went unreported (an overflow).
//
// The counts are read first and the kernel's queue checked after: an error
// ext4 counted had its FAN_FS_ERROR queued before (ext4 queues it, then
// counts), so if the queue is empty then, every event of a counted error
// was read, and its errors are in what was reported. If events wait in the
// queue, nothing is reported and checkRecorded returns false: with why set
// (a reconciliation) the caller tries again later; without (at start, or
// for a file system just mounted: an error may have come between its mark
// and this check), checkRecorded does so itself, in the watcher's
// goroutine, a moment later. Otherwise it returns true.
func (d *Daemon) checkRecorded(ctx context.Context, fss []*enrich.Filesystem, why string) bool {
	var evs []event.Event
	var repaired []*enrich.Filesystem
	for _, fs := range fss {
		if fs.UUID == "" {
			continue
		}
		st, err := fs.Ext4State()
		if err != nil {
			d.log.Warn("reading the recorded error state", "device", fs.Device, "err", err)
			continue
		}
		if st == nil {
			continue
		}
		reported, known, err := d.store.Ext4Reported(ctx, fs.UUID)
		if err != nil {
			d.log.Error("reading what was reported", "uuid", fs.UUID, "err", err)
			continue
		}
		switch {
		case st.ErrorsCount == 0 && known && reported > 0:
			repaired = append(repaired, fs)
		case st.ErrorsCount > reported:
			evs = append(evs, recordedEvent(fs, st, st.ErrorsCount-reported, known, why))
		}
	}
	if d.watcher != nil && len(evs) > 0 {
		if n, err := d.watcher.Queued(); err == nil && n > 0 {
			if why == "" {
				time.AfterFunc(reconcileAgain, func() {
					d.watcher.Do(func() { d.checkRecorded(ctx, fss, why) })
				})
			}
			return false
		}
	}
	for _, fs := range repaired {
		d.repaired(ctx, fs)
	}
	if len(evs) > 0 {
		d.sink(evs)
	}
	return true
}

// recordedEvent describes n recorded but unreported errors of fs.
func recordedEvent(fs *enrich.Filesystem, st *ext4.State, n uint64, known bool, why string) event.Event {
	e := event.Event{Kind: event.KindError, Time: event.Time{Time: time.Now()}, Source: event.SourceRecorded,
		ErrorCount: uint32(min(n, 1<<32-1)), Ext4: st}
	fs.Describe(&e)
	errno := syscall.EUCLEAN // ext4 records corruption unless it says otherwise
	if last := st.LastError; last != nil {
		if n, ok := event.ErrnoNumber(last.Error); ok {
			errno = syscall.Errno(n)
		}
		if last.Inode != 0 {
			ino := last.Inode
			e.Inode = &ino
		}
	}
	e.Errno, e.Error, e.ErrorText = int(errno), event.ErrnoName(int(errno)), errno.Error()
	when := "recorded by ext4 while fshealth was not watching"
	switch {
	case why != "":
		when = why
	case !known:
		when = "recorded by ext4 before fshealth first watched this file system"
	}
	e.Message = fmt.Sprintf("%d error(s) %s", n, when)
	if st.FirstError != nil && st.LastError != nil {
		e.Message += fmt.Sprintf(" (first %s in %s, last %s in %s)", st.FirstError.Time.Format(time.RFC3339),
			st.FirstError.Function, st.LastError.Time.Format(time.RFC3339), st.LastError.Function)
	}
	return e
}

// repaired handles a file system whose recorded errors were cleared.
func (d *Daemon) repaired(ctx context.Context, fs *enrich.Filesystem) {
	key := event.FilesystemKey(fs.UUID, fs.Device, fs.FSID.String())
	now := time.Now()
	d.log.Info("file system repaired: ext4 no longer records errors (e2fsck ran); marking it healthy", "device", fs.Device, "uuid", fs.UUID)
	if err := d.store.MarkHealthy(ctx, key, now); err != nil {
		d.log.Error("marking healthy", "device", fs.Device, "err", err)
	}
	d.metrics.SetHealth(metricsFS(fs), true, time.Time{})
	d.resolve(ctx, key, now, map[string]uint64{fs.UUID: 0})
}

// metricsFS labels a watched file system for metrics.
func metricsFS(fs *enrich.Filesystem) metrics.FS {
	return fsLabels(fs.Device, fs.Mountpoints, fs.FSType, fs.UUID)
}

// statusFS labels a file system of the history for metrics.
func statusFS(f *store.FilesystemStatus) metrics.FS {
	return fsLabels(f.Device, f.Mountpoints, f.FSType, f.UUID)
}

// fsLabels are a file system's metric labels; the first mount point stands
// for all.
func fsLabels(device string, mountpoints []string, fstype, uuid string) metrics.FS {
	mp := ""
	if len(mountpoints) > 0 {
		mp = mountpoints[0]
	}
	return metrics.FS{Device: device, Mountpoint: mp, FSType: fstype, UUID: uuid}
}

// resolve ends the incidents of a file system and queues their resolved
// alerts, recording ext4Reported with them.
func (d *Daemon) resolve(ctx context.Context, fsKey string, now time.Time, ext4Reported map[string]uint64) {
	d.mu.Lock()
	b := &store.Batch{Ext4Reported: ext4Reported}
	d.enqueue(b, d.engine.Resolve(fsKey, now), now)
	b.Incidents = incidentsToStore(d.engine.Changed())
	d.mu.Unlock()
	if err := d.store.Commit(ctx, b); err != nil {
		d.log.Error("recording resolved incidents", "err", err)
		return
	}
	d.outbox.Wake()
	d.kickPolicy()
}
