package daemon

import (
	"context"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// pathFound records a path lookup's outcome (a KindPath event): the events
// in the history about the inode whose path was pending get it, and so do
// the open incidents whose last event is about it, so that their digests,
// reminders and resolution carry it. It runs in the watcher's goroutine,
// after the sink committed the events that asked for the path. Later
// events about the inode carry the path when they are enriched, so their
// alerts have it; an alert already sent is not sent again.
func (d *Daemon) pathFound(e *event.Event) {
	if e.Inode == nil {
		return
	}
	ctx := context.Background()
	ids, err := d.store.AttachPath(ctx, e.FSKey(), *e.Inode, e.Gen(), e.Path, e.PathError)
	if err != nil {
		d.log.Error("recording the path of an inode in the history", "device", e.Device, "inode", *e.Inode, "err", err)
		return
	}
	d.mu.Lock()
	var b store.Batch
	if d.engine.AttachPath(e.FSKey(), *e.Inode, e.Gen(), e.Path, e.PathError) {
		b.Incidents = incidentsToStore(d.engine.Changed())
	}
	d.mu.Unlock()
	if len(b.Incidents) > 0 {
		if err := d.store.Commit(ctx, &b); err != nil {
			d.log.Error("recording the path of an inode in its incident", "device", e.Device, "inode", *e.Inode, "err", err)
		}
	}
	d.log.Info("path of an inode recorded in the history", "device", e.Device, "inode", *e.Inode,
		"path", e.Path, "path_error", e.PathError, "events", ids)
}

// maxResumedPaths bounds the lookups resumed at start.
const maxResumedPaths = 64

// resumePathLookups asks again for the paths still pending in the history:
// lookups the daemon did not finish before it last stopped. Those of file
// systems not watched now get a path_error saying so. It runs before the
// watcher's Run.
func (d *Daemon) resumePathLookups(ctx context.Context) {
	pending, err := d.store.PendingPaths(ctx, maxResumedPaths)
	if err != nil {
		d.log.Error("reading the paths still pending in the history", "err", err)
		return
	}
	resumed := 0
	for _, p := range pending {
		if d.watcher.FindPath(p.FSKey, p.Inode, p.Generation) {
			resumed++
			continue
		}
		if _, err := d.store.AttachPath(ctx, p.FSKey, p.Inode, p.Generation, "",
			"not looked up: fshealth stopped before the path was found, and the file system is not watched now"); err != nil {
			d.log.Error("recording a path that cannot be looked up", "fs", p.FSKey, "inode", p.Inode, "err", err)
		}
	}
	if len(pending) > 0 {
		d.log.Info("resuming path lookups left pending", "resumed", resumed, "pending", len(pending))
	}
}

// AttachPath is store.Store.AttachPath on the store in use.
func (h *history) AttachPath(ctx context.Context, fsKey string, ino uint64, gen uint32, path, pathError string) ([]string, error) {
	return do(h, func(s *store.Store) ([]string, error) { return s.AttachPath(ctx, fsKey, ino, gen, path, pathError) })
}

// PendingPaths is store.Store.PendingPaths on the store in use.
func (h *history) PendingPaths(ctx context.Context, limit int) ([]store.PendingPath, error) {
	return do(h, func(s *store.Store) ([]store.PendingPath, error) { return s.PendingPaths(ctx, limit) })
}
