package watch

import (
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/pathfind"
)

// startPaths starts the path finder when Config.OnPath wants its results.
// A result goes to OnPath through Do, so it reaches it in Run's goroutine
// after the batch holding the event that asked for it went to the sink.
func (w *Watcher) startPaths() {
	if w.cfg.OnPath == nil {
		return
	}
	w.paths = &pathfind.Finder{XFSDB: w.cfg.XFSDB, Found: func(r pathfind.Result) {
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

// findKernelLogPath asks for the path of the inode an event made from the
// kernel log names (XFS prints the inode of a corrupted one; no generation
// comes with it, so any generation matches). Like an event's from
// fanotify, the path follows through OnPath when found.
func (w *Watcher) findKernelLogPath(e *event.Event, fs *enrich.Filesystem) {
	if w.paths != nil && e.Inode != nil {
		w.enricher.FindPath(fs, e)
	}
}

// stopPaths stops the path finder, killing a lookup in progress.
func (w *Watcher) stopPaths() {
	if w.paths != nil {
		w.paths.Close()
	}
}

// FindPath asks again for the path of inode ino (generation gen) of the
// watched file system whose history key (event.FilesystemKey: its UUID,
// else its device) is fsKey — for a lookup that did not finish before the
// daemon last stopped. The outcome goes to Config.OnPath, like any lookup's.
// It reports false when that cannot be: paths are not looked up, or the
// file system is not watched now. Call it before Run, or through Do.
func (w *Watcher) FindPath(fsKey string, ino uint64, gen uint32) bool {
	if w.paths == nil {
		return false
	}
	for _, fs := range w.watched {
		if event.FilesystemKey(fs.UUID, fs.Device, fs.FSID.String()) != fsKey {
			continue
		}
		p, pending, err := w.paths.Lookup(enrich.PathRequest(fs, ino, gen))
		if !pending {
			// Known already, or refused: answered at once.
			r := pathfind.Result{Request: enrich.PathRequest(fs, ino, gen), Path: p, Err: err}
			ev := enrich.PathEvent(&r, time.Now())
			w.Do(func() { w.cfg.OnPath(&ev) })
		}
		return true
	}
	return false
}
