package watch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/storage"
)

// restackEvery bounds how often block errors make the watcher read a file
// system's storage stack again.
const restackEvery = time.Second

// kernelLog is the watcher's second source of errors: the kernel log
// (/dev/kmsg). Up to Linux 6.19 only ext4 sends FAN_FS_ERROR; XFS, btrfs
// and the block layer report their errors only there. Its messages are
// classified (kmsg.Classify), attributed to a watched file system by the
// device they name, and handed to the correlator, which attaches them to
// fanotify events or turns them into events of their own. A btrfs message
// also makes the watcher read that file system's device error counters and
// report the ones that went up.
//
// The log is read without waiting (kmsg.Options.NoWait) and only by the
// reader goroutine, when the ppoll it waits in says the log has records
// (reader.go): with a batch of fanotify events, before them, so that a
// message the kernel logged before it reported the error is there to be
// attached, or alone. While messages wait for their fanotify event, the
// reader's wait ends when the first of them falls due (dueAt).
type kernelLog struct {
	r       *kmsg.Reader
	sysRoot string
	corr    *correlator
	// names maps kernel device names ("loop0", "sda1", "dm-0") to the
	// file system on them; known holds the file systems indexed so far.
	names map[string]*enrich.Filesystem
	known map[*enrich.Filesystem]bool
	// btrfs remembers the error counters of btrfs file systems.
	btrfs btrfs.Tracker
	// wanted makes the reader look at the log without new records: btrfs
	// counter events wait. dueAt is when the first held message falls due
	// (zero: none held).
	wanted atomic.Bool
	dueAt  time.Time
	// dead is set once reading failed for good.
	dead bool
}

// openKernelLog opens the kernel log at its end: what was logged before
// start is not read (errors recorded by ext4 before start are found from
// its superblock instead).
func openKernelLog(path, sysRoot string, hold time.Duration) (*kernelLog, error) {
	r, err := kmsg.Open(path, kmsg.Options{NoWait: true})
	if err != nil {
		return nil, err
	}
	return &kernelLog{r: r, sysRoot: sysRoot, corr: newCorrelator(hold),
		names: map[string]*enrich.Filesystem{}, known: map[*enrich.Filesystem]bool{}}, nil
}

// close releases the kernel log, once Run's loop has ended.
func (k *kernelLog) close() {
	k.r.Close()
}

// indexKernelNames maps the kernel names of the devices under each known
// file system (watched, or unmounted but kept) to it: its block device, or
// the member devices of a btrfs file system. For a btrfs file system seen
// for the first time it reads the baseline of the error counters; what the
// correlator holds about file systems gone for good is dropped.
func (w *Watcher) indexKernelNames() {
	k := w.klog
	clear(k.names)
	all := append(append([]*enrich.Filesystem(nil), w.detached...), w.watched...)
	for _, fs := range all {
		if fs.KernelName != "" {
			k.names[fs.KernelName] = fs
		}
		if fs.FSType == "btrfs" && fs.UUID != "" {
			if ents, err := os.ReadDir(filepath.Join(k.sysRoot, "fs/btrfs", fs.UUID, "devices")); err == nil {
				for _, e := range ents {
					k.names[e.Name()] = fs
				}
			}
		}
		if !k.known[fs] {
			k.known[fs] = true
			if fs.FSType == "btrfs" && len(fs.Mountpoints) > 0 {
				w.btrfsBaseline(fs)
			}
		}
	}
	for fs := range k.known {
		if !slices.Contains(all, fs) {
			delete(k.known, fs)
			delete(w.btrfsIncreased, fs)
			delete(w.restacked, fs)
			k.corr.forget(fs)
		}
	}
}

