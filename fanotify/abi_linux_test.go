package fanotify_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
)

// TestABIConstants checks this package's values against the kernel
// headers' as golang.org/x/sys/unix has them.
func TestABIConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Access", uint64(fanotify.Access), unix.FAN_ACCESS},
		{"Modify", uint64(fanotify.Modify), unix.FAN_MODIFY},
		{"Attrib", uint64(fanotify.Attrib), unix.FAN_ATTRIB},
		{"CloseWrite", uint64(fanotify.CloseWrite), unix.FAN_CLOSE_WRITE},
		{"CloseNoWrite", uint64(fanotify.CloseNoWrite), unix.FAN_CLOSE_NOWRITE},
		{"Open", uint64(fanotify.Open), unix.FAN_OPEN},
		{"MovedFrom", uint64(fanotify.MovedFrom), unix.FAN_MOVED_FROM},
		{"MovedTo", uint64(fanotify.MovedTo), unix.FAN_MOVED_TO},
		{"Create", uint64(fanotify.Create), unix.FAN_CREATE},
		{"Delete", uint64(fanotify.Delete), unix.FAN_DELETE},
		{"DeleteSelf", uint64(fanotify.DeleteSelf), unix.FAN_DELETE_SELF},
		{"MoveSelf", uint64(fanotify.MoveSelf), unix.FAN_MOVE_SELF},
		{"OpenExec", uint64(fanotify.OpenExec), unix.FAN_OPEN_EXEC},
		{"QueueOverflow", uint64(fanotify.QueueOverflow), unix.FAN_Q_OVERFLOW},
		{"FSError", uint64(fanotify.FSError), unix.FAN_FS_ERROR},
		{"OpenPerm", uint64(fanotify.OpenPerm), unix.FAN_OPEN_PERM},
		{"AccessPerm", uint64(fanotify.AccessPerm), unix.FAN_ACCESS_PERM},
		{"OpenExecPerm", uint64(fanotify.OpenExecPerm), unix.FAN_OPEN_EXEC_PERM},
		{"PreAccess", uint64(fanotify.PreAccess), unix.FAN_PRE_ACCESS},
		{"MountAttach", uint64(fanotify.MountAttach), unix.FAN_MNT_ATTACH},
		{"MountDetach", uint64(fanotify.MountDetach), unix.FAN_MNT_DETACH},
		{"EventOnChild", uint64(fanotify.EventOnChild), unix.FAN_EVENT_ON_CHILD},
		{"Rename", uint64(fanotify.Rename), unix.FAN_RENAME},
		{"OnDir", uint64(fanotify.OnDir), unix.FAN_ONDIR},
		{"Close", uint64(fanotify.Close), unix.FAN_CLOSE},
		{"Move", uint64(fanotify.Move), unix.FAN_MOVE},

		{"InfoFID", fanotify.InfoFID, unix.FAN_EVENT_INFO_TYPE_FID},
		{"InfoDFIDName", fanotify.InfoDFIDName, unix.FAN_EVENT_INFO_TYPE_DFID_NAME},
		{"InfoDFID", fanotify.InfoDFID, unix.FAN_EVENT_INFO_TYPE_DFID},
		{"InfoPIDFD", fanotify.InfoPIDFD, unix.FAN_EVENT_INFO_TYPE_PIDFD},
		{"InfoError", fanotify.InfoError, unix.FAN_EVENT_INFO_TYPE_ERROR},
		{"InfoRange", fanotify.InfoRange, unix.FAN_EVENT_INFO_TYPE_RANGE},
		{"InfoMount", fanotify.InfoMount, unix.FAN_EVENT_INFO_TYPE_MNT},
		{"InfoOldDFIDName", fanotify.InfoOldDFIDName, unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME},
		{"InfoNewDFIDName", fanotify.InfoNewDFIDName, unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME},

		{"ClassNotif", uint64(fanotify.ClassNotif), unix.FAN_CLASS_NOTIF},
		{"ClassContent", uint64(fanotify.ClassContent), unix.FAN_CLASS_CONTENT},
		{"ClassPreContent", uint64(fanotify.ClassPreContent), unix.FAN_CLASS_PRE_CONTENT},
		{"ReportPIDFD", uint64(fanotify.ReportPIDFD), unix.FAN_REPORT_PIDFD},
		{"ReportTID", uint64(fanotify.ReportTID), unix.FAN_REPORT_TID},
		{"ReportFID", uint64(fanotify.ReportFID), unix.FAN_REPORT_FID},
		{"ReportDirFID", uint64(fanotify.ReportDirFID), unix.FAN_REPORT_DIR_FID},
		{"ReportName", uint64(fanotify.ReportName), unix.FAN_REPORT_NAME},
		{"ReportTargetFID", uint64(fanotify.ReportTargetFID), unix.FAN_REPORT_TARGET_FID},
		{"ReportFDError", uint64(fanotify.ReportFDError), unix.FAN_REPORT_FD_ERROR},
		{"ReportMount", uint64(fanotify.ReportMount), unix.FAN_REPORT_MNT},
		{"ReportDFIDName", uint64(fanotify.ReportDFIDName), unix.FAN_REPORT_DFID_NAME},
		{"ReportDFIDNameTarget", uint64(fanotify.ReportDFIDNameTarget), unix.FAN_REPORT_DFID_NAME_TARGET},

		{"TargetInode", uint64(fanotify.TargetInode), unix.FAN_MARK_INODE},
		{"TargetMount", uint64(fanotify.TargetMount), unix.FAN_MARK_MOUNT},
		{"TargetFilesystem", uint64(fanotify.TargetFilesystem), unix.FAN_MARK_FILESYSTEM},
		{"TargetMountNamespace", uint64(fanotify.TargetMountNamespace), unix.FAN_MARK_MNTNS},
		{"DontFollow", uint64(fanotify.DontFollow), unix.FAN_MARK_DONT_FOLLOW},
		{"OnlyDir", uint64(fanotify.OnlyDir), unix.FAN_MARK_ONLYDIR},
		{"IgnoredMask", uint64(fanotify.IgnoredMask), unix.FAN_MARK_IGNORED_MASK},
		{"IgnoredSurviveModify", uint64(fanotify.IgnoredSurviveModify), unix.FAN_MARK_IGNORED_SURV_MODIFY},
		{"Evictable", uint64(fanotify.Evictable), unix.FAN_MARK_EVICTABLE},
		{"Ignore", uint64(fanotify.Ignore), unix.FAN_MARK_IGNORE},

		{"Allow", uint64(fanotify.Allow), unix.FAN_ALLOW},
		{"Deny", uint64(fanotify.Deny), unix.FAN_DENY},
		{"Audit", uint64(fanotify.Audit), unix.FAN_AUDIT},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the kernel's is %#x", c.name, c.got, c.want)
		}
	}
	if fanotify.NoPIDFD != unix.FAN_NOPIDFD || fanotify.EPIDFD != unix.FAN_EPIDFD || fanotify.NoFD != unix.FAN_NOFD {
		t.Error("NoPIDFD, EPIDFD or NoFD differ from the kernel's")
	}
}
