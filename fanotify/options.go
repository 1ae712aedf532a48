package fanotify

import "syscall"

// Class is a group's notification class (FAN_CLASS_*): which events it may
// receive, and in which order it sees them relative to other groups.
type Class uint

// Notification classes.
const (
	// ClassNotif is FAN_CLASS_NOTIF: events after the fact, no permission
	// events.
	ClassNotif Class = 0x0
	// ClassContent is FAN_CLASS_CONTENT: permission events too, for
	// listeners that decide on a file's final content (virus scanners).
	// Needs a kernel built with CONFIG_FANOTIFY_ACCESS_PERMISSIONS.
	ClassContent Class = 0x4
	// ClassPreContent is FAN_CLASS_PRE_CONTENT: permission events seen
	// before content groups, for listeners that fill in content
	// (hierarchical storage); FAN_PRE_ACCESS (6.14) needs it.
	ClassPreContent Class = 0x8
)

// Report is a set of FAN_REPORT_* flags: what a group's events carry.
type Report uint

// Report flags and the first Linux version of each.
const (
	// ReportPIDFD is FAN_REPORT_PIDFD (5.15): a pidfd record per event.
	ReportPIDFD Report = 0x80
	// ReportTID is FAN_REPORT_TID (4.20): PID is the thread, not the
	// process. It cannot be combined with ReportPIDFD.
	ReportTID Report = 0x100
	// ReportFID is FAN_REPORT_FID (5.1): events identify objects by file
	// handle (FID record) instead of an open descriptor; needed for
	// create/delete/move/attrib events.
	ReportFID Report = 0x200
	// ReportDirFID is FAN_REPORT_DIR_FID (5.9): events carry the parent
	// directory's handle (DFID record).
	ReportDirFID Report = 0x400
	// ReportName is FAN_REPORT_NAME (5.9): with ReportDirFID, the entry
	// name too (DFID_NAME record, and for FAN_RENAME the old and new
	// names).
	ReportName Report = 0x800
	// ReportTargetFID is FAN_REPORT_TARGET_FID (5.17): with ReportFID and
	// ReportDFIDName, directory entry events carry the child's FID too.
	ReportTargetFID Report = 0x1000
	// ReportFDError is FAN_REPORT_FD_ERROR (6.13): when the kernel cannot
	// open an event's fd (or pidfd), the event carries the errno instead
	// (Event.FDError, Event.PIDFDError).
	ReportFDError Report = 0x2000
	// ReportMount is FAN_REPORT_MNT (6.15): mount attach/detach events with
	// a mount record. Such a group carries no other events and takes only
	// mount namespace marks.
	ReportMount Report = 0x4000

	// ReportDFIDName is ReportDirFID|ReportName.
	ReportDFIDName = ReportDirFID | ReportName
	// ReportDFIDNameTarget is FAN_REPORT_DFID_NAME_TARGET: every file
	// identifier and name record (5.17).
	ReportDFIDNameTarget = ReportDFIDName | ReportFID | ReportTargetFID
)

// reportFeatures maps each report flag to its feature.
var reportFeatures = [...]struct {
	flag Report
	feature
}{
	{ReportPIDFD, featReportPIDFD},
	{ReportTID, featReportTID},
	{ReportFID, featReportFID},
	{ReportDirFID, featReportDirFID},
	{ReportName, featReportName},
	{ReportTargetFID, featReportTargetFID},
	{ReportFDError, featReportFDError},
	{ReportMount, featReportMount},
}

// Config says how New creates a group. The zero Config is a notification
// group whose events carry an open read-only descriptor of the file.
type Config struct {
	// Class is the notification class; ClassNotif if zero.
	Class Class
	// Report says which records events carry.
	Report Report
	// UnlimitedQueue is FAN_UNLIMITED_QUEUE: no limit on queued events
	// (instead of /proc/sys/fs/fanotify/max_queued_events).
	UnlimitedQueue bool
	// UnlimitedMarks is FAN_UNLIMITED_MARKS: no limit on marks (instead of
	// /proc/sys/fs/fanotify/max_user_marks).
	UnlimitedMarks bool
	// EventFlags are the open(2) flags of the descriptors events carry
	// (fanotify_init's event_f_flags): zero is O_RDONLY. O_LARGEFILE and
	// O_CLOEXEC are always added.
	EventFlags int
	// OwnPoll keeps the group's descriptor out of the Go runtime's poller,
	// for a caller that waits for events itself, with poll(2) or epoll(7)
	// on the descriptor (SyscallConn) next to its own, and reads only when
	// it is readable. The descriptor stays non-blocking: a Read with
	// nothing queued fails with EAGAIN at once instead of waiting;
	// SetReadDeadline has no effect. What it saves: the runtime's poller
	// is not woken for every event besides the caller's own wait.
	OwnPoll bool
}

