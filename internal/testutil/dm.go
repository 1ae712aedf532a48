package testutil

// Device-mapper devices for tests of real device failures: a scratch file
// system on a dm device over a loop device, whose table a test replaces at
// the moment it wants the device, or some sectors of it, to start failing
// (dm-flakey). (dm-dust, which fails reads of chosen blocks on demand, would
// do as well, but Debian's cloud kernels, which the kernel matrix boots, do
// not ship it.)
//
// Where these tests run. This VM's kernel (and the CI host's) has no
// device-mapper at all, while the Debian kernels of the kernel matrix have
// dm-mod and dm-flakey. RequireDeviceMapper therefore decides:
//
//   - not root: skip, or fail under CI=true (as every privileged test);
//   - inside a kernel-matrix guest (FSHEALTH_KERNEL_MATRIX is set by
//     matrix/init.sh): device-mapper or a target missing fails the test:
//     the guest loads those modules, so their absence is a broken matrix;
//   - elsewhere, a kernel that has no device-mapper at all (not loaded, not
//     built in, no dm-mod module installed): skip with that reason, also
//     under CI=true. No setting of the host can make such a test run; the
//     kernel matrix runs it on every supported kernel instead;
//   - elsewhere, a kernel that has device-mapper as a module that is not
//     loaded, or lacks one of the targets: skip, or fail under CI=true (the
//     host can be fixed: modprobe).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// MatrixGuestEnv is set (to "1") by the kernel matrix's /init in its guests.
const MatrixGuestEnv = "FSHEALTH_KERNEL_MATRIX"

// InMatrixGuest reports whether the test runs inside a kernel-matrix guest.
func InMatrixGuest() bool { return os.Getenv(MatrixGuestEnv) != "" }

// RequireDeviceMapper skips or fails t unless the kernel has device-mapper
// with the targets named (e.g. "flakey"; "linear" is always
// required) and dmsetup is installed, following the rule in this file's
// comment.
func RequireDeviceMapper(t testing.TB, targets ...string) {
	t.Helper()
	RequireRoot(t)
	release := kernelRelease()
	if !procMiscHas("device-mapper") {
		switch {
		case InMatrixGuest():
			t.Fatalf("kernel %s in the kernel matrix guest has no device-mapper: dm_mod should have been loaded (matrix/testset.go guestModules)", release)
		case kernelModuleInstalled(release, "dm-mod"):
			require(t, fmt.Sprintf("needs device-mapper: kernel %s has it as a module that is not loaded (modprobe dm_mod)", release))
		default:
			Skip(t, KernelLacks, "needs device-mapper, which kernel %s lacks (not built in, no dm-mod module): skipped even under CI=true, no host setting can provide it; the kernel matrix (go run ./matrix) runs this test on Debian's kernels, which have it", release)
		}
		return
	}
	RequireCommand(t, "dmsetup", "dmsetup")
	have, err := dmTargets()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range append([]string{"linear"}, targets...) {
		if have[target] || kernelModuleInstalled(release, "dm-"+target) && !InMatrixGuest() {
			// A target whose module is installed is loaded by the kernel
			// when a table first names it.
			continue
		}
		if InMatrixGuest() {
			t.Fatalf("kernel %s in the kernel matrix guest has no device-mapper target %q: dm_%s should have been loaded (matrix/testset.go guestModules)", release, target, target)
		}
		require(t, fmt.Sprintf("needs the device-mapper target %q, which kernel %s lacks (modprobe dm_%s)", target, release, target))
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// procMiscHas reports whether /proc/misc lists a misc device called name
// ("device-mapper" when dm_mod is loaded or built in).
func procMiscHas(name string) bool {
	b, err := os.ReadFile("/proc/misc")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == name {
			return true
		}
	}
	return false
}

// kernelModuleInstalled reports whether kernel release has module (as
// "dm-mod"; "_" and "-" are the same to the kernel) installed under
// /lib/modules, as a file or built in.
func kernelModuleInstalled(release, module string) bool {
	dir := filepath.Join("/lib/modules", release)
	norm := func(s string) string { return strings.ReplaceAll(s, "_", "-") }
	want := norm(module)
	found := false
	filepath.WalkDir(filepath.Join(dir, "kernel", "drivers", "md"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			base, _, _ := strings.Cut(d.Name(), ".ko")
			if norm(base) == want {
				found = true
			}
		}
		return nil
	})
	if found {
		return true
	}
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		base, _, _ := strings.Cut(filepath.Base(line), ".ko")
		if line != "" && norm(base) == want {
			return true
		}
	}
	return false
}

