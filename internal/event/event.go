// Package event defines fshealth's event: one file system error (or a lost
// events notice) enriched with everything an admin needs to act on it. The
// same object is what `fshealth watch --json` prints, one per line.
package event

import (
	"encoding/json"
	"time"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/storage"
)

// Kinds of event.
const (
	// KindError is a file system error reported by the kernel.
	KindError = "error"
	// KindOverflow says the kernel's event queue overflowed: errors were lost.
	KindOverflow = "overflow"
	// KindPath follows an error event whose path was pending: it gives
	// the path of the event's inode (or why none was found), found
	// read-only from the device. It is not an error.
	KindPath = "path"
	// KindExt4 follows ext4 error events sent before ext4 had published
	// its record of them (Ext4Pending): it carries the file system's
	// recorded error state (Ext4) as read once its error count moved. It
	// is not an error.
	KindExt4 = "ext4"
)

// Sources of events.
const (
	// SourceFanotify marks events received as FAN_FS_ERROR.
	SourceFanotify = "fanotify"
	// SourceRecorded marks errors found in a file system's own record
	// (ext4's superblock) that were never reported: they happened while
	// fshealth was not running, or the file system was mounted elsewhere.
	SourceRecorded = "recorded"
	// SourceKmsg marks errors found only in the kernel log (/dev/kmsg):
	// on file systems, or of kinds, for which the kernel sends no
	// FAN_FS_ERROR (XFS before Linux 7.0, btrfs, the block layer).
	SourceKmsg = "kmsg"
	// CorroboratedExt4Count: ext4's own error record (errors_count, the
	// last error's time) changed with the message.
	CorroboratedExt4Count = "ext4-errors-count"
	// CorroboratedXFSShutdown: the XFS file system refuses I/O (opening
	// its root directory fails with EIO), as a shut down one does.
	CorroboratedXFSShutdown = "xfs-shutdown"
	// CorroboratedBtrfsCounters: btrfs's device error counters went up with
	// the message.
	CorroboratedBtrfsCounters = "btrfs-device-counters"
	// SourcePathfind marks KindPath events: the path was read from the
	// file system's device (package pathfind).
	SourcePathfind = "pathfind"
	// SourceExt4Record marks KindExt4 events: read from ext4's record in
	// sysfs (/sys/fs/ext4/<dev>/).
	SourceExt4Record = "ext4-record"
	// SourceBtrfs marks increases of a btrfs device's error counters
	// (write, read, flush, corruption, generation).
	SourceBtrfs = "btrfs-counters"
)

