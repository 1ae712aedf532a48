package fanotify

import (
	"fmt"
	"syscall"
)

// Mask is a set of fanotify event bits (FAN_*), as found in an event's mask.
type Mask uint64

// Event bits this package gives names to. Their values are the kernel's ABI.
const (
	// FSError is FAN_FS_ERROR: a file system reported an error (Linux 5.16+).
	FSError Mask = 0x00008000
	// QueueOverflow is FAN_Q_OVERFLOW: the group's event queue overflowed and
	// events were lost.
	QueueOverflow Mask = 0x00004000
	// MountAttach is FAN_MNT_ATTACH: a mount was attached (Linux 6.15+).
	MountAttach Mask = 0x01000000
	// MountDetach is FAN_MNT_DETACH: a mount was detached (Linux 6.15+).
	MountDetach Mask = 0x02000000
)

// Has reports whether every bit of x is set in m.
func (m Mask) Has(x Mask) bool { return m&x == x }

// NoFD is FAN_NOFD, the fd value of events that carry no file descriptor.
const NoFD = -1

// MetadataVersion is FANOTIFY_METADATA_VERSION, the only event layout version
// this package understands.
const MetadataVersion = 3

// MetadataSize is sizeof(struct fanotify_event_metadata).
const MetadataSize = 24

// Info record types (FAN_EVENT_INFO_TYPE_*).
const (
	InfoFID      = 1
	InfoDFIDName = 2
	InfoDFID     = 3
	InfoPIDFD    = 4
	InfoError    = 5
	InfoRange    = 6
	InfoMount    = 7
)

// Records is the set of info records an Event carried, one bit per kind.
type Records uint8

// Record kinds an Event may carry.
const (
	HasError  Records = 1 << iota // an error record: Errno and ErrorCount are set
	HasFID                        // a FID record: FID is set
	HasDirFID                     // a DFID or DFID_NAME record: DirFID (and maybe Name) are set
	HasPIDFD                      // a pidfd record: PIDFD is set
	HasMount                      // a mount record: MountID is set
)

// FSID is a file system identifier, as statfs(2) reports it in f_fsid and as
// FID records carry it: two 32-bit words.
type FSID [2]int32

// String formats the fsid as two 8-digit hex words joined by a colon.
func (f FSID) String() string {
	return fmt.Sprintf("%08x:%08x", uint32(f[0]), uint32(f[1]))
}

// FileID is the body of a FID-style record: the file system it names and an
// opaque file handle within it.
type FileID struct {
	FSID   FSID
	Handle Handle
}

// Event is one decoded fanotify event. Fields belonging to records the event
// did not carry are zero; Records says which were present.
type Event struct {
	// Mask is the event's mask, e.g. FSError or QueueOverflow.
	Mask Mask
	// FD is the event's file descriptor, NoFD for groups that report file
	// identifiers (FAN_REPORT_FID) and for overflow events.
	FD int32
	// PID is the process that caused the event (for FSError: the task that
	// hit the error, often a kernel worker).
	PID int32
	// Records lists the info records the event carried.
	Records Records

	// Errno is the error the file system reported (error record).
	Errno syscall.Errno
	// ErrorCount is how many errors the kernel folded into this event since
	// the previous one was read (error record). It is at least 1.
	ErrorCount uint32

	// FID names the object the event is about (FAN_EVENT_INFO_TYPE_FID).
	FID FileID
	// DirFID names the directory of the object (DFID or DFID_NAME records).
	DirFID FileID
	// Name is the entry name of a DFID_NAME record.
	Name string
	// PIDFD is a pidfd for PID (FAN_REPORT_PIDFD); the caller must close it.
	PIDFD int32
	// MountID is the unique mount id of a mount event (FAN_REPORT_MNT).
	MountID uint64
}

// IsOverflow reports whether the event says the queue overflowed.
func (e *Event) IsOverflow() bool { return e.Mask&QueueOverflow != 0 }

// IsFSError reports whether the event is a file system error report.
func (e *Event) IsFSError() bool { return e.Mask&FSError != 0 }
