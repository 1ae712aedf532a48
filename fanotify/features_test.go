package fanotify

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		s        string
		maj, min int
		ok       bool
	}{
		{"6.18.44-fc-v1272", 6, 18, true},
		{"5.1", 5, 1, true},
		{"2.6.37", 2, 6, true},
		{"6.1.0-28-cloud-amd64", 6, 1, true},
		{"7.0-rc1", 7, 0, true},
		{"10.12+", 10, 12, true},
		{"6", 0, 0, false},
		{"x.1", 0, 0, false},
		{"6.x", 0, 0, false},
		{"", 0, 0, false},
	} {
		maj, min, ok := parseVersion(tt.s)
		if maj != tt.maj || min != tt.min || ok != tt.ok {
			t.Errorf("parseVersion(%q) = %d, %d, %v; want %d, %d, %v", tt.s, maj, min, ok, tt.maj, tt.min, tt.ok)
		}
	}
}

func TestOlderThan(t *testing.T) {
	for _, tt := range []struct {
		release, min string
		want         bool
	}{
		{"6.1.0-28-cloud-amd64", "6.15", true},
		{"6.15.0", "6.15", false},
		{"6.16", "6.15", false},
		{"6.14.9", "6.15", true},
		{"5.19", "6.0", true},
		{"7.0", "6.15", false},
		{"6.0", "6.0", false},
		{"5.1", "5.9", true},
		{"5.10", "5.9", false},
		{"", "6.15", false},
		{"6.1", "bogus", false},
	} {
		if got := olderThan(tt.release, tt.min); got != tt.want {
			t.Errorf("olderThan(%q, %q) = %v, want %v", tt.release, tt.min, got, tt.want)
		}
	}
}

func TestMissingFeature(t *testing.T) {
	fs := []feature{featReportFID, featReportMount, featReportPIDFD, featReportFDError}
	for _, tt := range []struct {
		release string
		want    string
		ok      bool
	}{
		{"4.19", "FAN_REPORT_MNT", true},
		{"6.1", "FAN_REPORT_MNT", true},
		{"6.14", "FAN_REPORT_MNT", true},
		{"6.15", "", false},
		{"7.0", "", false},
		{"", "", false},
	} {
		f, ok := missingFeature(fs, tt.release)
		if f.name != tt.want || ok != tt.ok {
			t.Errorf("missingFeature on %q = %q, %v; want %q, %v", tt.release, f.name, ok, tt.want, tt.ok)
		}
	}
	// The newest missing one, wherever it is in the list.
	if f, _ := missingFeature([]feature{featReportFDError, featReportPIDFD, featReportMount, featReportTID}, "5.10"); f != featReportMount {
		t.Errorf("newest missing of four = %v, want FAN_REPORT_MNT", f)
	}
	if f, _ := missingFeature([]feature{featReportPIDFD, featReportFID}, "5.0"); f != featReportPIDFD {
		t.Errorf("newest missing = %v, want FAN_REPORT_PIDFD", f)
	}
}

func TestMarkFeatures(t *testing.T) {
	names := func(fs []feature) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.name+" "+f.min)
		}
		return strings.Join(s, ", ")
	}
	for _, tt := range []struct {
		target Target
		mask   Mask
		flags  MarkFlags
		want   string
	}{
		{TargetInode, Open | Access | Modify | Close | OnDir | EventOnChild | OpenPerm | AccessPerm | QueueOverflow, DontFollow | OnlyDir | IgnoredMask | IgnoredSurviveModify, ""},
		{TargetMount, OpenExec, 0, "FAN_OPEN_EXEC 5.0"},
		{TargetInode, OpenExecPerm, 0, "FAN_OPEN_EXEC 5.0"},
		{TargetFilesystem, FSError, 0, "FAN_MARK_FILESYSTEM 4.20, FAN_FS_ERROR 5.16"},
		{TargetMountNamespace, MountAttach, 0, "FAN_MARK_MNTNS 6.15, FAN_MNT_ATTACH/DETACH 6.15"},
		{TargetInode, MountDetach, 0, "FAN_MNT_ATTACH/DETACH 6.15"},
		{TargetInode, Create, Evictable, "FAN_MARK_EVICTABLE 5.19, FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, Attrib, Ignore, "FAN_MARK_IGNORE 6.0, FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, MovedFrom, 0, "FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, MovedTo, 0, "FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, Delete, 0, "FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, DeleteSelf, 0, "FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, MoveSelf, 0, "FAN_CREATE/DELETE/MOVE/ATTRIB 5.1"},
		{TargetInode, Rename, 0, "FAN_RENAME 5.17"},
		{TargetInode, PreAccess, 0, "FAN_PRE_ACCESS 6.14"},
	} {
		if got := names(markFeatures(tt.target, tt.mask, tt.flags)); got != tt.want {
			t.Errorf("markFeatures(%#x, %v, %#x) = %q, want %q", tt.target, tt.mask, tt.flags, got, tt.want)
		}
	}
}