// dmTargets lists the device-mapper targets the kernel has loaded.
func dmTargets() (map[string]bool, error) {
	out, err := dmsetup(nil, "targets")
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			have[f[0]] = true
		}
	}
	return have, nil
}

// dmsetup runs dmsetup with args, the table (if any) on its standard input,
// managing /dev/mapper itself instead of waiting for udev (the matrix guests
// have none), and returns its standard output.
func dmsetup(table io.Reader, args ...string) (string, error) {
	prog, err := loopfs.FindTool("dmsetup")
	if err != nil {
		return "", fmt.Errorf("%w (Debian package dmsetup)", err)
	}
	cmd := exec.Command(prog, append([]string{"--noudevsync"}, args...)...)
	cmd.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
	cmd.Stdin = table
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("dmsetup %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// DMDevice is a device-mapper device over a loop device.
type DMDevice struct {
	// Name is the mapped device's name ("fshealth-test-1234-1").
	Name string
	// KernelName is the kernel's name of the device ("dm-0"), Dev its node
	// ("/dev/dm-0"): what the kernel log and the mount registry name.
	KernelName, Dev string
	// Backing is the loop device under it ("/dev/loop3"), Sectors its size
	// in 512-byte sectors.
	Backing string
	Sectors int64
	// file is the loop device's backing file, as the kernel shows it.
	file string
}

var dmCount int

// NewDMDevice attaches file to a loop device and makes a device-mapper
// device over it with table (see LinearTable), which is given the loop
// device and its size. The device is removed when the test ends (after
// the cleanups registered later, such as unmounting), and the loop device
// goes with it. The caller must have called RequireDeviceMapper.
func NewDMDevice(t testing.TB, file string, table func(backing string, sectors int64) string) *DMDevice {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	backing, hold, err := loopfs.Attach(file)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close() // the dm table holds the loop device from now on
	dmCount++
	d := &DMDevice{Name: fmt.Sprintf("fshealth-test-%d-%d", os.Getpid(), dmCount), Backing: backing, Sectors: st.Size() / 512, file: file}
	if abs, err := filepath.Abs(file); err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			d.file = real
		}
	}
	if _, err := dmsetup(strings.NewReader(table(backing, d.Sectors)), "create", d.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.remove(); err != nil {
			t.Errorf("removing device-mapper device %s: %v", d.Name, err)
		}
	})
	out, err := dmsetup(nil, "info", "-c", "--noheadings", "-o", "major,minor", d.Name)
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "%d:%d", &major, &minor); err != nil {
		t.Fatalf("dmsetup info %s: %q: %v", d.Name, out, err)
	}
	d.KernelName = "dm-" + strconv.Itoa(minor)
	d.Dev = "/dev/" + d.KernelName
	// devtmpfs makes the node; wait for it, briefly.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var st unix.Stat_t
		if err := unix.Stat(d.Dev, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == unix.Mkdev(uint32(major), uint32(minor)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (device-mapper %s, %d:%d) did not appear", d.Dev, d.Name, major, minor)
		}
	}
	return d
}

