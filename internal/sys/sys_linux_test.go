package sys_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/sys"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// TestStatmount: statmount(2) agrees with the mount table about a mount
// (found by its mountinfo id, through listmount-free means: the unique id
// of the mount a file descriptor is on, from statx STATX_MNT_ID_UNIQUE).
func TestStatmount(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, im.Mountpoint, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		t.Fatal(err)
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 {
		testutil.Skip(t, testutil.KernelLacks, "no STATX_MNT_ID_UNIQUE (Linux 6.8+)")
	}
	m, err := sys.Statmount(stx.Mnt_id)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	if m.ID != stx.Mnt_id || m.FSType != "ext4" || m.Point != im.Mountpoint || m.Root != "/" ||
		m.Major != unix.Major(st.Dev) || m.Minor != unix.Minor(st.Dev) || m.OldID == 0 {
		t.Errorf("Statmount = %+v, want ext4 at %s on %d:%d", m, im.Mountpoint, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	if _, err := sys.Statmount(1 << 62); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Statmount of no mount: %v, want ENOENT", err)
	}
}