// btrfsBaseline reads the error counters of a btrfs file system seen for
// the first time, so that later increases are reported; counters that are
// already non-zero are logged.
func (w *Watcher) btrfsBaseline(fs *enrich.Filesystem) {
	uuid, devs, err := btrfs.Stats(fs.MarkPath(), w.klog.sysRoot)
	if err != nil {
		w.log.Warn("cannot read the btrfs device error counters", "device", fs.Device, "err", err)
		return
	}
	if prev := w.cfg.BtrfsRestore; prev != nil {
		// Counters never recorded before are reported when non-zero:
		// whoever restores also records, so that happens once.
		w.klog.btrfs.ReportBaseline = true
		if devs := prev(uuid); devs != nil {
			w.klog.btrfs.Restore(uuid, devs)
		}
	}
	incs := w.klog.btrfs.Update(uuid, devs)
	for _, d := range devs {
		if d.Total() > 0 {
			w.log.Warn("btrfs device has recorded errors", "device", fs.Device, "devid", d.DevID, "path", d.Path,
				"write", d.WriteErrs, "read", d.ReadErrs, "flush", d.FlushErrs, "corruption", d.CorruptionErrs, "generation", d.GenerationErrs)
		}
	}
	if len(incs) > 0 {
		// Increases since a reading restored from before (the daemon
		// was stopped): report them with the next batch.
		w.btrfsPending = append(w.btrfsPending, btrfsEvents(fs, incs, time.Now(), nil)...)
	}
	w.btrfsSaved(uuid)
}

// btrfsSaved hands the counters of a btrfs file system to BtrfsSave.
func (w *Watcher) btrfsSaved(uuid string) {
	if save := w.cfg.BtrfsSave; save != nil {
		save(uuid, w.klog.btrfs.Last(uuid))
	}
}

// readKernelLog reads every record the kernel log has, without waiting,
// and appends to out the events they make: lost records, and increases of
// btrfs error counters. Messages about watched file systems go to the
// correlator.
func (w *Watcher) readKernelLog(out []event.Event) []event.Event {
	k := w.klog
	if k.dead {
		return out
	}
	now := time.Now()
	var checkBtrfs, restack []*enrich.Filesystem
	for {
		it, err := k.r.Next()
		if err != nil {
			if errors.Is(err, kmsg.ErrNoRecord) {
				break
			}
			if errors.Is(err, kmsg.ErrMalformed) {
				w.log.Debug("unreadable kernel log record", "err", err)
				continue
			}
			w.log.Error("reading the kernel log failed; it is no longer read", "err", err)
			w.stopKernelLog()
			return out
		}
		switch it := it.(type) {
		case kmsg.Gap:
			w.log.Error("kernel log records were lost before fshealth read them: file system errors logged there may have been missed", "gap", it.String())
			out = append(out, event.Event{Kind: event.KindOverflow, Time: event.Time{Time: now}, Source: event.SourceKmsg,
				Message: it.String() + " (the kernel overwrote them before fshealth read them): file system errors logged there may have been missed"})
		case kmsg.Record:
			m, ok := kmsg.Classify(it)
			if !ok {
				continue
			}
			if !deviceFieldAgrees(k.sysRoot, &m) {
				w.log.Warn("kernel log record ignored: its DEVICE field does not name the device its text names", "device", m.Device, "field", it.Fields["DEVICE"])
				continue
			}
			fs := w.kernelLogFS(&m)
			if fs == nil {
				w.log.Debug("kernel log error about a device no watched file system is on", "device", m.Device, "text", m.Text)
				continue
			}
			if m.LostReport {
				// The kernel could not deliver this error's
				// FAN_FS_ERROR: the message is its only report. It
				// stands for that event, messages around it included.
				e := kmsgEvent(&kernelMsg{Message: m, fs: fs, at: now})
				e.LostReport = true
				w.corroborate(&e, fs, now)
				e.Message = "the kernel could not deliver this error as a FAN_FS_ERROR event and logged it instead"
				w.findKernelLogPath(&e, fs)
				k.corr.claim(&e, fs, now)
				out = append(out, e)
				continue
			}
			k.corr.message(kernelMsg{Message: m, fs: fs, at: now})
			if m.FSType == kmsg.FSBlock && !slices.Contains(restack, fs) {
				restack = append(restack, fs)
			}
			if fs.FSType == "btrfs" && !slices.Contains(checkBtrfs, fs) {
				checkBtrfs = append(checkBtrfs, fs)
			}
		}
	}
	for _, fs := range checkBtrfs {
		out = w.btrfsCheck(fs, now, out)
	}
	// A device below the file system erred: its events describe the
	// stack as it is now (an md member marked faulty, say), merged with
	// what was recorded; at most once a second, however many errors a
	// dying disk logs.
	for _, fs := range restack {
		if now.Sub(w.restacked[fs]) < restackEvery {
			continue
		}
		w.restacked[fs] = now
		w.readStorage(fs)
	}
	if len(w.btrfsPending) > 0 {
		out = append(out, w.btrfsPending...)
		w.btrfsPending = nil
	}
	return out
}

