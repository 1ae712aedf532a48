package testutil

// LVM volume groups and LUKS mappings on device-mapper test devices, made
// with the real lvm2 and cryptsetup, where no udev runs (the kernel matrix
// guests): lvm is told not to wait for udev nor ask it for devices, to make
// its /dev entries itself and to keep no locks, backups or metadata
// archives outside the test; cryptsetup is told to take no locks, and both
// make device-mapper nodes themselves (DM_DISABLE_UDEV).

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// lvmConfig is the configuration every lvm command of the tests runs with
// (--config): no udev, no devices file, no lvmpolld nor dmeventd, no
// metadata backups, locks in the temporary directory. Only device-mapper
// devices are scanned: the tests' physical volumes are device-mapper
// devices over loop devices, and lvm would refuse a volume group whose
// physical volume it also found on the loop device under it (duplicates).
func lvmConfig(lockDir string) string {
	return `devices { obtain_device_list_from_udev=0 external_device_info_source="none" use_devicesfile=0 scan=["/dev"] filter=["a|^/dev/dm-|","a|^/dev/mapper/|","r|.*|"] }` +
		` activation { udev_sync=0 udev_rules=0 verify_udev_operations=1 monitoring=0 }` +
		` global { use_lvmpolld=0 locking_dir="` + lockDir + `" }` +
		` backup { backup=0 archive=0 }`
}

// RequireLVM is RequireDeviceMapper with the targets given, and lvm2's
// lvm installed.
func RequireLVM(t testing.TB, targets ...string) {
	t.Helper()
	RequireDeviceMapper(t, targets...)
	RequireCommand(t, "lvm", "lvm2")
}

// LVM runs the lvm command cmd (pvcreate, vgcreate, lvcreate, ...) with
// args and the tests' configuration, and returns its standard output.
func LVM(cmd string, args ...string) (string, error) {
	prog, err := loopfs.FindTool("lvm")
	if err != nil {
		return "", fmt.Errorf("%w (Debian package lvm2)", err)
	}
	lockDir := filepath.Join(os.TempDir(), "fshealth-test-lvm-lock")
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return "", err
	}
	c := exec.Command(prog, append([]string{cmd, "--config", lvmConfig(lockDir)}, args...)...)
	c.Env = append(os.Environ(), "DM_DISABLE_UDEV=1", "LVM_SUPPRESS_FD_WARNINGS=1", "LVM_SYSTEM_DIR="+lockDir)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("lvm %s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// VolumeGroup is an LVM volume group made by a test.
type VolumeGroup struct {
	Name string
	// PVs are the physical volumes' device nodes.
	PVs []string
}

// NewVolumeGroup makes the physical volumes pvs and a volume group of
// them, named after the test binary's pid and n; the group is removed
// (its logical volumes deactivated and removed) and the physical volumes
// wiped when the test ends, after the cleanups registered later (such as
// unmounting). The caller must have called RequireLVM.
func NewVolumeGroup(t testing.TB, n int, pvs ...string) *VolumeGroup {
	t.Helper()
	vg := &VolumeGroup{Name: fmt.Sprintf("fshtvg%d_%d", os.Getpid(), n), PVs: pvs}
	if _, err := LVM("pvcreate", append([]string{"-y", "-ff"}, pvs...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := LVM("vgcreate", append([]string{"-y", vg.Name}, pvs...)...); err != nil {
		LVM("pvremove", append([]string{"-y", "-ff"}, pvs...)...)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 50; i++ {
			if _, err = LVM("vgremove", "-y", "-ff", vg.Name); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("removing volume group %s: %v", vg.Name, err)
		}
		if _, err := LVM("pvremove", append([]string{"-y", "-ff"}, pvs...)...); err != nil {
			t.Errorf("wiping physical volumes %v: %v", pvs, err)
		}
	})
	return vg
}

// LogicalVolume is an active LVM logical volume.
type LogicalVolume struct {
	VG, Name string
	// Path is its /dev/VG/LV node (a link lvm made), KernelName its
	// device-mapper device ("dm-3"), DMName "VG-LV".
	Path, KernelName, DMName string
}

// CreateLV makes a logical volume of size MiB in the group, with extra
// lvcreate arguments ("--type", "raid1", "-m", "1", ...), and waits for its
// /dev/VG/LV node.
func (vg *VolumeGroup) CreateLV(t testing.TB, name string, sizeMiB int, extra ...string) *LogicalVolume {
	t.Helper()
	args := append([]string{"-y", "-W", "n", "-Z", "y", "-n", name, "-L", fmt.Sprintf("%dm", sizeMiB)}, extra...)
	if _, err := LVM("lvcreate", append(args, vg.Name)...); err != nil {
		t.Fatal(err)
	}
	lv := &LogicalVolume{VG: vg.Name, Name: name, Path: filepath.Join("/dev", vg.Name, name),
		DMName: strings.ReplaceAll(vg.Name, "-", "--") + "-" + strings.ReplaceAll(name, "-", "--")}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(lv.Path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear after lvcreate", lv.Path)
		}
	}
	real, err := filepath.EvalSymlinks(lv.Path)
	if err != nil {
		t.Fatal(err)
	}
	lv.KernelName = filepath.Base(real)
	if !strings.HasPrefix(lv.KernelName, "dm-") {
		lv.KernelName = DMKernelName(t, lv.DMName)
	}
	return lv
}

// DMKernelName returns the kernel name ("dm-0") of the device-mapper
// device called name.
func DMKernelName(t testing.TB, name string) string {
	t.Helper()
	paths, _ := filepath.Glob("/sys/class/block/dm-*/dm/name")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Base(filepath.Dir(filepath.Dir(p)))
		}
	}
	t.Fatalf("no device-mapper device called %s in /sys/class/block", name)
	return ""
}

// LUKS is an open LUKS2 mapping made by a test.
type LUKS struct {
	// Name is the mapping's name, Path its /dev/mapper node, KernelName
	// its device ("dm-4").
	Name, Path, KernelName string
}

// RequireCryptsetup is RequireDeviceMapper with the crypt target, and
// cryptsetup installed.
func RequireCryptsetup(t testing.TB) {
	t.Helper()
	RequireDeviceMapper(t, "crypt")
	RequireCommand(t, "cryptsetup", "cryptsetup-bin")
}

func cryptsetup(args ...string) error {
	prog, err := loopfs.FindTool("cryptsetup")
	if err != nil {
		return fmt.Errorf("%w (Debian package cryptsetup-bin)", err)
	}
	c := exec.Command(prog, append([]string{"--disable-locks"}, args...)...)
	c.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("cryptsetup %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewLUKS formats dev as LUKS2 (with a fast key derivation: PBKDF2 with
// few iterations, a test key) and opens it as a mapping named after the
// test binary's pid and n; the mapping is closed when the test ends, after
// the cleanups registered later. The caller must have called
// RequireCryptsetup.
func NewLUKS(t testing.TB, dev string, n int) *LUKS {
	t.Helper()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("fshealth test key, not a secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cryptsetup("luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--key-file", key, dev); err != nil {
		t.Fatal(err)
	}
	l := &LUKS{Name: fmt.Sprintf("fshtcrypt%d_%d", os.Getpid(), n)}
	if err := cryptsetup("open", "--type", "luks2", "--key-file", key, dev, l.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 50; i++ {
			if err = cryptsetup("close", l.Name); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("closing LUKS mapping %s: %v", l.Name, err)
	})
	l.Path = "/dev/mapper/" + l.Name
	l.KernelName = DMKernelName(t, l.Name)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(l.Path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear after cryptsetup open", l.Path)
		}
	}
	return l
}
