package watch

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/storage"
)

// readStorage reads the storage stack under fs (internal/storage) and
// records it on the entry, merged with what was recorded before: a
// device-mapper device whose table was replaced by `error` no longer shows
// what it was built on, and a device that vanished shows nothing, but
// events must still name the disk. A btrfs file system's stack is those of
// its member devices. It runs when a file system is marked, when its
// mounts change, and when a device below it errs or an md array below it
// changes: not for every file system at every change of the mount table,
// which on a container host would read sysfs, /dev and the mount table
// again for each of them at each mount.
func (w *Watcher) readStorage(fs *enrich.Filesystem) {
	l := &storage.Looker{SysRoot: w.cfg.SysRoot, MountinfoPath: filepath.Join(w.cfg.ProcRoot, "self/mountinfo")}
	var stack []storage.Layer
	if fs.KernelName != "" {
		s, err := l.Lookup(fs.Major, fs.Minor, fs.Source)
		if err != nil {
			w.log.Debug("cannot read the storage stack", "device", fs.Device, "err", err)
		}
		stack = s
	} else if fs.FSType == "btrfs" && fs.UUID != "" {
		ents, _ := os.ReadDir(filepath.Join(w.cfg.SysRoot, "fs/btrfs", fs.UUID, "devices"))
		for _, e := range ents {
			s, err := l.LookupName(e.Name())
			if err != nil {
				continue
			}
			for _, ly := range s {
				if storage.Find(stack, ly.Name) == nil {
					stack = append(stack, ly)
				}
			}
		}
	}
	fs.Storage = storage.Merge(fs.Storage, stack)
}

// storageFS returns the one known file system whose recorded storage stack
// holds the device called name, or nil if none or several do
// (mounted ones first, then those unmounted since) (a disk
// with a file system on each of two partitions: a message that names the
// disk and no sector is not attributed to either).
func (w *Watcher) storageFS(name string) *enrich.Filesystem {
	// A file system still mounted goes before one unmounted since.
	for _, list := range [][]*enrich.Filesystem{w.watched, w.detached} {
		var found *enrich.Filesystem
		for _, fs := range list {
			if storage.Find(fs.Storage, name) == nil {
				continue
			}
			if found != nil {
				return nil
			}
			found = fs
		}
		if found != nil {
			return found
		}
	}
	return nil
}

// recordedPartition returns the partition of disk holding sector in any
// known file system's recorded stack, or "".
func (w *Watcher) recordedPartition(disk string, sector uint64) string {
	for _, list := range [][]*enrich.Filesystem{w.watched, w.detached} {
		for _, fs := range list {
			if p := storage.PartitionAt(fs.Storage, disk, sector); p != "" {
				return p
			}
		}
	}
	return ""
}

// wholeDiskOf reports whether a message that names disk, on which fs is
// through one of its partitions, is about fs: a message with a sector
// never is (no partition of fs holds the sector, or it would have been
// named); one without (a SCSI disk's sense data) is when every partition
// the disk has in sysfs is below fs, so that the error cannot be another
// partition's.
func (w *Watcher) wholeDiskOf(fs *enrich.Filesystem, disk string, m *kmsg.Message) bool {
	if strings.Contains(m.Text, " error, dev ") {
		return false
	}
	parts, _ := filepath.Glob(filepath.Join(w.cfg.SysRoot, "class/block", disk, disk+"*", "partition"))
	for _, p := range parts {
		if storage.Find(fs.Storage, filepath.Base(filepath.Dir(p))) == nil {
			return false
		}
	}
	return true
}