// Reload replaces the device's table at once: dmsetup suspend (which
// flushes and freezes a file system on it), load, resume.
func (d *DMDevice) Reload(t testing.TB, table string) {
	t.Helper()
	if _, err := dmsetup(nil, "suspend", d.Name); err != nil {
		t.Fatal(err)
	}
	_, err := dmsetup(strings.NewReader(table), "load", d.Name)
	if _, rerr := dmsetup(nil, "resume", d.Name); err == nil {
		err = rerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Message sends a message to the device's target at sector 0, as
// `dmsetup message NAME 0 ARGS...` (dm-flakey: "corrupt_bio_byte ...",
// dm-dust: "addbadblock 8").
func (d *DMDevice) Message(t testing.TB, args ...string) {
	t.Helper()
	if _, err := dmsetup(nil, append([]string{"message", d.Name, "0"}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// remove removes the device, retrying while it is busy (a lazily detached
// mount still closing it), and waits until the loop device under it, which
// it held, is detached.
func (d *DMDevice) remove() error {
	var err error
	for i := 0; i < 50; i++ {
		if _, err = dmsetup(nil, "remove", d.Name); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	name := filepath.Base(d.Backing)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// Gone, or already reused for another file.
		if files, err := loopfs.BackingFiles(); err == nil && files[name] != d.file {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("removed, but %s is still attached to %s", d.Backing, d.file)
		}
	}
}

// DMLeaks lists the device-mapper devices this test binary made that still
// exist.
func DMLeaks() []string {
	names, _ := filepath.Glob("/sys/block/dm-*/dm/name")
	var leaks []string
	prefix := fmt.Sprintf("fshealth-test-%d-", os.Getpid())
	for _, p := range names {
		b, err := os.ReadFile(p)
		if name := strings.TrimSpace(string(b)); err == nil && strings.HasPrefix(name, prefix) {
			leaks = append(leaks, "device-mapper device "+name+" ("+filepath.Base(filepath.Dir(filepath.Dir(p)))+")")
		}
	}
	return leaks
}

// LinearTable is a table mapping the whole backing device unchanged.
func LinearTable(backing string, sectors int64) string {
	return fmt.Sprintf("0 %d linear %s 0\n", sectors, backing)
}

// FlakeyTable is a dm-flakey table over the whole backing device that is
// unreliable all the time (up 0 s, down 1 s): with no features every I/O
// fails; with "error_writes" only writes fail; with "drop_writes" writes
// are silently dropped.
func FlakeyTable(backing string, sectors int64, features ...string) string {
	return fmt.Sprintf("0 %d %s\n", sectors, flakey(backing, 0, features))
}

// FlakeyRangeTable maps the backing device unchanged except sectors
// [start, start+length), which go through dm-flakey with features, always
// down (see FlakeyTable).
func FlakeyRangeTable(backing string, sectors, start, length int64, features ...string) string {
	var b strings.Builder
	if start > 0 {
		fmt.Fprintf(&b, "0 %d linear %s 0\n", start, backing)
	}
	fmt.Fprintf(&b, "%d %d %s\n", start, length, flakey(backing, start, features))
	if end := start + length; end < sectors {
		fmt.Fprintf(&b, "%d %d linear %s %d\n", end, sectors-end, backing, end)
	}
	return b.String()
}

func flakey(backing string, offset int64, features []string) string {
	s := fmt.Sprintf("flakey %s %d 0 1", backing, offset)
	if len(features) > 0 {
		s += fmt.Sprintf(" %d %s", len(features), strings.Join(features, " "))
	}
	return s
}

// DMFilesystem is a scratch file system on a device-mapper device.
type DMFilesystem struct {
	*DMDevice
	FSType     string
	Image      string // the image file under the loop device
	Mountpoint string
	options    string
	mounted    bool
}

// NewDMFilesystem formats an image file of size bytes with fstype (as
// loopfs.Create), puts a device-mapper device with table over it (see
// NewDMDevice), and mounts it at <tmp>/mnt with options. The caller must
// have called RequireDeviceMapper. When the test ends the device's table is
// made linear again (so that unmounting writes no errors), the file system
// is unmounted and the device, the loop device and the image are removed;
// a leak fails the test.
func NewDMFilesystem(t testing.TB, fstype string, size int64, options string, table func(string, int64) string, mkfsArgs ...string) *DMFilesystem {
	t.Helper()
	prog, pkg := loopfs.MkfsPackage(fstype)
	RequireCommand(t, prog, pkg)
	dir := t.TempDir()
	t.Cleanup(func() {
		for _, l := range DMLeaks() {
			t.Errorf("leak: %s", l)
		}
	})
	im, err := loopfs.Create(dir, fstype, size, mkfsArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(im.File) })
	f := &DMFilesystem{DMDevice: NewDMDevice(t, im.File, table), FSType: fstype, Image: im.File,
		Mountpoint: filepath.Join(dir, "mnt"), options: options}
	t.Cleanup(func() {
		if _, err := dmsetup(strings.NewReader(LinearTable(f.Backing, f.Sectors)), "load", f.Name); err == nil {
			dmsetup(nil, "resume", f.Name)
		}
		if err := f.Unmount(); err != nil {
			t.Errorf("unmounting %s: %v", f.Mountpoint, err)
		}
	})
	if err := os.Mkdir(f.Mountpoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(); err != nil {
		t.Fatal(err)
	}
	return f
}

// Mount mounts the file system at its mount point, with noatime: reading
// a file writes nothing, so a test's failing reads cause no writes.
func (f *DMFilesystem) Mount() error {
	if err := unix.Mount(f.Dev, f.Mountpoint, f.FSType, unix.MS_NOATIME, f.options); err != nil {
		return fmt.Errorf("mount %s (%s) on %s as %s with options %q: %w", f.Dev, f.Name, f.Mountpoint, f.FSType, f.options, err)
	}
	f.mounted = true
	return nil
}

// Unmount unmounts the file system (lazily if it stays busy); unmounting
// one that is not mounted does nothing.
func (f *DMFilesystem) Unmount() error {
	if !f.mounted {
		return nil
	}
	var err error
	for i := 0; i < 20; i++ {
		if err = unix.Unmount(f.Mountpoint, 0); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(f.Mountpoint, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("unmount %s (%s): %w", f.Mountpoint, f.Dev, err)
	}
	f.mounted = false
	return nil
}

// Remount unmounts and mounts the file system again, so that nothing of it
// is cached: the next access to a file reads its metadata from the device.
func (f *DMFilesystem) Remount(t testing.TB) {
	t.Helper()
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(); err != nil {
		t.Fatal(err)
	}
}

// ReadImageAt reads len(b) bytes of the device at byte offset off, from
// the image file under it (the device maps it unchanged), bypassing the
// device and its caches.
func (f *DMFilesystem) ReadImageAt(t testing.TB, b []byte, off int64) {
	t.Helper()
	file, err := os.Open(f.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// FindInImage returns the byte offset of marker in the image file, where
// it must occur exactly once (fail the test otherwise). Data a test wrote
// into a file and synced is found on the device this way, whatever the
// file system's own addressing; the device maps the image unchanged.
func (f *DMFilesystem) FindInImage(t testing.TB, marker []byte) int64 {
	t.Helper()
	file, err := os.Open(f.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 1<<20)
	const chunk = 1 << 20
	buf := make([]byte, 0, chunk+len(marker))
	found, base := int64(-1), int64(0)
	for {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for i := 0; ; {
			j := bytes.Index(buf[i:], marker)
			if j < 0 {
				break
			}
			if found >= 0 {
				t.Fatalf("the marker is in %s more than once (at %d and %d)", f.Image, found, base+int64(i+j))
			}
			found = base + int64(i+j)
			i += j + 1
		}
		if err != nil {
			break
		}
		// Keep the last len(marker)-1 bytes: a marker across chunks.
		keep := len(marker) - 1
		base += int64(len(buf) - keep)
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
	if found < 0 {
		t.Fatalf("the marker is not in %s", f.Image)
	}
	return found
}
