package watch

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
)

// Corroboration: the kernel log is text, and some kernel records carry text
// that users choose (process and file names). Classification only accepts
// the kernel's own formats at their own levels, but an event that only the
// kernel log reports is still checked against evidence no user can write:
// the file system's own error record, its refusal of I/O, its error
// counters. The policy engine runs recovery actions for a kernel-log event
// only when it is corroborated, or when the rule opts in.

// corroborationSlack is how far before the message an ext4 error recorded
// in the superblock may be and still be this error: ext4 records times to
// the second.
const corroborationSlack = 2 * time.Second

// corroborate sets e.CorroboratedBy if something other than the kernel log
// shows that the error of e, a kernel-log event about fs, is real. It never
// writes to the file system: it reads ext4's sysfs record, or opens the
// root directory of an XFS file system (which a shut down XFS refuses with
// EIO before any I/O).
func (w *Watcher) corroborate(e *event.Event, fs *enrich.Filesystem, msgTime time.Time) {
	if e.Source != event.SourceKmsg || e.Kind != event.KindError || fs == nil {
		return
	}
	switch fs.FSType {
	case "ext4", "ext3", "ext2":
		st, err := fs.Ext4State()
		if err == nil && st != nil && st.LastError != nil && st.ErrorsCount > 0 &&
			!st.LastError.Time.Before(msgTime.Add(-corroborationSlack).Truncate(time.Second)) {
			e.CorroboratedBy = event.CorroboratedExt4Count
		}
	case "xfs":
		// An unmounted file system (its events may still be due) has no
		// mount to probe: what is at its old mount point now is another.
		if len(fs.Mountpoints) > 0 && xfsRefusesIO(fs.MarkPath()) {
			e.CorroboratedBy = event.CorroboratedXFSShutdown
		}
	case "btrfs":
		if t, ok := w.btrfsIncreased[fs]; ok && !t.Before(msgTime.Add(-2*w.klog.corr.hold)) {
			e.CorroboratedBy = event.CorroboratedBtrfsCounters
		}
	}
}

// xfsRefusesIO reports whether opening the directory at mountpoint fails
// with EIO, as it does on a shut down XFS file system (xfs_dir_open checks
// for a shutdown first).
func xfsRefusesIO(mountpoint string) bool {
	fd, err := unix.Open(mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		unix.Close(fd)
		return false
	}
	return errors.Is(err, unix.EIO)
}

// deviceFieldAgrees reports whether the structured DEVICE field of m's
// record, where the kernel gave one ("b8:0": a block device by number, as
// dev_printk records carry), names the device the text names. A record
// whose text and field disagree is not trusted.
func deviceFieldAgrees(sysRoot string, m *kmsg.Message) bool {
	dev, ok := m.Record.Fields["DEVICE"]
	if !ok || !strings.HasPrefix(dev, "b") {
		return true
	}
	major, minor, err := kmsg.DeviceNumber(sysRoot, m.Device)
	if err != nil {
		return false
	}
	return dev == fmt.Sprintf("b%d:%d", major, minor)
}
