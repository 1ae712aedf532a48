package fanotify

import (
	"strconv"
	"strings"
)

// feature is a fanotify capability and the first Linux version with it.
type feature struct {
	name string // the kernel's name, e.g. "FAN_REPORT_FID"
	min  string // e.g. "5.1"
}

// Init flags (fanotify_init(2)) and their first Linux versions. Verified
// against the fanotify_init(2) man page and, for the newest, the commits
// that added them (see README.md).
var (
	featReportTID       = feature{"FAN_REPORT_TID", "4.20"}
	featReportFID       = feature{"FAN_REPORT_FID", "5.1"}
	featReportDirFID    = feature{"FAN_REPORT_DIR_FID", "5.9"}
	featReportName      = feature{"FAN_REPORT_NAME", "5.9"}
	featReportPIDFD     = feature{"FAN_REPORT_PIDFD", "5.15"}
	featReportTargetFID = feature{"FAN_REPORT_TARGET_FID", "5.17"}
	featReportFDError   = feature{"FAN_REPORT_FD_ERROR", "6.13"}
	featReportMount     = feature{"FAN_REPORT_MNT", "6.15"}
)

// Mark flags (fanotify_mark(2)) and their first Linux versions.
var (
	featMarkFilesystem = feature{"FAN_MARK_FILESYSTEM", "4.20"}
	featMarkEvictable  = feature{"FAN_MARK_EVICTABLE", "5.19"}
	featMarkIgnore     = feature{"FAN_MARK_IGNORE", "6.0"}
	featMarkMntNS      = feature{"FAN_MARK_MNTNS", "6.15"}
)

// featDenyErrno is FAN_DENY_ERRNO, a permission response carrying an errno.
var featDenyErrno = feature{"FAN_DENY_ERRNO", "6.14"}

// maskFeatures gives the first Linux version of the event bits that came
// after fanotify itself (2.6.37).
var maskFeatures = [...]struct {
	bits Mask
	feature
}{
	{OpenExec | OpenExecPerm, feature{"FAN_OPEN_EXEC", "5.0"}},
	{Attrib | Move | Create | Delete | DeleteSelf | MoveSelf, feature{"FAN_CREATE/DELETE/MOVE/ATTRIB", "5.1"}},
	{FSError, feature{"FAN_FS_ERROR", "5.16"}},
	{Rename, feature{"FAN_RENAME", "5.17"}},
	{PreAccess, feature{"FAN_PRE_ACCESS", "6.14"}},
	{MountAttach | MountDetach, feature{"FAN_MNT_ATTACH/DETACH", "6.15"}},
}

// maskFeatureList appends to fs the features the bits of m need.
func maskFeatureList(fs []feature, m Mask) []feature {
	for _, f := range maskFeatures {
		if m&f.bits != 0 {
			fs = append(fs, f.feature)
		}
	}
	return fs
}

// parseVersion reads the leading "major.minor" of a kernel release such as
// "6.18.0-1-cloud-amd64" or "2.6.37". ok is false if there is none.
func parseVersion(s string) (major, minor int, ok bool) {
	maj, rest, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a, b, true
}

// olderThan reports whether kernel release is older than version min. An
// unreadable release counts as not older: then nothing is blamed on it.
func olderThan(release, min string) bool {
	rmaj, rmin, ok1 := parseVersion(release)
	mmaj, mmin, ok2 := parseVersion(min)
	if !ok1 || !ok2 {
		return false
	}
	return rmaj < mmaj || rmaj == mmaj && rmin < mmin
}

// missingFeature returns the newest of fs that kernel release predates, to
// explain an EINVAL; ok is false when release has all of them, and the
// EINVAL is about something else (a combination the kernel refuses).
func missingFeature(fs []feature, release string) (f feature, ok bool) {
	for _, c := range fs {
		if olderThan(release, c.min) && (!ok || olderThan(f.min, c.min)) {
			f, ok = c, true
		}
	}
	return f, ok
}
