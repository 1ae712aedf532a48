// Package loopfs creates scratch file system images, attaches them to loop
// devices and mounts them. It is used by privileged tests, by `fshealth demo`
// and by benchmarks to produce real file system errors on throw-away file
// systems.
//
// Loop devices are attached with LO_FLAGS_AUTOCLEAR, so the kernel detaches a
// device as soon as its file system is unmounted, and nothing stays attached
// when the process dies between attaching and mounting. Everything here needs
// root (CAP_SYS_ADMIN).
//
// An Image is not safe for concurrent use by several goroutines.
package loopfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Image is a scratch file system image file, optionally attached to a loop
// device and mounted.
type Image struct {
	File       string // image file path
	FSType     string // "ext4", "xfs", "btrfs"
	Dev        string // "/dev/loopN" while mounted, else ""
	Name       string // kernel device name "loopN" while mounted (the /sys/fs/ext4/<Name> directory)
	Mountpoint string // while mounted
}

// mkfsCommands lists, for each supported file system type, the mkfs program,
// the flags that make it quiet and forced, and the Debian package shipping it.
var mkfsCommands = map[string]struct {
	prog  string
	flags []string
	pkg   string
}{
	"ext4":  {"mkfs.ext4", []string{"-q", "-F"}, "e2fsprogs"},
	"xfs":   {"mkfs.xfs", []string{"-q", "-f"}, "xfsprogs"},
	"btrfs": {"mkfs.btrfs", []string{"-q", "-f"}, "btrfs-progs"},
}

// MkfsPackage returns the mkfs program for fstype and the Debian package that
// ships it, or empty strings when fstype is not supported by Create.
func MkfsPackage(fstype string) (program, debianPackage string) {
	c, ok := mkfsCommands[fstype]
	if !ok {
		return "", ""
	}
	return c.prog, c.pkg
}

// sbinDirs are searched by FindTool after $PATH, because mkfs and debugfs
// live in sbin directories that are often missing from a non-login PATH.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// FindTool returns the path of the external program name, looking in $PATH
// first and then in /usr/sbin, /sbin and /usr/local/sbin.
func FindTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("loopfs: %s not found in $PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// Create creates dir/<fstype>-<random>.img as a sparse file of size bytes and
// formats it with mkfs.<fstype>, run quietly and forced (ext4: mkfs.ext4 -q -F;
// xfs: mkfs.xfs -q -f; btrfs: mkfs.btrfs -q -f). Extra mkfsArgs go before the
// file name. The returned Image is not mounted; File is an absolute path with
// symbolic links resolved, so it matches what the kernel reports as the loop
// device's backing file.
func Create(dir, fstype string, size int64, mkfsArgs ...string) (*Image, error) {
	c, ok := mkfsCommands[fstype]
	if !ok {
		return nil, fmt.Errorf("loopfs: unsupported file system type %q (want ext4, xfs or btrfs)", fstype)
	}
	if size <= 0 {
		return nil, fmt.Errorf("loopfs: image size %d for %s is not positive", size, fstype)
	}
	prog, err := FindTool(c.prog)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package %s)", err, c.pkg)
	}
	absDir, err := filepath.Abs(dir)
	if err == nil {
		absDir, err = filepath.EvalSymlinks(absDir)
	}
	if err != nil {
		return nil, fmt.Errorf("loopfs: image directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(absDir, fstype+"-*.img")
	if err != nil {
		return nil, fmt.Errorf("loopfs: creating image file in %s: %w", absDir, err)
	}
	im := &Image{File: f.Name(), FSType: fstype}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(im.File)
		return nil, fmt.Errorf("loopfs: sizing image file %s to %d bytes: %w", im.File, size, err)
	}
	args := append(append(append([]string{}, c.flags...), mkfsArgs...), im.File)
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		os.Remove(im.File)
		return nil, fmt.Errorf("loopfs: %s %s: %w%s", prog, strings.Join(args, " "), err, outputSuffix(out))
	}
	return im, nil
}

// outputSuffix formats a command's output for inclusion in an error message.
func outputSuffix(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	return ": " + s
}

// Mounted reports whether the image is currently attached and mounted by Mount.
func (im *Image) Mounted() bool { return im.Dev != "" }