// kernelLogFS returns the watched file system a message is about, or nil:
// the file system on the device it names; for the block layer, the one on
// the partition that holds the failed sector, or on a device stacked on it
// (device mapper, md).
func (w *Watcher) kernelLogFS(m *kmsg.Message) *enrich.Filesystem {
	k := w.klog
	name := m.Device
	if m.FSType == kmsg.FSBlock && strings.Contains(m.Text, " error, dev ") {
		// Every status ("I/O", "critical medium", ...) prints the
		// sector of the whole disk: find its partition, in sysfs or, if
		// the disk is gone from there, in the recorded stacks.
		if p, err := kmsg.PartitionOf(k.sysRoot, name, m.Sector); err == nil && p != name {
			name = p
		} else if p := w.recordedPartition(name, m.Sector); p != "" {
			name = p
		}
	}
	if fs := k.names[name]; fs != nil {
		return fs
	}
	if m.FSType != kmsg.FSBlock {
		return nil
	}
	// The device is in the recorded stack of a file system, even if it
	// no longer shows in sysfs (a failed dm device loses its slaves).
	if fs := w.storageFS(name); fs != nil {
		if name == m.Device && storage.HasPartitions(fs.Storage, name) && !w.wholeDiskOf(fs, name, m) {
			return nil
		}
		return fs
	}
	// Follow holders up a short stack: sda2 → dm-0 → dm-1.
	frontier := []string{name}
	for depth := 0; depth < 4 && len(frontier) > 0; depth++ {
		var next []string
		for _, n := range frontier {
			ents, err := os.ReadDir(filepath.Join(k.sysRoot, "class/block", n, "holders"))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if fs := k.names[e.Name()]; fs != nil {
					return fs
				}
				next = append(next, e.Name())
			}
		}
		frontier = next
	}
	return nil
}

// btrfsCheck reads the error counters of a btrfs file system its messages
// named and appends an event for each counter that went up; the pending
// messages of the file system are attached to them.
func (w *Watcher) btrfsCheck(fs *enrich.Filesystem, now time.Time, out []event.Event) []event.Event {
	if len(fs.Mountpoints) == 0 {
		return out
	}
	uuid, devs, err := btrfs.Stats(fs.MarkPath(), w.klog.sysRoot)
	if err != nil {
		w.log.Warn("cannot read the btrfs device error counters", "device", fs.Device, "err", err)
		return out
	}
	incs := w.klog.btrfs.Update(uuid, devs)
	if len(incs) == 0 {
		return out
	}
	w.btrfsSaved(uuid)
	w.btrfsIncreased[fs] = now
	return append(out, btrfsEvents(fs, incs, now, w.klog.corr)...)
}

// btrfsEvents makes one event per counter increase. With a correlator, the
// file system's pending kernel messages are attached.
func btrfsEvents(fs *enrich.Filesystem, incs []btrfs.Increase, now time.Time, corr *correlator) []event.Event {
	out := make([]event.Event, 0, len(incs))
	for i := range incs {
		inc := incs[i]
		errno := unix.EIO
		switch inc.Counter {
		case btrfs.CounterCorruption:
			errno = unix.EBADMSG // checksum or header mismatch: the kernel's EFSBADCRC
		case btrfs.CounterGeneration:
			errno = unix.EUCLEAN // an older copy than expected: lost writes
		}
		e := event.Event{Kind: event.KindError, Time: event.Time{Time: now}, Source: event.SourceBtrfs,
			Errno: int(errno), Error: event.ErrnoName(int(errno)), ErrorText: errno.Error(), ErrorCount: uint32(min(inc.Delta(), 1<<32-1)),
			Storage: fs.Storage, Btrfs: &inc, Message: inc.String()}
		fs.Describe(&e)
		if corr != nil {
			corr.claim(&e, fs, now)
		}
		out = append(out, e)
	}
	return out
}

// kernelLogDue appends the events of held messages that fell due, and
// notes when the next one does (the reader's wait ends then).
func (w *Watcher) kernelLogDue(out []event.Event) []event.Event {
	out, w.klog.dueAt = w.klog.corr.due(time.Now(), out)
	return out
}

// wakeForKernelLog makes the reader goroutine look at the kernel log.
func (w *Watcher) wakeForKernelLog() {
	w.klog.wanted.Store(true)
	w.wait.interrupt()
}

// stopKernelLog stops reading the kernel log after a read failed.
func (w *Watcher) stopKernelLog() {
	w.klog.dead = true
}
