package watch

import (
	"fmt"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/mounts"
)

// maxDetached bounds how many unmounted file systems stay in the registry.
const maxDetached = 64

// maxLoggedMountpoints bounds the mount points a log line lists.
const maxLoggedMountpoints = 8

// rescan brings the mount table up to date (mountTable.update) and the
// watched set with it: file systems mounted since (when watching
// everything) are marked, mount point changes (bind mounts, moves,
// unmounts of one of several mounts) are recorded, and file systems no
// longer mounted anywhere are dropped from the watched set. Only the file
// systems whose mounts changed are looked at. It runs in Run's goroutine.
func (w *Watcher) rescan() {
	w.rescans.Add(1)
	start := time.Now()
	if err := w.mt.update(w.following); err != nil {
		w.log.Error("reading the mount table", "err", err)
	}
	w.refreshHostView()
	cs := w.mt.table.Publish()
	// What the table costs, not marking new file systems: the follower
	// paces itself by it (follow.go, coalesceDelay).
	cost := time.Since(start)
	w.mt.cost.Store(int64(cost))
	w.log.Debug("mount table updated", "mounts", w.mt.table.Len(), "filesystems_changed", len(cs), "took", cost)
	w.applyChanges(cs)
}

// applyChanges updates the watched set for the file systems whose mounts
// changed.
func (w *Watcher) applyChanges(cs []mounts.Changed) {
	var ch Change
	added := false
	for _, c := range cs {
		f := c.New
		if f == nil {
			f = c.Old
		}
		dev := f.Dev()
		wf := w.watchedDev(f.Major, f.Minor)
		if c.New == nil {
			delete(w.unmarkable, dev)
			if wf != nil {
				w.log.Info("file system no longer mounted; not watched any more (its history stays)",
					"fstype", wf.FSType, "device", wf.Device, "uuid", wf.UUID, "mountpoints", logPoints(wf.Mountpoints))
				w.unwatch(wf)
				w.detach(wf)
				ch.Removed = append(ch.Removed, wf)
			}
			continue
		}
		if c.Old == nil || c.Added > 0 {
			added = true
		}
		if c.Replaced {
			// None of its old mounts are left: a mount of the same device
			// number may be a new superblock, to be marked again
			// (marking an already marked superblock changes nothing).
			delete(w.unmarkable, dev)
		}
		if wf == nil {
			if len(w.cfg.Paths) > 0 || mounts.IsPseudo(f.FSType, w.nodev) {
				continue
			}
			if _, bad := w.unmarkable[dev]; bad {
				continue
			}
			if err := w.mark(f, f.MarkPath()); err != nil {
				w.log.Warn("cannot watch file system", "fstype", f.FSType, "source", f.Source,
					"mountpoint", f.MarkPath(), "reason", reason(err))
				w.unmarkable[dev] = reason(err)
				continue
			}
			ch.Added = append(ch.Added, w.watched[len(w.watched)-1])
			continue
		}
		if c.Replaced {
			if _, _, err := w.markSuperblock(f, f.MarkPath(), wf.UUID); err != nil {
				w.log.Warn("cannot watch file system again after it was remounted", "device", wf.Device, "reason", reason(err))
			}
		}
		info := *wf.Info
		info.Filesystem = w.hostView(f)
		wf.Info = &info
		if c.Replaced {
			w.readStorage(wf)
		}
		ch.Updated = append(ch.Updated, wf)
		w.log.Info("mount points changed", "device", wf.Device, "mountpoints", logPoints(wf.Mountpoints),
			"added", c.Added, "removed", c.Removed)
	}
	if len(w.cfg.Paths) > 0 && added {
		ch.Added = w.markConfiguredPaths(ch.Added)
	}
	if !ch.empty() && w.klog != nil {
		w.indexKernelNames()
	}
	if !ch.empty() && w.cfg.OnChange != nil {
		w.cfg.OnChange(ch)
	}
}

// markConfiguredPaths watches again a configured path whose file system was
// unmounted and mounted again (or first mounted after start); it appends
// what it marks to added.
func (w *Watcher) markConfiguredPaths(added []*enrich.Filesystem) []*enrich.Filesystem {
	var fss []*mounts.Filesystem
	for _, p := range w.cfg.Paths {
		if fss == nil {
			fss = w.mt.table.Filesystems()
		}
		f, point, err := mountOf(fss, p)
		if err != nil || w.isWatched(f) {
			continue
		}
		if old := w.pathMount[p]; point != old && isUnder(old, point) {
			// The path's file system was unmounted and the path is now
			// on the one below (/srv on /): that is not the file system
			// asked for, so it is not watched.
			continue
		}
		if _, bad := w.unmarkable[f.Dev()]; bad {
			continue
		}
		if err := w.mark(f, p); err != nil {
			w.log.Warn("cannot watch file system", "path", p, "reason", reason(err))
			w.unmarkable[f.Dev()] = reason(err)
			continue
		}
		w.pathMount[p] = point
		added = append(added, w.watched[len(w.watched)-1])
	}
	return added
}

// logPoints renders mount points for a log line, at most
// maxLoggedMountpoints of them.
func logPoints(ps []string) string {
	if len(ps) <= maxLoggedMountpoints {
		return fmt.Sprintf("%q", ps)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q", ps[:maxLoggedMountpoints])
	fmt.Fprintf(&b, " and %d more", len(ps)-maxLoggedMountpoints)
	return b.String()
}

func (w *Watcher) watchedDev(major, minor uint32) *enrich.Filesystem {
	for _, wf := range w.watched {
		if wf.Major == major && wf.Minor == minor {
			return wf
		}
	}
	return nil
}

func (w *Watcher) isWatched(f *mounts.Filesystem) bool { return w.watchedDev(f.Major, f.Minor) != nil }

// unwatch takes wf out of the watched set.
func (w *Watcher) unwatch(wf *enrich.Filesystem) {
	for i, x := range w.watched {
		if x == wf {
			w.watched = append(w.watched[:i:i], w.watched[i+1:]...)
			return
		}
	}
}

// detach keeps an unmounted file system in the registry, without mount
// points, so that events still queued for it (or raised by a lazily
// unmounted one) are attributed; the oldest are forgotten past maxDetached.
func (w *Watcher) detach(wf *enrich.Filesystem) {
	info := *wf.Info
	fs := *info.Filesystem
	wf.FormerMountpoints = fs.Mountpoints
	fs.Mountpoints, fs.Mounts = nil, nil
	info.Filesystem = &fs
	wf.Info = &info
	w.detached = append(w.detached, wf)
	if len(w.detached) > maxDetached {
		old := w.detached[0]
		w.detached = w.detached[1:]
		w.registry.Remove(old)
	}
}

// isUnder reports whether path is below dir (not dir itself).
func isUnder(path, dir string) bool {
	if path == dir {
		return false
	}
	return dir == "/" || strings.HasPrefix(path, dir+"/")
}