// Mount attaches the image to a free loop device and mounts it on mountpoint
// with type FSType and the file system specific data options (for example
// "errors=continue"; "ro" is understood too). It creates mountpoint if it is
// missing. The loop device is attached with ioctls on /dev/loop-control and
// /dev/loopN, with LO_FLAGS_AUTOCLEAR: if the mount fails, or the process dies
// before it succeeds, the device is detached again by the kernel.
func (im *Image) Mount(mountpoint, options string) error {
	if im.Mounted() {
		return fmt.Errorf("loopfs: image %s is already mounted on %s (%s)", im.File, im.Mountpoint, im.Dev)
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return fmt.Errorf("loopfs: creating mount point for %s: %w", im.File, err)
	}
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return fmt.Errorf("loopfs: mount point %s: %w", mountpoint, err)
	}
	n, hold, err := attachLoop(im.File)
	if err != nil {
		return err
	}
	// The device stays attached as long as hold is open; once the mount
	// holds the block device, closing it leaves the detaching to AUTOCLEAR
	// at unmount time. If the mount fails, closing it detaches the device.
	defer unix.Close(hold)
	dev := fmt.Sprintf("/dev/loop%d", n)
	if err := unix.Mount(dev, mp, im.FSType, 0, options); err != nil {
		return fmt.Errorf("loopfs: mount %s (image %s) on %s as %s with options %q: %w", dev, im.File, mp, im.FSType, options, err)
	}
	im.Dev, im.Name, im.Mountpoint = dev, fmt.Sprintf("loop%d", n), mp
	return nil
}

// attachLoop attaches file to a free loop device with LO_FLAGS_AUTOCLEAR and
// returns the device number and a read-only file descriptor of the device that
// keeps it attached until it is closed. The read-write descriptor used for
// LOOP_CONFIGURE is closed before returning, because kernels built without
// CONFIG_BLK_DEV_WRITE_MOUNTED refuse to mount a block device open for writing.
func attachLoop(file string) (int, int, error) {
	img, err := unix.Open(file, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, -1, fmt.Errorf("loopfs: opening image %s: %w", file, err)
	}
	defer unix.Close(img)
	const control = "/dev/loop-control"
	ctl, err := unix.Open(control, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, -1, fmt.Errorf("loopfs: %s does not exist: the loop driver is not available (modprobe loop) or /dev is not a devtmpfs", control)
	}
	if err != nil {
		return 0, -1, fmt.Errorf("loopfs: opening %s: %w", control, err)
	}
	defer unix.Close(ctl)

	var lastErr error
	for attempt := 0; attempt < 100; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Millisecond)
		}
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return 0, -1, fmt.Errorf("loopfs: LOOP_CTL_GET_FREE on %s: %w", control, err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		rw, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return 0, -1, fmt.Errorf("loopfs: %s does not exist although the kernel allocated loop%d: /dev is not a devtmpfs (create the node with mknod %s b 7 %d)", dev, n, dev, n)
		}
		if errors.Is(err, unix.EBUSY) {
			// Mounted by someone else who got the same free device.
			lastErr = fmt.Errorf("opening %s: %w", dev, err)
			continue
		}
		if err != nil {
			return 0, -1, fmt.Errorf("loopfs: opening %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(img)}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
		err = unix.IoctlLoopConfigure(rw, &cfg)
		if errors.Is(err, unix.EBUSY) {
			// Another process configured the same free device first.
			unix.Close(rw)
			lastErr = fmt.Errorf("LOOP_CONFIGURE on %s: %w", dev, err)
			continue
		}
		if err != nil {
			unix.Close(rw)
			return 0, -1, fmt.Errorf("loopfs: LOOP_CONFIGURE of %s with image %s: %w", dev, file, err)
		}
		ro, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		unix.Close(rw)
		if err != nil {
			// Closing rw was the last close: AUTOCLEAR has detached it.
			return 0, -1, fmt.Errorf("loopfs: reopening %s read-only after attaching %s: %w", dev, file, err)
		}
		return n, ro, nil
	}
	return 0, -1, fmt.Errorf("loopfs: attaching %s: no free loop device after 100 attempts: %w", file, lastErr)
}

// Timeouts used by Unmount; variables so that tests can shorten them.
var (
	busyRetries   = 10
	busyDelay     = 50 * time.Millisecond
	detachTimeout = 5 * time.Second
)