// initFeatures lists the features c needs.
func (c Config) initFeatures() []feature {
	var fs []feature
	for _, r := range reportFeatures {
		if c.Report&r.flag != 0 {
			fs = append(fs, r.feature)
		}
	}
	return fs
}

// Target is what a mark is attached to (the FAN_MARK_* object type).
type Target uint

// Mark targets.
const (
	// TargetInode is FAN_MARK_INODE: the file or directory itself.
	TargetInode Target = 0x0
	// TargetMount is FAN_MARK_MOUNT: the mount holding the path. Events
	// that need file identifiers (create, delete, ...) cannot be marked on
	// mounts.
	TargetMount Target = 0x10
	// TargetFilesystem is FAN_MARK_FILESYSTEM (4.20): the whole file system
	// (superblock) holding the path, on all its mounts.
	TargetFilesystem Target = 0x100
	// TargetMountNamespace is FAN_MARK_MNTNS (6.15): the mount namespace
	// whose nsfs file is the path (for example /proc/self/ns/mnt), for
	// mount events.
	TargetMountNamespace Target = 0x110
)

// MarkFlags modify a mark (FAN_MARK_* flags other than the target and the
// operation).
type MarkFlags uint

// Mark flags.
const (
	// DontFollow is FAN_MARK_DONT_FOLLOW: mark a symbolic link itself.
	DontFollow MarkFlags = 0x4
	// OnlyDir is FAN_MARK_ONLYDIR: fail unless the path is a directory.
	OnlyDir MarkFlags = 0x8
	// IgnoredMask is FAN_MARK_IGNORED_MASK: the mask is an ignore mask, events
	// in it are not reported for this object (the old form; prefer Ignore).
	IgnoredMask MarkFlags = 0x20
	// IgnoredSurviveModify is FAN_MARK_IGNORED_SURV_MODIFY: the ignore mask
	// is kept when the file is modified (it is cleared otherwise).
	IgnoredSurviveModify MarkFlags = 0x40
	// Evictable is FAN_MARK_EVICTABLE (5.19): an inode mark that does not
	// pin the inode in memory, so it may vanish with the inode.
	Evictable MarkFlags = 0x200
	// Ignore is FAN_MARK_IGNORE (6.0): the mask is an ignore mask, with
	// explicit directory semantics: events on directories are ignored only
	// with OnDir in the mask, events on a directory's children only with
	// EventOnChild. On a directory the kernel wants IgnoredSurviveModify
	// too (ErrIgnoreDir otherwise).
	Ignore MarkFlags = 0x400
)

// markFeatures lists the features a mark needs.
func markFeatures(t Target, m Mask, f MarkFlags) []feature {
	var fs []feature
	switch t {
	case TargetFilesystem:
		fs = append(fs, featMarkFilesystem)
	case TargetMountNamespace:
		fs = append(fs, featMarkMntNS)
	}
	if f&Evictable != 0 {
		fs = append(fs, featMarkEvictable)
	}
	if f&Ignore != 0 {
		fs = append(fs, featMarkIgnore)
	}
	return maskFeatureList(fs, m)
}

// Response answers a permission event (Group.Respond).
type Response uint32

// Responses.
const (
	// Allow is FAN_ALLOW: the access goes ahead.
	Allow Response = 0x01
	// Deny is FAN_DENY: the access fails with EPERM.
	Deny Response = 0x02
	// Audit is FAN_AUDIT, to be or-ed into Allow or Deny: the kernel logs
	// the decision to the audit system (the group needs FAN_ENABLE_AUDIT,
	// which New does not set).
	Audit Response = 0x10
)

// DenyErrno is FAN_DENY_ERRNO(errno): deny the access and make it fail with
// errno. Linux 6.14+ accepts it from pre-content groups (ClassPreContent),
// and only for EPERM, EIO, EBUSY, ETXTBSY, EAGAIN, ENOSPC and EDQUOT.
func DenyErrno(errno syscall.Errno) Response {
	return Deny | Response(errno&0xff)<<24
}
