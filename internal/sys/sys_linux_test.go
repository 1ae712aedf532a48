package sys_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/sys"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// TestStatmount: statmount(2) agrees with the mount table about a mount
// (found by the unique id of the mount a path is on, from statx
// STATX_MNT_ID_UNIQUE), and listmount(2) lists it. On kernels before 6.8
// both say so with a typed error naming the version.
func TestStatmount(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, im.Mountpoint, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		t.Fatal(err)
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 {
		// Linux before 6.8: no unique mount ids, no statmount(2).
		var unsup *sys.UnsupportedError
		if _, err := sys.Statmount(1); !errors.As(err, &unsup) || err != sys.ErrNoStatmount || unsup.MinVersion != "6.8" {
			t.Errorf("Statmount on a kernel without it: %v, want ErrNoStatmount", err)
		}
		if _, err := sys.Listmount(nil); err != sys.ErrNoListmount || !strings.Contains(err.Error(), "Linux 6.8") {
			t.Errorf("Listmount on a kernel without it: %v, want ErrNoListmount", err)
		}
		return
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
		m.Major != unix.Major(st.Dev) || m.Minor != unix.Minor(st.Dev) || m.OldID == 0 || m.ParentID == 0 {
		t.Errorf("Statmount = %+v, want ext4 at %s on %d:%d", m, im.Mountpoint, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	// The source from Linux 6.13 (STATMOUNT_SB_SOURCE).
	if m.Source != "" && m.Source != im.Dev {
		t.Errorf("Statmount source %q, want %q", m.Source, im.Dev)
	}
	if _, err := sys.Statmount(1 << 62); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Statmount of no mount: %v, want ENOENT", err)
	}
	ids, err := sys.Listmount(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, stx.Mnt_id) || !slices.IsSorted(ids) {
		t.Errorf("Listmount: %d ids, sorted %v, without %d", len(ids), slices.IsSorted(ids), stx.Mnt_id)
	}
}

// TestListmountMany: listmount(2) lists more mounts than fit in one call's
// chunk, each once (before Linux 6.8: the typed error, as TestStatmount
// checks).
func TestListmountMany(t *testing.T) {
	testutil.RequireRoot(t)
	before, err := sys.Listmount(nil)
	if err == sys.ErrNoListmount {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const n = 700
	for i := range n {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(dir, p, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
	}
	after, err := sys.Listmount(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+n || len(slices.Compact(slices.Clone(after))) != len(after) {
		t.Errorf("Listmount: %d ids before %d bind mounts, %d after", len(before), n, len(after))
	}
}