func TestInitFeatures(t *testing.T) {
	c := Config{Class: ClassContent, Report: ReportPIDFD | ReportTID | ReportFID | ReportDirFID | ReportName | ReportTargetFID | ReportFDError | ReportMount, UnlimitedMarks: true}
	var got []string
	for _, f := range c.initFeatures() {
		got = append(got, f.name+" "+f.min)
	}
	want := "FAN_REPORT_PIDFD 5.15, FAN_REPORT_TID 4.20, FAN_REPORT_FID 5.1, FAN_REPORT_DIR_FID 5.9, FAN_REPORT_NAME 5.9, FAN_REPORT_TARGET_FID 5.17, FAN_REPORT_FD_ERROR 6.13, FAN_REPORT_MNT 6.15"
	if s := strings.Join(got, ", "); s != want {
		t.Errorf("initFeatures = %q, want %q", s, want)
	}
	if fs := (Config{}).initFeatures(); len(fs) != 0 {
		t.Errorf("the zero Config needs %v", fs)
	}
}

func TestMarkErrorFor(t *testing.T) {
	fs := []feature{featMarkIgnore, featMarkMntNS}
	var me *MarkError
	err := markErrorFor("/p", syscall.EINVAL, fs, "6.1.0")
	var ue *UnsupportedError
	if !errors.As(err, &me) || me.Path != "/p" || !errors.As(err, &ue) || ue.Feature != "FAN_MARK_MNTNS" || ue.MinVersion != "6.15" || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("EINVAL on 6.1: %v", err)
	}
	err = markErrorFor("/p", syscall.EINVAL, fs, "6.18.1")
	if !errors.As(err, &me) || me.Path != "/p" || me.Reason != ErrInvalidMark || me.Err != syscall.EINVAL || errors.As(err, &ue) {
		t.Errorf("EINVAL on 6.18: %v", err)
	}
	for errno, reason := range map[syscall.Errno]error{
		syscall.EISDIR: ErrIgnoreDir, syscall.EEXIST: ErrIgnoreMixed, syscall.ENODEV: ErrNoFSID,
		syscall.ENOENT: ErrNotFound, syscall.EXDEV: ErrSubvolume, syscall.EBADF: nil,
	} {
		err := markErrorFor("/q", errno, fs, "6.1")
		if !errors.As(err, &me) || me.Path != "/q" || me.Reason != reason || me.Err != errno {
			t.Errorf("%v: %v, want reason %v", errno, err, reason)
		}
	}
}

func TestInitErrorFor(t *testing.T) {
	fs := []feature{featReportFID, featReportFDError}
	var ue *UnsupportedError
	err := initErrorFor(syscall.EINVAL, fs, "6.12.3")
	if !errors.As(err, &ue) || ue.Feature != "FAN_REPORT_FD_ERROR" || ue.MinVersion != "6.13" || ue.Err != syscall.EINVAL {
		t.Errorf("EINVAL on 6.12: %v", err)
	}
	err = initErrorFor(syscall.EINVAL, fs, "6.13")
	if errors.As(err, &ue) || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "refuses this combination") {
		t.Errorf("EINVAL on 6.13: %v", err)
	}
	err = initErrorFor(syscall.EPERM, fs, "6.12")
	if errors.As(err, &ue) || !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EPERM) {
		t.Errorf("EPERM: %v", err)
	}
}

func TestSetEPERM(t *testing.T) {
	evs := []Event{{FD: -1}, {FD: 3}, {FD: -9, FDError: syscall.EBADF}, {FD: -1}}
	setEPERM(evs, false)
	for i, e := range evs {
		if e.FDError != 0 && e.FD != -9 {
			t.Errorf("without FD_ERROR: event %d = %+v", i, e)
		}
	}
	setEPERM(evs, true)
	for i, want := range []syscall.Errno{syscall.EPERM, 0, syscall.EBADF, syscall.EPERM} {
		if evs[i].FDError != want {
			t.Errorf("with FD_ERROR: event %d FDError %v, want %v", i, evs[i].FDError, want)
		}
	}
}
