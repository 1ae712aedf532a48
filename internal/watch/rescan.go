package watch

import (
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/mounts"
)

// pastDeadline is a read deadline that has passed: setting it makes a
// pending read return at once.
var pastDeadline = time.Unix(1, 0)

// maxDetached bounds how many unmounted file systems stay in the registry.
const maxDetached = 64

// rescan re-reads the mount table and brings the watched set up to date:
// file systems mounted since (when watching everything) are marked, mount
// point changes (bind mounts, moves, unmounts of one of several mounts) are
// recorded, and file systems no longer mounted anywhere are dropped from
// the watched set. It runs in Run's goroutine.
func (w *Watcher) rescan() {
	w.rescans.Add(1)
	ms, err := mounts.ReadMountinfo(filepath.Join(w.cfg.ProcRoot, "self/mountinfo"))
	if err != nil {
		w.log.Error("re-reading the mount table", "err", err)
		return
	}
	fss := mounts.Group(ms)
	w.refreshHostView()
	byDev := make(map[string]*mounts.Filesystem, len(fss))
	for _, f := range fss {
		byDev[f.Dev()] = f
	}
	var ch Change
	kept := w.watched[:0:0]
	for _, wf := range w.watched {
		f, ok := byDev[wf.Dev()]
		if !ok {
			w.log.Info("file system no longer mounted; not watched any more (its history stays)",
				"fstype", wf.FSType, "device", wf.Device, "uuid", wf.UUID, "mountpoints", wf.Mountpoints)
			w.detach(wf)
			ch.Removed = append(ch.Removed, wf)
			continue
		}
		kept = append(kept, wf)
		if !sameMounts(f, wf.Filesystem) {
			// A mount of the same device number that shares no mount with
			// the old set may be a new superblock: mark it again (marking
			// an already marked superblock changes nothing).
			if !anyCommonMount(f, wf.Filesystem) {
				if _, _, err := w.markSuperblock(f, f.MarkPath(), wf.UUID); err != nil {
					w.log.Warn("cannot watch file system again after it was remounted", "device", wf.Device, "reason", reason(err))
				}
			}
			info := *wf.Info
			info.Filesystem = w.hostView(f)
			wf.Info = &info
			w.readStorage(wf)
			ch.Updated = append(ch.Updated, wf)
			w.log.Info("mount points changed", "device", wf.Device, "mountpoints", wf.Mountpoints)
		}
	}
	w.watched = kept
	for dev := range w.unmarkable {
		if byDev[dev] == nil {
			delete(w.unmarkable, dev)
		}
	}
	if len(w.cfg.Paths) > 0 {
		// A configured path whose file system was unmounted and mounted
		// again (or first mounted after start) is watched again.
		for _, p := range w.cfg.Paths {
			f, point, err := mountOf(fss, p)
			if err != nil || w.isWatched(f) {
				continue
			}
			if old := w.pathMount[p]; point != old && isUnder(old, point) {
				// The path's file system was unmounted and the path is
				// now on the one below (/srv on /): that is not the
				// file system asked for, so it is not watched.
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
			ch.Added = append(ch.Added, w.watched[len(w.watched)-1])
		}
	} else {
		for _, f := range fss {
			if mounts.IsPseudo(f.FSType, w.nodev) || w.isWatched(f) {
				continue
			}
			if _, bad := w.unmarkable[f.Dev()]; bad {
				continue
			}
			if err := w.mark(f, f.MarkPath()); err != nil {
				w.log.Warn("cannot watch file system", "fstype", f.FSType, "source", f.Source,
					"mountpoint", f.MarkPath(), "reason", reason(err))
				w.unmarkable[f.Dev()] = reason(err)
				continue
			}
			ch.Added = append(ch.Added, w.watched[len(w.watched)-1])
		}
	}
	if !ch.empty() && w.klog != nil {
		w.indexKernelNames()
	}
	if !ch.empty() && w.cfg.OnChange != nil {
		w.cfg.OnChange(ch)
	}
}

func (w *Watcher) isWatched(f *mounts.Filesystem) bool {
	for _, wf := range w.watched {
		if wf.Major == f.Major && wf.Minor == f.Minor {
			return true
		}
	}
	return false
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

func sameMounts(a, b *mounts.Filesystem) bool {
	if len(a.Mounts) != len(b.Mounts) {
		return false
	}
	for i := range a.Mounts {
		if a.Mounts[i].ID != b.Mounts[i].ID || a.Mounts[i].Point != b.Mounts[i].Point {
			return false
		}
	}
	return true
}

func anyCommonMount(a, b *mounts.Filesystem) bool {
	for _, m := range a.Mounts {
		if slices.ContainsFunc(b.Mounts, func(n mounts.Mount) bool { return n.ID == m.ID }) {
			return true
		}
	}
	return false
}

// isUnder reports whether path is below dir (not dir itself).
func isUnder(path, dir string) bool {
	if path == dir {
		return false
	}
	return dir == "/" || strings.HasPrefix(path, dir+"/")
}
