package fanotify

import (
	"errors"
	"fmt"
	"syscall"
)

// Mask is a set of fanotify event bits (FAN_*), as found in an event's mask.
type Mask uint64

// Event bits (FAN_*). Their values are the kernel's ABI; the comment of each
// names the first Linux version that reports it.
const (
	// Access is FAN_ACCESS: a file was read (2.6.37).
	Access Mask = 0x00000001
	// Modify is FAN_MODIFY: a file was written (2.6.37).
	Modify Mask = 0x00000002
	// Attrib is FAN_ATTRIB: metadata changed (5.1, groups reporting file
	// identifiers only).
	Attrib Mask = 0x00000004
	// CloseWrite is FAN_CLOSE_WRITE: a file opened for writing was closed
	// (2.6.37).
	CloseWrite Mask = 0x00000008
	// CloseNoWrite is FAN_CLOSE_NOWRITE: a file opened read-only was closed
	// (2.6.37).
	CloseNoWrite Mask = 0x00000010
	// Open is FAN_OPEN: a file or directory was opened (2.6.37).
	Open Mask = 0x00000020
	// MovedFrom is FAN_MOVED_FROM: an entry was moved out of a marked
	// directory (5.1, file identifier groups).
	MovedFrom Mask = 0x00000040
	// MovedTo is FAN_MOVED_TO: an entry was moved into a marked directory
	// (5.1, file identifier groups).
	MovedTo Mask = 0x00000080
	// Create is FAN_CREATE: an entry was created in a marked directory (5.1,
	// file identifier groups).
	Create Mask = 0x00000100
	// Delete is FAN_DELETE: an entry was deleted from a marked directory
	// (5.1, file identifier groups).
	Delete Mask = 0x00000200
	// DeleteSelf is FAN_DELETE_SELF: a marked file or directory was deleted
	// (5.1, file identifier groups).
	DeleteSelf Mask = 0x00000400
	// MoveSelf is FAN_MOVE_SELF: a marked file or directory was moved (5.1,
	// file identifier groups).
	MoveSelf Mask = 0x00000800
	// OpenExec is FAN_OPEN_EXEC: a file was opened to be executed (5.0).
	OpenExec Mask = 0x00001000
	// QueueOverflow is FAN_Q_OVERFLOW: the group's event queue overflowed and
	// events were lost.
	QueueOverflow Mask = 0x00004000
	// FSError is FAN_FS_ERROR: a file system reported an error (5.16).
	FSError Mask = 0x00008000
	// OpenPerm is FAN_OPEN_PERM: permission to open a file is asked
	// (2.6.37, content or pre-content groups).
	OpenPerm Mask = 0x00010000
	// AccessPerm is FAN_ACCESS_PERM: permission to read a file is asked
	// (2.6.37, content or pre-content groups).
	AccessPerm Mask = 0x00020000
	// OpenExecPerm is FAN_OPEN_EXEC_PERM: permission to open a file for
	// execution is asked (5.0, content or pre-content groups).
	OpenExecPerm Mask = 0x00040000
	// PreAccess is FAN_PRE_ACCESS: permission to access a range of a file is
	// asked before its content is read or written (6.14, pre-content groups).
	// The event carries a range record.
	PreAccess Mask = 0x00100000
	// MountAttach is FAN_MNT_ATTACH: a mount was attached (6.15).
	MountAttach Mask = 0x01000000
	// MountDetach is FAN_MNT_DETACH: a mount was detached (6.15).
	MountDetach Mask = 0x02000000
	// EventOnChild is FAN_EVENT_ON_CHILD: in a mark's mask, report events of
	// a marked directory's direct children too (2.6.37).
	EventOnChild Mask = 0x08000000
	// Rename is FAN_RENAME: an entry was renamed; the event carries the old
	// and the new name (5.17, groups reporting names).
	Rename Mask = 0x10000000
	// OnDir is FAN_ONDIR: in a mark's mask, report events on directories
	// too; in an event, the object is a directory (2.6.37).
	OnDir Mask = 0x40000000

	// Close is CloseWrite|CloseNoWrite.
	Close = CloseWrite | CloseNoWrite
	// Move is MovedFrom|MovedTo.
	Move = MovedFrom | MovedTo
)

// maskNames lists the named bits in the order String prints them.
var maskNames = [...]struct {
	bit  Mask
	name string
}{
	{Access, "access"},
	{Modify, "modify"},
	{Attrib, "attrib"},
	{CloseWrite, "close_write"},
	{CloseNoWrite, "close_nowrite"},
	{Open, "open"},
	{MovedFrom, "moved_from"},
	{MovedTo, "moved_to"},
	{Create, "create"},
	{Delete, "delete"},
	{DeleteSelf, "delete_self"},
	{MoveSelf, "move_self"},
	{OpenExec, "open_exec"},
	{QueueOverflow, "q_overflow"},
	{FSError, "fs_error"},
	{OpenPerm, "open_perm"},
	{AccessPerm, "access_perm"},
	{OpenExecPerm, "open_exec_perm"},
	{PreAccess, "pre_access"},
	{MountAttach, "mnt_attach"},
	{MountDetach, "mnt_detach"},
	{EventOnChild, "event_on_child"},
	{Rename, "rename"},
	{OnDir, "ondir"},
}

