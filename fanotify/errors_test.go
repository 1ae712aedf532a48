package fanotify

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

// reasons lists every mark failure reason, to check that an error matches
// its own reason and no other.
var reasons = []error{ErrNoFSID, ErrNoFileHandles, ErrSubvolume, ErrPermission, ErrNotFound, ErrTooManyMarks}

// TestMarkErrorClassification checks that markError maps each errno to its
// reason and that errors.Is matches both the reason and the errno.
func TestMarkErrorClassification(t *testing.T) {
	tests := []struct {
		errno  syscall.Errno
		reason error // nil: no specific reason
	}{
		{syscall.ENODEV, ErrNoFSID},
		{syscall.EOPNOTSUPP, ErrNoFileHandles},
		{syscall.EXDEV, ErrSubvolume},
		{syscall.EPERM, ErrPermission},
		{syscall.EACCES, ErrPermission},
		{syscall.ENOENT, ErrNotFound},
		{syscall.ENOTDIR, ErrNotFound},
		{syscall.ENOSPC, ErrTooManyMarks},
		{syscall.EIO, nil},
		{syscall.EBADF, nil},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			const path = "/srv/data"
			err := markError(path, tt.errno, "FAN_FS_ERROR", "5.16")
			var me *MarkError
			if !errors.As(err, &me) {
				t.Fatalf("markError(%v) = %v (%T), want a *MarkError", tt.errno, err, err)
			}
			if me.Path != path || me.Reason != tt.reason || me.Err != tt.errno {
				t.Errorf("markError(%v) = %+v, want Path %q, Reason %v, Err %v", tt.errno, *me, path, tt.reason, tt.errno)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.errno)
			}
			for _, r := range reasons {
				if got, want := errors.Is(err, r), r == tt.reason; got != want {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", err, r, got, want)
				}
			}
			var ue *UnsupportedError
			if errors.As(err, &ue) {
				t.Errorf("markError(%v) = %v, which claims an unsupported feature", tt.errno, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.errno.Error()) {
				t.Errorf("error %q does not name the path and the errno", msg)
			}
			if tt.reason != nil && !strings.Contains(msg, tt.reason.Error()) {
				t.Errorf("error %q does not name the reason %q", msg, tt.reason)
			}
		})
	}
}

// TestMarkErrorPermissionIsFSErrPermission checks that a refused mark is
// recognised by the standard library's permission test.
func TestMarkErrorPermissionIsFSErrPermission(t *testing.T) {
	if err := markError("/", syscall.EPERM, "FAN_FS_ERROR", "5.16"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false", err)
	}
}

// TestMarkErrorUnsupported checks that EINVAL from fanotify_mark(2) is
// reported as an UnsupportedError naming the feature and its first kernel.
func TestMarkErrorUnsupported(t *testing.T) {
	tests := []struct{ feature, minVersion string }{
		{"FAN_FS_ERROR", "5.16"},
		{"FAN_MARK_MNTNS", "6.15"},
	}
	for _, tt := range tests {
		t.Run(tt.feature, func(t *testing.T) {
			err := markError("/proc/self/ns/mnt", syscall.EINVAL, tt.feature, tt.minVersion)
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				t.Fatalf("markError(EINVAL) = %v (%T), want an *UnsupportedError inside", err, err)
			}
			if ue.Feature != tt.feature || ue.MinVersion != tt.minVersion || ue.Err != syscall.EINVAL {
				t.Errorf("UnsupportedError = %+v, want Feature %q, MinVersion %q, Err EINVAL", *ue, tt.feature, tt.minVersion)
			}
			var me *MarkError
			if !errors.As(err, &me) || me.Path != "/proc/self/ns/mnt" {
				t.Errorf("markError(EINVAL) = %v, want a *MarkError for the path", err)
			}
			if !errors.Is(err, syscall.EINVAL) {
				t.Errorf("errors.Is(%v, EINVAL) = false", err)
			}
			for _, r := range reasons {
				if errors.Is(err, r) {
					t.Errorf("errors.Is(%v, %q) = true", err, r)
				}
			}
			msg := err.Error()
			for _, want := range []string{tt.feature, "Linux " + tt.minVersion} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

// TestInitErrorClassification checks how fanotify_init(2) failures are
// reported: unsupported flags and kernels as UnsupportedError, and every
// error still matching its errno.
func TestInitErrorClassification(t *testing.T) {
	tests := []struct {
		errno       syscall.Errno
		feature     string // want an UnsupportedError for this feature; "" for none
		minVersion  string
		reason      error // want errors.Is(err, reason) if not nil
		mustMention string
	}{
		{syscall.EINVAL, "FAN_REPORT_MNT", "6.15", nil, "FAN_REPORT_MNT"},
		{syscall.ENOSYS, "fanotify", "2.6.37 built with CONFIG_FANOTIFY", nil, "CONFIG_FANOTIFY"},
		{syscall.EPERM, "", "", ErrPermission, "CAP_SYS_ADMIN"},
		{syscall.EMFILE, "", "", nil, "max_user_groups"},
		{syscall.ENOMEM, "", "", nil, "fanotify_init"},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			err := initError(tt.errno, "FAN_REPORT_MNT", "6.15")
			if err == nil {
				t.Fatal("initError returned nil")
			}
			var ue *UnsupportedError
			isUnsupported := errors.As(err, &ue)
			if isUnsupported != (tt.feature != "") {
				t.Fatalf("initError(%v) = %v: errors.As(*UnsupportedError) = %v, want %v", tt.errno, err, isUnsupported, tt.feature != "")
			}
			if isUnsupported && (ue.Feature != tt.feature || ue.MinVersion != tt.minVersion) {
				t.Errorf("UnsupportedError = %+v, want Feature %q, MinVersion %q", *ue, tt.feature, tt.minVersion)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.errno)
			}
			for _, r := range reasons {
				if got, want := errors.Is(err, r), r == tt.reason; got != want {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", err, r, got, want)
				}
			}
			if !strings.Contains(err.Error(), tt.mustMention) {
				t.Errorf("error %q does not mention %q", err, tt.mustMention)
			}
		})
	}
}