// Unmount unmounts the image and waits until its loop device is detached, so
// that the image file can be modified offline again. When the file system is
// busy (EBUSY) it retries a few times over about half a second and then
// detaches the mount lazily (MNT_DETACH). It waits at most a few seconds for
// the kernel to detach the loop device; if it is still attached then (a lazily
// detached mount still in use), it returns an error, but the Image counts as
// unmounted. Unmount of an image that is not mounted does nothing.
func (im *Image) Unmount() error {
	if !im.Mounted() {
		return nil
	}
	mp, dev, name := im.Mountpoint, im.Dev, im.Name
	var err error
	for i := 0; ; i++ {
		err = unix.Unmount(mp, 0)
		if !errors.Is(err, unix.EBUSY) || i >= busyRetries {
			break
		}
		time.Sleep(busyDelay)
	}
	lazy := false
	if errors.Is(err, unix.EBUSY) {
		lazy = true
		err = unix.Unmount(mp, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("loopfs: unmount %s (%s, image %s): %w", mp, dev, im.File, err)
	}
	// EINVAL: mp is no longer a mount point (someone else unmounted it);
	// carry on and wait for the device to go.
	im.Dev, im.Name, im.Mountpoint = "", "", ""
	if err := waitDetached(name, resolvePath(im.File), detachTimeout); err != nil {
		how := ""
		if lazy {
			how = " (file system was busy and detached lazily: files are still open in it)"
		}
		return fmt.Errorf("loopfs: unmounted %s but %s%s: %w", mp, dev, how, err)
	}
	return nil
}

// resolvePath returns file as an absolute path with symbolic links resolved,
// the form the kernel shows as a loop device's backing file, or file itself
// when it cannot be resolved.
func resolvePath(file string) string {
	p, err := filepath.Abs(file)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		return file
	}
	return p
}

// waitDetached polls until loop device name no longer has file as its backing
// file, for at most timeout.
func waitDetached(name, file string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		b, err := loopBackingFile(name)
		if err != nil || b != file {
			// Gone, or already reused for another file.
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still attached to %s after %v", file, timeout)
		}
		time.Sleep(delay)
	}
}

// loopBackingFile returns the backing file of loop device name (like "loop0")
// as shown in /sys/block/<name>/loop/backing_file, without the " (deleted)"
// suffix the kernel adds for deleted files.
func loopBackingFile(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", name, "loop", "backing_file"))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)"), nil
}

// BackingFiles returns the attached loop devices, mapping kernel device names
// ("loop3") to their backing files, read from /sys/block/*/loop/backing_file.
// The " (deleted)" suffix the kernel shows for deleted files is removed.
func BackingFiles() (map[string]string, error) {
	names, err := filepath.Glob("/sys/block/loop*")
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, p := range names {
		name := filepath.Base(p)
		b, err := loopBackingFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not attached, or removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("loopfs: reading backing file of %s: %w", name, err)
		}
		m[name] = b
	}
	return m, nil
}

// Debugfs runs `debugfs -w -R request File` on the unmounted ext4 image.
// debugfs exits with status 0 even when the request fails, so Debugfs treats
// every line on its standard error other than the "debugfs 1.xx" version
// banner as a failure and returns those lines in the error.
func (im *Image) Debugfs(request string) error {
	_, err := im.DebugfsOutput(request)
	return err
}

// DebugfsOutput is like Debugfs but also returns what debugfs printed on its
// standard output, for requests such as "stat dir/bad" or "testi <12>".
func (im *Image) DebugfsOutput(request string) (string, error) {
	if im.FSType != "ext4" {
		return "", fmt.Errorf("loopfs: debugfs %q on %s: debugfs needs ext4, image is %s", request, im.File, im.FSType)
	}
	if im.Mounted() {
		return "", fmt.Errorf("loopfs: debugfs %q on %s: image is mounted on %s (%s); unmount it first", request, im.File, im.Mountpoint, im.Dev)
	}
	prog, err := FindTool("debugfs")
	if err != nil {
		return "", fmt.Errorf("%w (Debian package e2fsprogs)", err)
	}
	cmd := exec.Command(prog, "-w", "-R", request, im.File)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var problems []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "debugfs ") && !strings.Contains(line, ":") {
			continue // "debugfs 1.47.0 (5-Feb-2023)"
		}
		problems = append(problems, line)
	}
	switch {
	case err != nil:
		return stdout.String(), fmt.Errorf("loopfs: debugfs -w -R %q %s: %w%s", request, im.File, err, outputSuffix([]byte(strings.Join(problems, "; "))))
	case len(problems) > 0:
		return stdout.String(), fmt.Errorf("loopfs: debugfs -w -R %q %s: %s", request, im.File, strings.Join(problems, "; "))
	}
	return stdout.String(), nil
}

