package kmsg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

// fakeSys builds a sysfs tree with a few block devices under a temporary
// directory and returns its root.
func fakeSys(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"class/block/loop0/dev":             "7:0\n",
		"class/block/sda/dev":               "8:0\n",
		"class/block/sda/size":              "20000\n",
		"class/block/sda/sda1/partition":    "1\n",
		"class/block/sda/sda1/start":        "2048\n",
		"class/block/sda/sda1/size":         "4096\n",
		"class/block/sda/sda2/partition":    "2\n",
		"class/block/sda/sda2/start":        "6144\n",
		"class/block/sda/sda2/size":         "8192\n",
		"class/block/sda/queue/nr_requests": "64\n",
		"class/block/sda1/dev":              "8:1\n",
		"class/block/dm-0/dev":              "253:0\n",
		"class/block/dm-0/dm/name":          "vg-root\n",
		"class/block/dm-1/dev":              "253:1\n",
		"class/block/dm-1/dm/name":          "vg-home\n",
		"class/block/cciss!c0d0/dev":        "104:0\n",
		"class/block/bad/dev":               "garbage\n",
		"class/block/broken/sda9/partition": "9\n",
		"class/block/broken/sda9/start":     "x\n",
		"class/block/broken/sda9/size":      "1\n",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDeviceNumber(t *testing.T) {
	sys := fakeSys(t)
	for _, tc := range []struct {
		name         string
		major, minor uint32
	}{
		{"loop0", 7, 0}, {"/dev/loop0", 7, 0}, {"sda1", 8, 1}, {"dm-1", 253, 1},
		{"/dev/mapper/vg-home", 253, 1}, {"/dev/dm-0", 253, 0}, {"cciss/c0d0", 104, 0}, {"/dev/cciss/c0d0", 104, 0},
	} {
		ma, mi, err := DeviceNumber(sys, tc.name)
		if err != nil || ma != tc.major || mi != tc.minor {
			t.Errorf("DeviceNumber(%q) = %d:%d, %v; want %d:%d", tc.name, ma, mi, err, tc.major, tc.minor)
		}
	}
	for _, name := range []string{"loop7", "/dev/mapper/nope", "bad", "", "/dev/", "..", "/abs"} {
		if ma, mi, err := DeviceNumber(sys, name); err == nil {
			t.Errorf("DeviceNumber(%q) = %d:%d, want an error", name, ma, mi)
		}
	}
	if _, _, err := DeviceNumber(sys, "loop7"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing device: %v, want ErrNotExist", err)
	}
}

func TestPartitionOf(t *testing.T) {
	sys := fakeSys(t)
	for _, tc := range []struct {
		disk   string
		sector uint64
		want   string
	}{
		{"sda", 0, "sda"}, {"sda", 2047, "sda"}, {"sda", 2048, "sda1"}, {"sda", 6143, "sda1"},
		{"sda", 6144, "sda2"}, {"sda", 14335, "sda2"}, {"sda", 14336, "sda"}, {"loop0", 99, "loop0"},
		{"/dev/sda", 3000, "sda1"},
	} {
		got, err := PartitionOf(sys, tc.disk, tc.sector)
		if err != nil || got != tc.want {
			t.Errorf("PartitionOf(%q, %d) = %q, %v; want %q", tc.disk, tc.sector, got, err, tc.want)
		}
	}
	if _, err := PartitionOf(sys, "nope", 0); err == nil {
		t.Error("PartitionOf of a missing disk succeeded")
	}
	if _, err := PartitionOf(sys, "broken", 0); err == nil {
		t.Error("PartitionOf with an unreadable partition start succeeded")
	}
}

func TestDeviceNumberReal(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	var st unix.Stat_t
	if err := unix.Stat(im.Dev, &st); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{im.Name, im.Dev} {
		ma, mi, err := DeviceNumber(DefaultSysRoot, name)
		if err != nil || ma != unix.Major(st.Rdev) || mi != unix.Minor(st.Rdev) {
			t.Errorf("DeviceNumber(%q) = %d:%d, %v; %s is %d:%d", name, ma, mi, err, im.Dev, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	// The mounted file system's st_dev is the loop device.
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	if ma, mi, _ := DeviceNumber(DefaultSysRoot, im.Name); ma != unix.Major(st.Dev) || mi != unix.Minor(st.Dev) {
		t.Errorf("ext4 st_dev %d:%d, DeviceNumber %d:%d", unix.Major(st.Dev), unix.Minor(st.Dev), ma, mi)
	}
	if p, err := PartitionOf(DefaultSysRoot, im.Name, 8); err != nil || p != im.Name {
		t.Errorf("PartitionOf(%s) = %q, %v", im.Name, p, err)
	}
}
