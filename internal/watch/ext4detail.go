package watch

import (
	"slices"
	"time"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
)

// ext4 publishes its record of an error (errors_count, the first and last
// error's function, line, inode, block) from a kernel worker a moment after
// it queued the FAN_FS_ERROR event. An event never waits for it: it is
// sent Ext4Pending, and the record is read after the sink took the batch,
// in Run's goroutine, once errors_count moved — at once if ext4 was quick,
// else later (the reader's wait ends then), between ext4DetailFirst and
// ext4DetailMax — and passed to
// Config.OnExt4 as a KindExt4 event. Under a storm of errors the record of
// a file system is read at most every ext4ReadEvery (seven sysfs reads, each
// a system call the next event's read(2) would wait behind): one record
// then covers every event sent since the previous one.
const (
	ext4DetailFirst = time.Millisecond
	ext4DetailMax   = time.Second
	ext4ReadEvery   = 10 * time.Millisecond
)

// noteExt4Due remembers fs for the read of its ext4 record after the sink.
func (w *Watcher) noteExt4Due(fs *enrich.Filesystem) {
	if !slices.Contains(w.ext4Due, fs) {
		w.ext4Due = append(w.ext4Due, fs)
	}
}

// readExt4Due reads the ext4 record of each file system with events
// waiting for it whose errors_count moved (all of them if force is set,
// when Run stops) and passes it to OnExt4. For the others it looks again
// later, at ext4At, until ext4DetailMax after their first such event.
func (w *Watcher) readExt4Due(force bool) {
	now := time.Now()
	keep := w.ext4Due[:0]
	for _, fs := range w.ext4Due {
		due := fs.Ext4Due()
		late := force || !due.IsZero() && now.Sub(due) >= ext4DetailMax
		if read := fs.Ext4Read(); !late && !read.IsZero() && now.Sub(read) < ext4ReadEvery {
			keep = append(keep, fs) // read a moment ago: at ext4At
			continue
		}
		st, done, err := fs.Ext4Detail(late)
		if err != nil {
			w.log.Warn("reading ext4's record of errors", "device", fs.Device, "err", err)
		}
		if !done {
			keep = append(keep, fs)
			continue
		}
		if st != nil {
			ev := event.Event{Kind: event.KindExt4, Time: event.Time{Time: now}, Source: event.SourceExt4Record, Ext4: st}
			fs.Describe(&ev)
			w.cfg.OnExt4(&ev)
		}
	}
	clear(w.ext4Due[len(keep):])
	w.ext4Due = keep
	if len(keep) == 0 || force {
		w.ext4Wait, w.ext4At = 0, time.Time{}
		return
	}
	if w.ext4Wait == 0 {
		w.ext4Wait = ext4DetailFirst
	} else {
		w.ext4Wait = min(2*w.ext4Wait, 20*time.Millisecond)
	}
	w.ext4At = now.Add(w.ext4Wait)
}