// requireMountedExt4 returns an error naming op unless the image is a mounted
// ext4 file system.
func (im *Image) requireMountedExt4(op string) error {
	if im.FSType != "ext4" {
		return fmt.Errorf("loopfs: %s on %s: needs ext4, image is %s", op, im.File, im.FSType)
	}
	if !im.Mounted() {
		return fmt.Errorf("loopfs: %s on %s: image is not mounted", op, im.File)
	}
	return nil
}

// SysfsDir returns the file system's sysfs directory, "/sys/fs/ext4/<Name>"
// for ext4 and "/sys/fs/xfs/<Name>" for xfs, or "" when the image is not
// mounted or is btrfs (whose directory is named after its UUID).
func (im *Image) SysfsDir() string {
	if !im.Mounted() || (im.FSType != "ext4" && im.FSType != "xfs") {
		return ""
	}
	return filepath.Join("/sys/fs", im.FSType, im.Name)
}

// TriggerError makes ext4 report a file system error with message msg by
// writing msg to /sys/fs/ext4/<Name>/trigger_fs_error. The kernel records it
// like any other error (errors_count, last_error_*) and reports EUCLEAN not
// tied to an inode. msg must not be empty: the kernel ignores empty messages.
func (im *Image) TriggerError(msg string) error {
	if err := im.requireMountedExt4("trigger_fs_error"); err != nil {
		return err
	}
	if strings.TrimSuffix(msg, "\n") == "" {
		return fmt.Errorf("loopfs: trigger_fs_error on %s: empty message (the kernel ignores it)", im.Dev)
	}
	p := filepath.Join(im.SysfsDir(), "trigger_fs_error")
	if err := os.WriteFile(p, []byte(msg), 0); err != nil {
		return fmt.Errorf("loopfs: writing %s (image %s): %w", p, im.File, err)
	}
	return nil
}

// ErrorsCount returns the ext4 error counter kept in the superblock, read
// from /sys/fs/ext4/<Name>/errors_count.
func (im *Image) ErrorsCount() (int, error) {
	if err := im.requireMountedExt4("errors_count"); err != nil {
		return 0, err
	}
	p := filepath.Join(im.SysfsDir(), "errors_count")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("loopfs: reading %s: %w", p, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("loopfs: parsing %s: %w", p, err)
	}
	return n, nil
}

// Abort aborts the mounted ext4 file system the way `mount -o remount,ro,abort`
// does: mount(2) with MS_REMOUNT|MS_RDONLY and the data option "abort". ext4
// aborts its journal, records an ESHUTDOWN error (reported through fanotify
// FAN_FS_ERROR) and turns read-only: later writes fail with EROFS.
//
// A read-only remount fails with EBUSY while any file is open for writing on
// the file system. Abort then remounts without MS_RDONLY (like
// `mount -o remount,abort`): ext4 aborts just the same and makes itself
// read-only ("emergency_ro"), although the mount stays nominally "rw".
// The image stays mounted; Unmount works as usual.
func (im *Image) Abort() error {
	if err := im.requireMountedExt4("abort"); err != nil {
		return err
	}
	err := unix.Mount("", im.Mountpoint, "", unix.MS_REMOUNT|unix.MS_RDONLY, "abort")
	if errors.Is(err, unix.EBUSY) {
		err = unix.Mount("", im.Mountpoint, "", unix.MS_REMOUNT, "abort")
	}
	if err != nil {
		return fmt.Errorf("loopfs: remount %s (%s) with abort: %w", im.Mountpoint, im.Dev, err)
	}
	return nil
}

// Remove unmounts the image if it is mounted and deletes its file. It is safe
// to call more than once. If unmounting fails, the file is kept.
func (im *Image) Remove() error {
	if err := im.Unmount(); err != nil {
		if im.Mounted() {
			return err
		}
		// Unmounted, but the loop device lingers (lazy unmount of a busy
		// file system): deleting the file is still fine, the kernel keeps
		// it until the device goes.
		if rerr := os.Remove(im.File); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return errors.Join(err, fmt.Errorf("loopfs: removing image %s: %w", im.File, rerr))
		}
		return err
	}
	if err := os.Remove(im.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("loopfs: removing image %s: %w", im.File, err)
	}
	return nil
}