// TimeLayout is RFC 3339 with nanoseconds, always nine digits.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Event is one enriched file system event. Fields marked omitempty are
// present only when known; the others are always present.
type Event struct {
	// ID is the event's unique id in the daemon's history; `watch` leaves
	// it empty.
	ID string `json:"id,omitempty"`
	// Kind is KindError, KindOverflow, KindPath, KindExt4 or KindRedundancy.
	Kind string `json:"kind"`
	// Time is when fshealth received the event.
	Time Time `json:"time"`
	// Source says where the event came from, e.g. SourceFanotify.
	Source string `json:"source"`

	// Errno is the error number the file system reported.
	Errno int `json:"errno"`
	// Error is Errno's symbolic name, e.g. "EUCLEAN".
	Error string `json:"error"`
	// ErrorText is Errno's description, e.g. "structure needs cleaning".
	ErrorText string `json:"error_text"`
	// ErrorCount is how many errors the kernel folded into this event.
	ErrorCount uint32 `json:"error_count"`
	// PID is the process that hit the error (often a kernel worker).
	PID int `json:"pid"`

	// FSID is the file system id from the event, as "hex:hex".
	FSID string `json:"fsid"`
	// Device is the device node, e.g. "/dev/sda1".
	Device string `json:"device"`
	// DeviceNumber is the superblock's "major:minor".
	DeviceNumber string `json:"device_number,omitempty"`
	// FSType is the file system type, e.g. "ext4".
	FSType string `json:"fstype"`
	// UUID is the file system UUID.
	UUID string `json:"uuid"`
	// Label is the file system label.
	Label string `json:"label,omitempty"`
	// Mountpoints lists every mount point of the file system.
	Mountpoints []string `json:"mountpoints"`
	// Unmounted is set when the file system was unmounted before fshealth
	// read the event (it was queued, or the file system was unmounted
	// lazily): Mountpoints are then the mount points it had.
	Unmounted bool `json:"unmounted,omitempty"`

	// Storage is the storage stack under the file system, from its
	// device down to the disks, as recorded when it was last read (so it
	// is known after a device failed or vanished).
	Storage []storage.Layer `json:"storage,omitempty"`

	// Inode and Generation identify the inode the error is about; both are
	// absent for errors about the file system as a whole. An error known
	// from the kernel log alone has an Inode and no Generation (the kernel
	// prints none).
	Inode      *uint64 `json:"inode,omitempty"`
	Generation *uint32 `json:"generation,omitempty"`
	// Handle is the raw file handle when it could not be decoded.
	Handle *Handle `json:"handle,omitempty"`
	// Path is the inode's path, when it could be resolved.
	Path string `json:"path,omitempty"`
	// PathError says why the inode's path could not be resolved.
	PathError string `json:"path_error,omitempty"`
	// PathPending says the inode's path is being looked up (read-only,
	// from the device): it follows as a KindPath event, and the daemon
	// adds it to this event in its history.
	PathPending bool `json:"path_pending,omitempty"`

	// Ext4 is the file system's recorded error state, for ext4.
	Ext4 *ext4.State `json:"ext4,omitempty"`
	// Ext4Pending says ext4's record of this error had not been read when
	// the event was sent (ext4 publishes it a moment after it reports the
	// error, and an event never waits for it): it follows as a KindExt4
	// event, and the daemon adds it to this event in its history.
	Ext4Pending bool `json:"ext4_pending,omitempty"`
	// Redundancy is, on a KindRedundancy event, what changed in the
	// redundancy of an array under the file system.
	Redundancy *storage.Redundancy `json:"redundancy,omitempty"`
	// Btrfs is the device error counter that went up, for SourceBtrfs.
	Btrfs *btrfs.Increase `json:"btrfs,omitempty"`

	// KernelMessage is the kernel log message about this error, as the
	// kernel logged it (non-printable bytes escaped as \xNN).
	KernelMessage string `json:"kernel_message,omitempty"`
	// LostReport is set on a SourceKmsg event that stands for a
	// FAN_FS_ERROR report the kernel could not deliver and logged instead
	// (Linux 7.0+).
	LostReport bool `json:"lost_report,omitempty"`
	// CorroboratedBy names, on a SourceKmsg event, what other than the
	// kernel log shows that the error is real (CorroboratedExt4Count,
	// CorroboratedXFSShutdown, CorroboratedBtrfsCounters); "" when the
	// kernel log is the only evidence. Recovery actions do not run on
	// uncorroborated kernel-log events unless their rule says so.
	CorroboratedBy string `json:"corroborated_by,omitempty"`

	// Message is a human explanation, e.g. for overflow events.
	Message string `json:"message,omitempty"`

	// fsJSON is the encoding of the members from FSID to Storage, kept
	// by the file system (UseFSJSON).
	fsJSON *FSJSON
}

// Handle is a file handle the event carried but fshealth could not decode.
type Handle struct {
	Type  int32  `json:"type"`
	Bytes string `json:"bytes"` // hex
}

// Time is a time.Time that marshals as RFC 3339 with nanoseconds.
type Time struct{ time.Time }

// MarshalJSON formats t with TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	return t.appendJSON(make([]byte, 0, len(TimeLayout)+2)), nil
}

// appendJSON appends t as MarshalJSON writes it.
func (t Time) appendJSON(b []byte) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// UnmarshalJSON parses an RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// FilesystemKey names a file system across restarts and device renames: its
// UUID, else its device, else "fsid:" and its fsid; "" if none is known.
// History, health and policy incidents are all keyed by it.
func FilesystemKey(uuid, device, fsid string) string {
	switch {
	case uuid != "":
		return uuid
	case device != "":
		return device
	case fsid != "":
		return "fsid:" + fsid
	}
	return ""
}

// Gen is the event's inode generation, 0 when it has none (an error
// known from the kernel log alone). Path lookups and their results match
// events by inode and Gen: 0 means "any generation".
func (e *Event) Gen() uint32 {
	if e.Generation == nil {
		return 0
	}
	return *e.Generation
}

// FSKey returns FilesystemKey of the event's file system.
func (e *Event) FSKey() string { return FilesystemKey(e.UUID, e.Device, e.FSID) }
