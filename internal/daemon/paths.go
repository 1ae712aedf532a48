package daemon

import (
	"context"

	"github.com/fshealth/fshealth/internal/event"
)

// pathFound records a path lookup's outcome (a KindPath event) in the
// history: the events about the inode whose path was pending get it. It
// runs in the watcher's goroutine, after the sink committed those events.
// Later events about the inode carry the path when they are enriched, so
// their alerts have it; the alert already sent is not sent again.
func (d *Daemon) pathFound(e *event.Event) {
	if e.Inode == nil || e.Generation == nil {
		return
	}
	ids, err := d.store.AttachPath(context.Background(), e.FSKey(), *e.Inode, *e.Generation, e.Path, e.PathError)
	if err != nil {
		d.log.Error("recording the path of an inode in the history", "device", e.Device, "inode", *e.Inode, "err", err)
		return
	}
	d.log.Info("path of an inode recorded in the history", "device", e.Device, "inode", *e.Inode,
		"path", e.Path, "path_error", e.PathError, "events", ids)
}
