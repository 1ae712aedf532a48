package fanotify

import (
	"errors"
	"fmt"
	"syscall"
)

// UnsupportedError reports that the running kernel lacks a fanotify feature.
// It names the feature and the first Linux version that has it.
type UnsupportedError struct {
	// Feature is what is missing, e.g. "FAN_FS_ERROR".
	Feature string
	// MinVersion is the first Linux version with the feature, e.g. "5.16".
	MinVersion string
	// Err is the underlying errno.
	Err error
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("fanotify: %s is not supported by this kernel (needs Linux %s or later): %v", e.Feature, e.MinVersion, e.Err)
}

func (e *UnsupportedError) Unwrap() error { return e.Err }

// Reasons a file system cannot be marked. MarkError wraps one of them, so
// callers can test with errors.Is.
var (
	// ErrNoFSID: the file system reports no fsid (ENODEV), as pseudo file
	// systems without a backing device do.
	ErrNoFSID = errors.New("file system has no fsid")
	// ErrNoFileHandles: the file system cannot encode file handles
	// (EOPNOTSUPP), so it cannot report file identifiers.
	ErrNoFileHandles = errors.New("file system does not support file handles")
	// ErrSubvolume: the path's fsid differs from its superblock's (EXDEV), as
	// on a btrfs subvolume; mark the file system's top-level mount instead.
	ErrSubvolume = errors.New("path is on a subvolume whose fsid differs from the file system's (mark the top-level mount)")
	// ErrPermission: the caller lacks CAP_SYS_ADMIN (EPERM or EACCES).
	ErrPermission = errors.New("permission denied (fanotify needs CAP_SYS_ADMIN)")
	// ErrNotFound: the path does not exist (ENOENT or ENOTDIR).
	ErrNotFound = errors.New("no such file or directory")
	// ErrTooManyMarks: the group hit its mark limit (ENOSPC,
	// /proc/sys/fs/fanotify/max_user_marks).
	ErrTooManyMarks = errors.New("too many fanotify marks (see /proc/sys/fs/fanotify/max_user_marks)")
	// ErrInvalidMark: the kernel has every feature the mark uses but refuses
	// the combination (EINVAL), for example permission events on a
	// notification group, or directory entry events on a mount mark or on
	// a group that reports no file identifiers.
	ErrInvalidMark = errors.New("the kernel refuses this mask, target and flags for this group")
	// ErrIgnoreDir: an Ignore mark on a directory without
	// IgnoredSurviveModify (EISDIR): ignore marks on directories must
	// survive modification.
	ErrIgnoreDir = errors.New("an Ignore mark on a directory needs IgnoredSurviveModify")
	// ErrIgnoreMixed: the mark was set with Ignore before and now without,
	// or the other way round (EEXIST).
	ErrIgnoreMixed = errors.New("a mark cannot mix Ignore and non-Ignore updates")
	// ErrNotMarked: Unmark of an object the group has no mark on (ENOENT
	// for an existing path).
	ErrNotMarked = errors.New("the object has no mark of this group")
)

// MarkError says why a path could not be marked.
type MarkError struct {
	// Path is the path that was to be marked.
	Path string
	// Reason is one of the Err* values above, or nil when the errno has no
	// more specific meaning.
	Reason error
	// Err is the errno fanotify_mark(2) returned.
	Err error
}

func (e *MarkError) Error() string {
	if e.Reason != nil {
		return fmt.Sprintf("fanotify: cannot mark %q: %v (%v)", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("fanotify: cannot mark %q: %v", e.Path, e.Err)
}

// Unwrap lets errors.Is match both the reason and the errno.
func (e *MarkError) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Reason, e.Err}
}

// markError classifies the errno of a failed filesystem mark. feature and
// minVersion describe the mask, for the EINVAL case.
func markError(path string, errno error, feature, minVersion string) error {
	var reason error
	switch errno {
	case syscall.ENODEV:
		reason = ErrNoFSID
	case syscall.EOPNOTSUPP:
		reason = ErrNoFileHandles
	case syscall.EXDEV:
		reason = ErrSubvolume
	case syscall.EPERM, syscall.EACCES:
		reason = ErrPermission
	case syscall.ENOENT, syscall.ENOTDIR:
		reason = ErrNotFound
	case syscall.ENOSPC:
		reason = ErrTooManyMarks
	case syscall.EINVAL:
		// The group was created with the flags the mask needs and the path
		// resolved, so EINVAL means the kernel does not know the mask.
		return &MarkError{Path: path, Reason: &UnsupportedError{Feature: feature, MinVersion: minVersion, Err: errno}, Err: errno}
	}
	return &MarkError{Path: path, Reason: reason, Err: errno}
}

// markErrorFor classifies the errno of a failed fanotify_mark(2) that
// needed the features fs, on the kernel release.
func markErrorFor(path string, errno error, fs []feature, release string) error {
	switch errno {
	case syscall.EINVAL:
		if f, ok := missingFeature(fs, release); ok {
			return &MarkError{Path: path, Reason: &UnsupportedError{Feature: f.name, MinVersion: f.min, Err: errno}, Err: errno}
		}
		return &MarkError{Path: path, Reason: ErrInvalidMark, Err: errno}
	case syscall.EISDIR:
		return &MarkError{Path: path, Reason: ErrIgnoreDir, Err: errno}
	case syscall.EEXIST:
		return &MarkError{Path: path, Reason: ErrIgnoreMixed, Err: errno}
	}
	return markError(path, errno, "", "")
}

// initErrorFor classifies the errno of a failed fanotify_init(2) that
// needed the features fs, on the kernel release.
func initErrorFor(errno error, fs []feature, release string) error {
	if errno == syscall.EINVAL {
		if f, ok := missingFeature(fs, release); ok {
			return &UnsupportedError{Feature: f.name, MinVersion: f.min, Err: errno}
		}
		return fmt.Errorf("fanotify: fanotify_init refuses this combination of class and report flags: %w", errno)
	}
	return initError(errno, "", "")
}

// initError classifies the errno of a failed fanotify_init(2).
func initError(errno error, feature, minVersion string) error {
	switch errno {
	case syscall.ENOSYS:
		return &UnsupportedError{Feature: "fanotify", MinVersion: "2.6.37 built with CONFIG_FANOTIFY", Err: errno}
	case syscall.EINVAL:
		return &UnsupportedError{Feature: feature, MinVersion: minVersion, Err: errno}
	case syscall.EPERM:
		return fmt.Errorf("fanotify: %w (%w)", ErrPermission, errno)
	case syscall.EMFILE:
		return fmt.Errorf("fanotify: too many fanotify groups (see /proc/sys/fs/fanotify/max_user_groups): %w", errno)
	}
	return fmt.Errorf("fanotify: fanotify_init: %w", errno)
}
