package watch

import "github.com/fshealth/fshealth/internal/mounts"

// hostView returns f with the host's mount points (Config.HostView), or f
// when there is no host view: the mount points that are reported, stored
// and matched by rules. f's Mounts, through which the file system is
// opened and marked, stay this namespace's.
func (w *Watcher) hostView(f *mounts.Filesystem) *mounts.Filesystem {
	return w.cfg.HostView.Apply(f)
}

// refreshHostView re-reads the host's mount table, once per reading of
// this namespace's.
func (w *Watcher) refreshHostView() {
	if err := w.cfg.HostView.Refresh(); err != nil {
		w.log.Warn("reporting this mount namespace's mount points where the host's changed: cannot read the host's mount table", "err", err)
	}
}
