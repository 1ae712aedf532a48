package btrfs_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// newBtrfs creates and mounts a scratch single-device btrfs file system
// (default profiles: data single, metadata DUP) and checks that nothing of
// it is left behind when the test ends.
func newBtrfs(t *testing.T) *loopfs.Image {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "mkfs.btrfs", "btrfs-progs")
	testutil.RequireCommand(t, "btrfs", "btrfs-progs")
	testutil.CheckNoLeaks(t)
	return testutil.NewImage(t, "btrfs", 256<<20, "")
}

// btrfsTool runs the btrfs program and returns its standard output and exit
// code; it fails the test if the program cannot be run at all.
func btrfsTool(t *testing.T, args ...string) (string, int) {
	t.Helper()
	prog, err := loopfs.FindTool("btrfs")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("btrfs %s: %v", strings.Join(args, " "), err)
	}
	if stderr.Len() > 0 {
		t.Logf("btrfs %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

// statLine matches a line of `btrfs device stats`, e.g.
// "[/dev/loop2].corruption_errs  3".
var statLine = regexp.MustCompile(`^\[(.*)\]\.(\w+)\s+(\d+)$`)

// toolStats returns what `btrfs device stats mountpoint` says, by device
// path, as DeviceStats without DevID.
func toolStats(t *testing.T, mountpoint string) map[string]btrfs.DeviceStats {
	t.Helper()
	out, code := btrfsTool(t, "device", "stats", mountpoint)
	if code != 0 {
		t.Fatalf("btrfs device stats %s: exit status %d\n%s", mountpoint, code, out)
	}
	m := make(map[string]btrfs.DeviceStats)
	for line := range strings.Lines(out) {
		sm := statLine.FindStringSubmatch(strings.TrimSpace(line))
		if sm == nil {
			t.Fatalf("btrfs device stats: unexpected line %q", line)
		}
		n, _ := strconv.ParseUint(sm[3], 10, 64)
		d := m[sm[1]]
		d.Path = sm[1]
		switch sm[2] {
		case "write_io_errs":
			d.WriteErrs = n
		case "read_io_errs":
			d.ReadErrs = n
		case "flush_io_errs":
			d.FlushErrs = n
		case "corruption_errs":
			d.CorruptionErrs = n
		case "generation_errs":
			d.GenerationErrs = n
		default:
			t.Fatalf("btrfs device stats: unknown counter in %q", line)
		}
		m[sm[1]] = d
	}
	return m
}

// checkSources reads the counters of the file system mounted on mountpoint
// through sysfs, through ioctls and with `btrfs device stats`, checks that
// all three agree, and returns the sysfs reading.
func checkSources(t *testing.T, mountpoint string) (string, []btrfs.DeviceStats) {
	t.Helper()
	uuid, devs, err := btrfs.Stats(mountpoint, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/btrfs", uuid, "devinfo", "1", "error_stats")); err != nil {
		t.Errorf("the kernel's error_stats for the file system: %v", err)
	}
	iuuid, idevs, err := btrfs.ReadIoctl(mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	if iuuid != uuid || !reflect.DeepEqual(idevs, devs) {
		t.Errorf("sysfs and ioctl disagree:\nsysfs %s %+v\nioctl %s %+v", uuid, devs, iuuid, idevs)
	}
	sdevs, err := btrfs.ReadSysfs("/sys", uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(sdevs) != len(devs) {
		t.Errorf("ReadSysfs has %d devices, Stats %d", len(sdevs), len(devs))
	}
	for i := range min(len(sdevs), len(devs)) {
		want := devs[i]
		want.Path = ""
		if sdevs[i] != want {
			t.Errorf("ReadSysfs %+v, Stats %+v", sdevs[i], devs[i])
		}
	}
	tool := toolStats(t, mountpoint)
	if len(tool) != len(devs) {
		t.Errorf("btrfs device stats shows %d devices, Stats %d: %+v", len(tool), len(devs), tool)
	}
	for _, d := range devs {
		want := d
		want.DevID = 0
		if got := tool[d.Path]; got != want {
			t.Errorf("btrfs device stats says %+v, Stats %+v", got, d)
		}
	}
	return uuid, devs
}

func TestFreshFilesystemCountsNothing(t *testing.T) {
	im := newBtrfs(t)
	uuid, devs := checkSources(t, im.Mountpoint)
	want := []btrfs.DeviceStats{{DevID: 1, Path: im.Dev}}
	if !reflect.DeepEqual(devs, want) {
		t.Errorf("Stats = %+v, want %+v", devs, want)
	}
	out, _ := btrfsTool(t, "filesystem", "show", im.Mountpoint)
	if !strings.Contains(out, "uuid: "+uuid) {
		t.Errorf("btrfs filesystem show does not name UUID %s:\n%s", uuid, out)
	}
	var tr btrfs.Tracker
	if incs := tr.Update(uuid, devs); incs != nil {
		t.Errorf("baseline reported %+v", incs)
	}
}

// writeVictim writes a 64 KiB file of random data, too large to be inlined
// in the metadata, whose first bytes are a random marker, syncs it and
// returns the marker.
func writeVictim(t *testing.T, path string) []byte {
	t.Helper()
	data := make([]byte, 64<<10)
	rand.Read(data)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	return data[:32]
}

// corruptImage overwrites the one copy of marker in the unmounted image file
// with other bytes, and fails the test unless there is exactly one.
func corruptImage(t *testing.T, file string, marker []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []int64
	buf := make([]byte, 1<<20+len(marker))
	var base int64 // file offset of buf[0]
	keep := 0      // bytes at the start of buf carried over from the last chunk
	for {
		n, err := io.ReadFull(f, buf[keep:])
		end := keep + n
		for i := 0; ; {
			j := bytes.Index(buf[i:end], marker)
			if j < 0 {
				break
			}
			found = append(found, base+int64(i+j))
			i += j + 1
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keep = len(marker) - 1
		copy(buf, buf[end-keep:end])
		base += int64(end - keep)
	}
	if len(found) != 1 {
		t.Fatalf("the marker is %d times in %s (at %v), want once", len(found), file, found)
	}
	bad := bytes.Repeat([]byte{0x5a}, len(marker))
	if _, err := f.WriteAt(bad, found[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// dropCaches writes back and drops the page cache, so that reads go to disk.
func dropCaches(t *testing.T) {
	t.Helper()
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// corruptedVictim writes a file on im, corrupts its data on disk while the
// file system is unmounted, mounts it again with cold caches and returns the
// file's path. Reading the file then fails with EIO: the default data profile
// of a single device has no second copy to repair from.
func corruptedVictim(t *testing.T, im *loopfs.Image) string {
	t.Helper()
	mp := im.Mountpoint
	marker := writeVictim(t, filepath.Join(mp, "victim"))
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	corruptImage(t, im.File, marker)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	dropCaches(t)
	return filepath.Join(mp, "victim")
}

// readFailsEIO reads path and fails the test unless the read fails with EIO.
func readFailsEIO(t *testing.T, path string) {
	t.Helper()
	_, err := os.ReadFile(path)
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("reading corrupted %s: %v, want EIO", path, err)
	}
}

// wantIncreases returns the increases from before to after, computed
// field by field.
func wantIncreases(uuid string, before, after btrfs.DeviceStats) []btrfs.Increase {
	var incs []btrfs.Increase
	b := []uint64{before.WriteErrs, before.ReadErrs, before.FlushErrs, before.CorruptionErrs, before.GenerationErrs}
	a := []uint64{after.WriteErrs, after.ReadErrs, after.FlushErrs, after.CorruptionErrs, after.GenerationErrs}
	for i, name := range []string{"write", "read", "flush", "corruption", "generation"} {
		if a[i] > b[i] {
			incs = append(incs, btrfs.Increase{FSUUID: uuid, DevID: after.DevID, Path: after.Path, Counter: name, From: b[i], To: a[i]})
		}
	}
	return incs
}

func TestCorruptionIsCountedAndReported(t *testing.T) {
	im := newBtrfs(t)
	victim := corruptedVictim(t, im)

	var tr btrfs.Tracker
	uuid, base := checkSources(t, im.Mountpoint)
	if want := []btrfs.DeviceStats{{DevID: 1, Path: im.Dev}}; !reflect.DeepEqual(base, want) {
		t.Fatalf("before reading: %+v, want %+v", base, want)
	}
	if incs := tr.Update(uuid, base); incs != nil {
		t.Fatalf("baseline reported %+v", incs)
	}

	// Reading the file finds the checksum mismatch.
	readFailsEIO(t, victim)
	_, afterRead := checkSources(t, im.Mountpoint)
	if len(afterRead) != 1 || afterRead[0].CorruptionErrs+afterRead[0].ReadErrs == 0 {
		t.Fatalf("after reading corrupted data: %+v, want corruption (or read) errors", afterRead)
	}
	t.Logf("reading the corrupted file: %+v", afterRead[0])
	incs := tr.Update(uuid, afterRead)
	if want := wantIncreases(uuid, base[0], afterRead[0]); !reflect.DeepEqual(incs, want) {
		t.Errorf("Tracker after reading:\n got %+v\nwant %+v", incs, want)
	}
	for _, inc := range incs {
		t.Log(inc)
	}

	// A scrub finds the bad sector again and counts it.
	out, code := btrfsTool(t, "scrub", "start", "-B", im.Mountpoint)
	if code != 3 {
		// 3: scrub found uncorrectable errors.
		t.Errorf("btrfs scrub start -B: exit status %d, want 3\n%s", code, out)
	}
	_, afterScrub := checkSources(t, im.Mountpoint)
	if afterScrub[0].CorruptionErrs <= afterRead[0].CorruptionErrs {
		t.Fatalf("scrub did not count a corruption error: %+v, then %+v", afterRead[0], afterScrub[0])
	}
	t.Logf("after scrub: %+v", afterScrub[0])
	incs = tr.Update(uuid, afterScrub)
	if want := wantIncreases(uuid, afterRead[0], afterScrub[0]); !reflect.DeepEqual(incs, want) {
		t.Errorf("Tracker after scrub:\n got %+v\nwant %+v", incs, want)
	}
	if incs := tr.Update(uuid, afterScrub); incs != nil {
		t.Errorf("same reading reported again: %+v", incs)
	}

	// The counters are kept on disk across a remount; a tracker restored
	// from the persisted values reports nothing new.
	persisted := tr.Last(uuid)
	mp := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	uuid2, remounted := checkSources(t, im.Mountpoint)
	if uuid2 != uuid {
		t.Errorf("UUID changed across a remount: %s, then %s", uuid, uuid2)
	}
	got, want := remounted[0], afterScrub[0]
	got.Path, want.Path = "", ""
	if got != want {
		t.Errorf("after remount: %+v, want %+v", remounted[0], afterScrub[0])
	}
	var restarted btrfs.Tracker
	restarted.Restore(uuid, persisted)
	if incs := restarted.Update(uuid, remounted); incs != nil {
		t.Errorf("restored tracker reported %+v", incs)
	}
	// A daemon that never saw the file system reports what is already
	// counted, once, when asked to.
	fresh := btrfs.Tracker{ReportBaseline: true}
	incs = fresh.Update(uuid, remounted)
	wantBase := wantIncreases(uuid, btrfs.DeviceStats{}, remounted[0])
	for i := range wantBase {
		wantBase[i].Baseline = true
	}
	if !reflect.DeepEqual(incs, wantBase) {
		t.Errorf("baseline report:\n got %+v\nwant %+v", incs, wantBase)
	}

	// Resetting the counters is no increase; errors after it are.
	if out, code := btrfsTool(t, "device", "stats", "-z", im.Mountpoint); code != 0 {
		t.Fatalf("btrfs device stats -z: exit status %d\n%s", code, out)
	}
	_, reset := checkSources(t, im.Mountpoint)
	if reset[0].Total() != 0 {
		t.Fatalf("after btrfs device stats -z: %+v", reset[0])
	}
	if incs := restarted.Update(uuid, reset); incs != nil {
		t.Errorf("reset reported as %+v", incs)
	}
	dropCaches(t)
	readFailsEIO(t, victim)
	_, again := checkSources(t, im.Mountpoint)
	incs = restarted.Update(uuid, again)
	if want := wantIncreases(uuid, reset[0], again[0]); len(want) == 0 || !reflect.DeepEqual(incs, want) {
		t.Errorf("after reset and a new error:\n got %+v\nwant %+v", incs, want)
	}
}

// TestStatsPrefersSysfs checks which source Stats reads, with fake sysfs
// trees beside a real btrfs mount: error_stats when present, the ioctl when
// the kernel is too old for it or has not loaded the counters.
func TestStatsPrefersSysfs(t *testing.T) {
	im := newBtrfs(t)
	uuid, _, err := btrfs.ReadIoctl(im.Mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	zero := []btrfs.DeviceStats{{DevID: 1, Path: im.Dev}}
	for _, c := range []struct {
		name  string
		files map[string]string // nil: no fs/btrfs directory
		want  []btrfs.DeviceStats
	}{
		{"5.14+", map[string]string{"1/error_stats": errorStats(1, 2, 3, 4, 5)},
			[]btrfs.DeviceStats{{DevID: 1, Path: im.Dev, WriteErrs: 1, ReadErrs: 2, FlushErrs: 3, CorruptionErrs: 4, GenerationErrs: 5}}},
		{"5.6 to 5.13", map[string]string{"1/in_fs_metadata": "1\n"}, zero},
		{"before 5.6", nil, zero},
		{"not loaded", map[string]string{"1/error_stats": "invalid\n"}, zero},
		{"device gone", map[string]string{"1/error_stats": errorStats(0, 0, 0, 0, 0), "7/error_stats": errorStats(1, 1, 1, 1, 1)}, zero},
	} {
		root := t.TempDir()
		if c.files != nil {
			root = sysTree(t, uuid, c.files)
		}
		gotUUID, got, err := btrfs.Stats(im.Mountpoint, root)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if gotUUID != uuid || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Stats = %s %+v, want %s %+v", c.name, gotUUID, got, uuid, c.want)
		}
	}
}

// TestNothingNotifies looks, on the running kernel, for a notification of
// a change of the error counters: POLLPRI on error_stats (sysfs_notify), an
// inotify event on it, a uevent, a FAN_FS_ERROR event. It raises corruption
// errors (a read and a scrub) and logs what fired. None does on Linux 6.18;
// the test fails only if its errors were not counted, so that it keeps
// reporting on newer kernels without breaking on them.
func TestNothingNotifies(t *testing.T) {
	im := newBtrfs(t)
	victim := corruptedVictim(t, im)
	uuid, before, err := btrfs.Stats(im.Mountpoint, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	statsFile := filepath.Join(btrfs.DevinfoDir("/sys", uuid), "1", "error_stats")

	// sysfs: a read arms poll(2); sysfs_notify would then raise POLLPRI.
	sysfd, err := unix.Open(statsFile, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sysfd)
	if _, err := unix.Pread(sysfd, make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	// inotify on the file and its directory (kernfs_notify also sends
	// IN_MODIFY).
	infd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(infd)
	for _, p := range []string{statsFile, filepath.Dir(statsFile)} {
		if _, err := unix.InotifyAddWatch(infd, p, unix.IN_MODIFY|unix.IN_ATTRIB|unix.IN_CREATE|unix.IN_DELETE); err != nil {
			t.Fatalf("inotify on %s: %v", p, err)
		}
	}
	// Kernel uevents.
	nlfd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nlfd)
	if err := unix.Bind(nlfd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		t.Fatal(err)
	}
	// FAN_FS_ERROR on the file system.
	fanfd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fanfd)
	fanMarked := true
	if err := unix.FanotifyMark(fanfd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_FS_ERROR, unix.AT_FDCWD, im.Mountpoint); err != nil {
		fanMarked = false
		t.Logf("FAN_FS_ERROR mark on btrfs refused: %v", err)
	}

	readFailsEIO(t, victim)
	if out, code := btrfsTool(t, "scrub", "start", "-B", im.Mountpoint); code != 3 {
		t.Errorf("btrfs scrub start -B: exit status %d, want 3\n%s", code, out)
	}
	_, after, err := btrfs.Stats(im.Mountpoint, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	if after[0].CorruptionErrs <= before[0].CorruptionErrs {
		t.Fatalf("no corruption errors counted: %+v, then %+v", before[0], after[0])
	}

	fds := []unix.PollFd{
		{Fd: int32(sysfd), Events: unix.POLLPRI | unix.POLLERR},
		{Fd: int32(infd), Events: unix.POLLIN},
		{Fd: int32(nlfd), Events: unix.POLLIN},
		{Fd: int32(fanfd), Events: unix.POLLIN},
	}
	names := []string{
		"poll(POLLPRI) on error_stats (sysfs_notify)",
		"inotify on error_stats and its directory",
		"kernel uevent about this file system or device",
		"fanotify FAN_FS_ERROR",
	}
	fired := make([]string, len(fds))
	for {
		n, err := unix.Poll(fds, 1000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for i := range fds {
			if fds[i].Revents == 0 {
				continue
			}
			switch i {
			case 0:
				fired[0] = fmt.Sprintf("revents %#x", fds[0].Revents)
				fds[0].Events = 0 // stays raised until read again
			case 1:
				buf := make([]byte, 4096)
				n, _ := unix.Read(infd, buf)
				fired[1] += fmt.Sprintf("%d bytes of events; ", n)
			case 2:
				buf := make([]byte, 8192)
				n, _, _ := unix.Recvfrom(nlfd, buf, 0)
				msg := strings.ReplaceAll(string(buf[:max(n, 0)]), "\x00", " ")
				// Loop devices of other tests come and go.
				if strings.Contains(msg, uuid) || strings.Contains(strings.ToLower(msg), "btrfs") || strings.Contains(msg, im.Name) {
					fired[2] += msg + "; "
				}
			case 3:
				buf := make([]byte, 4096)
				n, _ := unix.Read(fanfd, buf)
				fired[3] += fmt.Sprintf("%d bytes of events; ", n)
			}
			fds[i].Revents = 0
		}
	}
	if !fanMarked {
		fired[3] = "(not marked)"
	}
	t.Logf("counters went from %+v to %+v", before[0], after[0])
	for i, name := range names {
		what := "nothing within 1 s"
		if fired[i] != "" {
			what = "FIRED: " + fired[i]
		}
		t.Logf("%s: %s", name, what)
	}
}

// BenchmarkStats measures one reading of a mounted single-device file
// system, through sysfs and through ioctls only.
func BenchmarkStats(b *testing.B) {
	testutil.RequireRoot(b)
	im := testutil.NewImage(b, "btrfs", 256<<20, "")
	for _, c := range []struct{ name, sysRoot string }{{"sysfs", "/sys"}, {"ioctl", ""}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := btrfs.Stats(im.Mountpoint, c.sysRoot); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ReadSysfs", func(b *testing.B) {
		uuid, _, err := btrfs.Stats(im.Mountpoint, "")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := btrfs.ReadSysfs("/sys", uuid); err != nil {
				b.Fatal(err)
			}
		}
	})
}