// String names the bits of m joined by "|", in bit order, lower-case as in
// the kernel's FAN_ names without the prefix ("create|ondir"); bits without
// a name are printed as one hex number at the end. The empty mask is "0".
func (m Mask) String() string {
	if m == 0 {
		return "0"
	}
	var b []byte
	rest := m
	for _, n := range maskNames {
		if m&n.bit != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, n.name...)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = fmt.Appendf(b, "%#x", uint64(rest))
	}
	return string(b)
}

// Has reports whether every bit of x is set in m.
func (m Mask) Has(x Mask) bool { return m&x == x }

// NoFD is FAN_NOFD, the fd value of events that carry no file descriptor.
const NoFD = -1

// Values of a pidfd record (Event.PIDFD) that are not descriptors.
const (
	// NoPIDFD is FAN_NOPIDFD: the process exited before the event was read.
	NoPIDFD = -1
	// EPIDFD is FAN_EPIDFD: the kernel failed to open a pidfd.
	EPIDFD = -2
)

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
	// InfoOldDFIDName is FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: a rename's old
	// directory and name.
	InfoOldDFIDName = 10
	// InfoNewDFIDName is FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: a rename's new
	// directory and name.
	InfoNewDFIDName = 12
)

// Records is the set of info records an Event carried, one bit per kind.
type Records uint16

// Record kinds an Event may carry.
const (
	HasError   Records = 1 << iota // an error record: Errno and ErrorCount are set
	HasFID                         // a FID record: FID is set
	HasDirFID                      // a DFID or DFID_NAME record: DirFID (and maybe Name) are set
	HasPIDFD                       // a pidfd record: PIDFD is set
	HasMount                       // a mount record: MountID is set
	HasOldName                     // an OLD_DFID_NAME record: OldDirFID and OldName are set
	HasNewName                     // a NEW_DFID_NAME record: NewDirFID and NewName are set
	HasRange                       // a range record: RangeOffset and RangeCount are set
)

// FSID is a file system identifier, as statfs(2) reports it in f_fsid and as
// FID records carry it: two 32-bit words.
type FSID [2]int32

// String formats the fsid as two 8-digit hex words joined by a colon.
func (f FSID) String() string {
	const digits = "0123456789abcdef"
	var b [17]byte
	for i := range 8 {
		shift := 28 - 4*i
		b[i] = digits[uint32(f[0])>>shift&0xf]
		b[9+i] = digits[uint32(f[1])>>shift&0xf]
	}
	b[8] = ':'
	return string(b[:])
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
	// identifiers (FAN_REPORT_FID) and for overflow events. The reader owns
	// it and must close it (Event.Close). In a group created with
	// ReportFDError it may be a negative errno instead: see FDError.
	FD int32
	// FDError is the error that kept the kernel from opening FD, in groups
	// created with ReportFDError (Linux 6.13+); zero otherwise. Such groups
	// put -errno in FD instead of a descriptor, and -EBADF (never NoFD) in
	// events that carry no descriptor (in groups reporting file identifiers,
	// and overflow events). Parse sets FDError for fd values below -1;
	// Group.ReadEvents also sets EPERM for -1 in such groups (-EPERM and
	// FAN_NOFD are both -1, so Parse alone cannot tell them apart).
	FDError syscall.Errno
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
	// PIDFD is a pidfd for PID (FAN_REPORT_PIDFD); the caller must close it
	// (Event.Close). Negative values are not descriptors: NoPIDFD, EPIDFD,
	// or in groups created with ReportFDError a negative errno; PIDFDError
	// decodes them.
	PIDFD int32
	// MountID is the unique mount id of a mount event (FAN_REPORT_MNT).
	MountID uint64

	// OldDirFID and OldName are a rename's old directory and entry name
	// (OLD_DFID_NAME record, FAN_RENAME events).
	OldDirFID FileID
	OldName   string
	// NewDirFID and NewName are a rename's new directory and entry name
	// (NEW_DFID_NAME record, FAN_RENAME events).
	NewDirFID FileID
	NewName   string

	// RangeOffset and RangeCount are the file range a FAN_PRE_ACCESS event
	// asks about (range record): RangeCount bytes from RangeOffset.
	RangeOffset uint64
	RangeCount  uint64
}

// ErrNoPIDFD is what PIDFDError returns for FAN_NOPIDFD: the process exited
// before its pidfd could be opened.
var ErrNoPIDFD = errors.New("fanotify: no pidfd: the process has exited (FAN_NOPIDFD)")

// ErrPIDFD is what PIDFDError returns for FAN_EPIDFD: the kernel failed to
// open a pidfd.
var ErrPIDFD = errors.New("fanotify: no pidfd: the kernel could not open one (FAN_EPIDFD)")

// PIDFDError says why the event's pidfd record holds no descriptor: nil when
// the event has no pidfd record or PIDFD is a descriptor; ErrNoPIDFD or
// ErrPIDFD for FAN_NOPIDFD and FAN_EPIDFD; and for the other negative values,
// which groups created with ReportFDError (Linux 6.13+) report, the errno
// (for example ESRCH when the process has exited).
func (e *Event) PIDFDError() error {
	if e.Records&HasPIDFD == 0 || e.PIDFD >= 0 {
		return nil
	}
	switch e.PIDFD {
	case NoPIDFD:
		return ErrNoPIDFD
	case EPIDFD:
		return ErrPIDFD
	}
	return syscall.Errno(-int64(e.PIDFD))
}

// IsOverflow reports whether the event says the queue overflowed.
func (e *Event) IsOverflow() bool { return e.Mask&QueueOverflow != 0 }

// IsFSError reports whether the event is a file system error report.
func (e *Event) IsFSError() bool { return e.Mask&FSError != 0 }
