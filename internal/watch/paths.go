package watch

import (
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/pathfind"
)

// startPaths starts the path finder when Config.OnPath wants its results.
// A result goes to OnPath through Do, so it reaches it in Run's goroutine
// after the batch holding the event that asked for it went to the sink.
func (w *Watcher) startPaths() {
	if w.cfg.OnPath == nil {
		return
	}
	w.paths = &pathfind.Finder{Found: func(r pathfind.Result) {
		ev := enrich.PathEvent(&r, time.Now())
		if r.Err != nil {
			w.log.Warn("path of an inode not found", "device", r.Device, "inode", r.Inode, "err", r.Err)
		} else {
			w.log.Info("path of an inode found", "device", r.Device, "inode", r.Inode, "path", r.Path, "took", r.Took)
		}
		w.Do(func() { w.cfg.OnPath(&ev) })
	}}
	w.enricher.Paths = w.paths
}

// stopPaths stops the path finder, killing a lookup in progress.
func (w *Watcher) stopPaths() {
	if w.paths != nil {
		w.paths.Close()
	}
}
