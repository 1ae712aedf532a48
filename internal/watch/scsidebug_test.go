package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// scsiDebugDriver is where the scsi_debug module publishes its options.
const scsiDebugDriver = "/sys/bus/pseudo/drivers/scsi_debug"

// scsiDebugDisk returns the kernel name of the disk of the scsi_debug
// module (a RAM-backed SCSI disk that fails reads on demand), skipping the
// test when the kernel has none: this machine's kernel lacks it; the
// kernel matrix guests load it.
func scsiDebugDisk(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	_, err := os.Stat(scsiDebugDriver)
	testutil.RequireModule(t, "scsi_debug", err == nil)
	testutil.RequireDeviceMapper(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		models, _ := filepath.Glob("/sys/class/block/*/device/model")
		for _, m := range models {
			b, err := os.ReadFile(m)
			if err == nil && strings.TrimSpace(string(b)) == "scsi_debug" {
				return filepath.Base(filepath.Dir(filepath.Dir(m)))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scsi_debug is loaded but no disk of it appeared in /sys/class/block")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// partitionDisk writes an MS-DOS partition table with one Linux partition
// from sector 2048 to the end of disk, has the kernel re-read it, and
// returns the partition's kernel name; the table is wiped when the test
// ends.
func partitionDisk(t *testing.T, disk string) string {
	t.Helper()
	return partitionDiskN(t, disk, 1)[0]
}

// partitionDiskN is partitionDisk with n partitions of equal size, the
// first from sector 2048, and returns their kernel names.
func partitionDiskN(t *testing.T, disk string, n int) []string {
	t.Helper()
	size, err := readSysUint("/sys/class/block/" + disk + "/size")
	if err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	each := (size - 2048) / uint64(n) / 2048 * 2048
	for i := range n {
		e := mbr[446+16*i : 462+16*i]
		e[4] = 0x83 // Linux
		binary.LittleEndian.PutUint32(e[8:], uint32(2048+uint64(i)*each))
		binary.LittleEndian.PutUint32(e[12:], uint32(each))
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	writeTable := func(b []byte) error {
		f, err := os.OpenFile("/dev/"+disk, os.O_RDWR|os.O_SYNC, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteAt(b, 0); err != nil {
			return err
		}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKRRPART, 0); errno != 0 {
			return fmt.Errorf("BLKRRPART on /dev/%s: %w", disk, errno)
		}
		return nil
	}
	if err := writeTable(mbr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := writeTable(make([]byte, 512)); err != nil {
			t.Errorf("wiping the partition table of %s: %v", disk, err)
		}
	})
	var parts []string
	for i := range n {
		part := disk + strconv.Itoa(i+1)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat("/dev/" + part); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/dev/%s did not appear after the partition table was re-read", part)
			}
			time.Sleep(50 * time.Millisecond)
		}
		parts = append(parts, part)
	}
	return parts
}

func readSysUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// dmsetup runs dmsetup without waiting for udev (the guests have none;
// libdevmapper then makes the /dev/mapper node itself).
func dmsetup(args ...string) error {
	out, err := exec.Command("dmsetup", append([]string{"--noudevsync", "--noudevrules"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dmsetup %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// linearDevice makes a dm-linear device called name over the whole of
// /dev/<under>, removed when the test ends.
func linearDevice(t *testing.T, name, under string) string {
	t.Helper()
	testutil.RequireCommand(t, "dmsetup", "dmsetup")
	sectors, err := readSysUint("/sys/class/block/" + under + "/size")
	if err != nil {
		t.Fatal(err)
	}
	if err := dmsetup("create", name, "--table", fmt.Sprintf("0 %d linear /dev/%s 0", sectors, under)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dmsetup("remove", name); err != nil {
			t.Errorf("removing the device mapper device: %v", err)
		}
	})
	node := "/dev/mapper/" + name
	if _, err := os.Stat(node); err != nil {
		// Without udev, libdevmapper may leave the node to it: make it
		// as udev would, from the device number sysfs gives.
		if err := dmsetup("mknodes", name); err != nil {
			t.Log(err)
		}
	}
	if _, err := os.Stat(node); err != nil {
		names, _ := filepath.Glob("/sys/class/block/dm-*/dm/name")
		for _, n := range names {
			b, _ := os.ReadFile(n)
			if strings.TrimSpace(string(b)) != name {
				continue
			}
			d, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(n)), "dev"))
			if err != nil {
				t.Fatal(err)
			}
			var major, minor uint32
			if _, err := fmt.Sscanf(strings.TrimSpace(string(d)), "%d:%d", &major, &minor); err != nil {
				t.Fatalf("device number %q of %s: %v", d, name, err)
			}
			if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
				t.Fatalf("mknod %s: %v", node, err)
			}
			t.Cleanup(func() { os.Remove(node) })
		}
	}
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("no device node for the device mapper device %s: %v", name, err)
	}
	return node
}

// setSysfs writes value to a sysfs attribute and puts the old value back
// when the test ends.
func setSysfs(t *testing.T, path, value string) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("writing %s to %s: %v", value, path, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(strings.TrimSpace(string(old))), 0); err != nil {
			t.Errorf("restoring %s: %v", path, err)
		}
	})
}

// fibmap returns the file system block holding the first block of file.
func fibmap(t *testing.T, file string) uint64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blk int32 // in: logical block 0; out: its physical block
	const ioctlFIBMAP = 1
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlFIBMAP, uintptr(unsafe.Pointer(&blk))); errno != 0 || blk == 0 {
		t.Fatalf("FIBMAP of %s: %v (block %d)", file, errno, blk)
	}
	return uint64(blk)
}

// dmName is the name of the tests' device mapper device.
const dmName = "fshealth-test"

// ext4OnDMOnSCSIDebug partitions the scsi_debug disk, makes a dm-linear
// device called dmName over its partition and ext4 on that, and mounts it
// by its /dev/mapper name with errors=continue; all is undone when the test
// ends. It returns the disk's and the partition's kernel names, the
// /dev/mapper node and the mount point.
func ext4OnDMOnSCSIDebug(t *testing.T) (disk, part, dev, mp string) {
	t.Helper()
	disk = scsiDebugDisk(t)
	testutil.RequireCommand(t, "mkfs.ext4", "e2fsprogs")
	// A second partition, not used: an error that names the disk and no
	// sector (SCSI sense data) could be its, so it is not the file
	// system's; the block layer's line with the sector is.
	part = partitionDiskN(t, disk, 2)[0]
	dev = linearDevice(t, dmName, part)
	mkfs, err := loopfs.FindTool("mkfs.ext4")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	mp = filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mp, "ext4", 0, "errors=continue"); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mp, 0); err != nil {
			t.Errorf("unmount %s: %v", mp, err)
		}
	})
	return disk, part, dev, mp
}

// failSectors makes the scsi_debug disk fail reads of count sectors from
// sector (of the whole disk) with a medium error, until the test ends.
func failSectors(t *testing.T, sector, count uint64) {
	t.Helper()
	setSysfs(t, "/sys/module/scsi_debug/parameters/medium_error_start", strconv.FormatUint(sector, 10))
	setSysfs(t, "/sys/module/scsi_debug/parameters/medium_error_count", strconv.FormatUint(count, 10))
	setSysfs(t, scsiDebugDriver+"/opts", "2") // SDEBUG_OPT_MEDIUM_ERR
}

// checkSCSIDebugStack checks that e's storage stack is the dm device
// mounted as dev, on partition part of the scsi_debug disk, and that its
// text line says so.
func checkSCSIDebugStack(t *testing.T, e event.Event, disk, part, dev string) {
	t.Helper()
	line := string(event.AppendText(nil, &e))
	if len(e.Storage) != 3 {
		t.Fatalf("storage stack %+v, want the dm device, the partition and the disk: %s", e.Storage, line)
	}
	top, p, d := e.Storage[0], e.Storage[1], e.Storage[2]
	if top.Kind != storage.KindDM || top.DMName != dmName || top.MountedAs != dev || top.Name != strings.TrimPrefix(e.Device, "/dev/") {
		t.Errorf("top layer %+v, want dm device %s mounted as %s", top, dmName, dev)
	}
	if p.Name != part || p.Kind != storage.KindPartition || p.Start != 2048 || p.Partition != 1 {
		t.Errorf("second layer %+v, want partition %s from sector 2048", p, part)
	}
	if d.Name != disk || d.Kind != storage.KindDisk || d.Disk == nil || d.Disk.Model != "scsi_debug" || d.Disk.Transport != "scsi" {
		t.Errorf("bottom layer %+v, want the scsi_debug disk %s", d, disk)
	}
	if want := "on " + dev + " (dm " + dmName + " (" + top.Name + ") → " + part + " → " + disk + ` "Linux scsi_debug"`; !strings.Contains(line, want) {
		t.Errorf("text line %s lacks %q", line, want)
	}
}

// TestMediumErrorUnderDMNamesTheDisk: ext4 on a dm-linear device on the
// partition of a scsi_debug disk; the disk fails the read of a file's data
// with a medium error. Only the kernel log reports it before Linux 7.0
// (the SCSI sense, which names the disk, and the block layer's "critical
// medium error, dev sdX, sector N" of the whole disk, which is mapped to
// the partition), and it becomes an event of the file system whose
// storage stack names the dm device as it was mounted, the partition and
// the scsi_debug disk. The disk has a second partition, so the sense line
// alone is not the file system's.
func TestMediumErrorUnderDMNamesTheDisk(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, part, dev, mp := ext4OnDMOnSCSIDebug(t)
	e, _ := mediumErrorInFile(t, disk, mp)
	checkSCSIDebugStack(t, e, disk, part, dev)
}

// mediumErrorInFile writes a file on the ext4 at mp, on the scsi_debug
// disk, makes the disk fail reads of the file's first block with a medium
// error, reads it with O_DIRECT and returns the event, which must carry
// the block layer's line for that sector, and the sector (of the whole
// disk).
func mediumErrorInFile(t *testing.T, disk, mp string) (event.Event, uint64) {
	t.Helper()
	file := filepath.Join(mp, "data")
	if err := os.WriteFile(file, []byte(strings.Repeat("data ", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		t.Fatal(err)
	}
	// The file's first block, as a sector of the whole disk: the
	// partition (and dm-linear over it, where there is one) starts at
	// the disk's sector 2048.
	sector := 2048 + fibmap(t, file)*uint64(st.Bsize)/512
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)

	// The block layer rate-limits its error lines machine-wide (10 every 5
	// seconds): the tests before this one in a guest (the device failure
	// tests) can use the allowance up, and the line this test checks is
	// then suppressed. A new interval has begun 5 seconds after the last
	// of them.
	time.Sleep(5 * time.Second)
	failSectors(t, sector, uint64(st.Bsize)/512)
	// The block layer's status for a medium error is BLK_STS_MEDIUM,
	// which the read returns as ENODATA.
	if err := testutil.DirectRead(file); !errors.Is(err, syscall.ENODATA) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("O_DIRECT read of %s over a medium error: %v, want ENODATA or EIO", file, err)
	}
	e := c.next()
	line := string(event.AppendText(nil, &e))
	t.Logf("%s", line)
	if e.Error != "EIO" && e.Error != "ENODATA" || !strings.HasPrefix(e.KernelMessage, "critical medium error, dev "+disk+", sector "+strconv.FormatUint(sector, 10)+" ") {
		t.Errorf("event of the medium error at sector %d: %s", sector, line)
	}
	if e.Source == event.SourceKmsg && (e.ErrorCount != 1 || e.Error != "ENODATA") {
		t.Errorf("kernel-log event of one medium error counts %d message(s), errno %s, want the block layer's line alone: %s", e.ErrorCount, e.Error, line)
	}
	return e, sector
}

// TestDirectoryReadErrorUnderDMNamesTheDisk: as above, but the block that
// fails is the first of an indexed directory: ext4 warns that it could not
// read it ("error -5 reading directory block", with the directory's
// inode), besides the SCSI and block layer lines, and the event of the
// file system names the directory and the disk.
func TestDirectoryReadErrorUnderDMNamesTheDisk(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, part, dev, mp := ext4OnDMOnSCSIDebug(t)
	e, _, _ := mediumErrorInDirectory(t, dev, mp)
	checkSCSIDebugStack(t, e, disk, part, dev)
}

// mediumErrorInDirectory fills a directory of the ext4 on dev (mounted at
// mp with errors=continue, on the scsi_debug disk from its sector 2048)
// until it is indexed, remounts, makes the disk fail the directory's first
// block with a medium error, reads the directory and returns the event,
// which must name the directory's inode (from ext4's warning), the events
// that follow it within the hold time, and the failing sector (of the
// whole disk).
func mediumErrorInDirectory(t *testing.T, dev, mp string) (event.Event, []event.Event, uint64) {
	t.Helper()
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	dir := filepath.Join(mp, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Enough entries for more than one block: ext4 then indexes the
	// directory (htree), and reads it through ext4_read_dirblock.
	for i := range 300 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("a-file-with-a-rather-long-name-%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mp, &sfs); err != nil {
		t.Fatal(err)
	}
	// Out of the page cache: unmount and mount again.
	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	debugfs, err := loopfs.FindTool("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debugfs, "-R", "bmap <"+strconv.FormatUint(st.Ino, 10)+"> 0", dev).Output()
	blk, perr := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || perr != nil || blk == 0 {
		t.Fatalf("debugfs bmap of the directory's block 0: %v %v: %q", err, perr, out)
	}
	if err := unix.Mount(dev, mp, "ext4", 0, "errors=continue"); err != nil {
		t.Fatalf("mount %s again: %v", dev, err)
	}
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	sector := 2048 + blk*uint64(sfs.Bsize)/512
	failSectors(t, sector, uint64(sfs.Bsize)/512)
	if _, err := os.ReadDir(dir); err == nil {
		t.Fatalf("reading %s over a medium error succeeded", dir)
	}
	e := c.next()
	line := string(event.AppendText(nil, &e))
	t.Logf("%s", line)
	if e.Inode == nil || *e.Inode != st.Ino {
		t.Errorf("event names inode %v, want the directory's %d (from ext4's warning): %s", e.Inode, st.Ino, line)
	}
	var later []event.Event
	for {
		select {
		case l := <-c.events:
			t.Logf("later event: %s", event.AppendText(nil, &l))
			later = append(later, l)
			continue
		case <-time.After(testHold + time.Second):
		}
		return e, later, sector
	}
}

// ext4OnSCSIDebugPartition makes ext4 directly on the first of two
// partitions of the scsi_debug disk and mounts it with errors=continue;
// all is undone when the test ends. It returns the disk's and the
// partition's kernel names, the partition's node and the mount point.
func ext4OnSCSIDebugPartition(t *testing.T) (disk, part, dev, mp string) {
	t.Helper()
	disk = scsiDebugDisk(t)
	part = partitionDiskN(t, disk, 2)[0]
	dev = "/dev/" + part
	return disk, part, dev, mkfsMount(t, "ext4", dev, "errors=continue")
}

// checkPartitionStack checks that e is about the ext4 on partition part of
// the scsi_debug disk, and that its stack and text line name the
// partition (number, first sector) and the disk (vendor, model).
func checkPartitionStack(t *testing.T, e event.Event, disk, part, dev string) {
	t.Helper()
	line := string(event.AppendText(nil, &e))
	if e.Device != dev || e.FSType != "ext4" {
		t.Errorf("event not about the ext4 on %s: %s", dev, line)
	}
	if len(e.Storage) != 2 {
		t.Fatalf("storage stack %+v, want the partition and the disk: %s", e.Storage, line)
	}
	p, d := e.Storage[0], e.Storage[1]
	if p.Name != part || p.Kind != storage.KindPartition || p.Partition != 1 || p.Start != 2048 || len(p.On) != 1 || p.On[0] != disk {
		t.Errorf("top layer %+v, want partition 1 (%s) of %s from sector 2048", p, part, disk)
	}
	if d.Name != disk || d.Kind != storage.KindDisk || d.Disk == nil || d.Disk.Vendor != "Linux" || d.Disk.Model != "scsi_debug" || d.Disk.Transport != "scsi" {
		t.Errorf("bottom layer %+v, want the scsi_debug disk %s (vendor Linux)", d, disk)
	}
	if want := part + " → " + disk + ` "Linux scsi_debug"`; !strings.Contains(line, want) {
		t.Errorf("text line %s lacks %q", line, want)
	}
}

// TestMediumErrorInDataOnPartition: ext4 directly on a partition of a
// scsi_debug disk (no device-mapper between); the disk fails the read of a
// file's data block with a medium error. The block layer's line names the
// disk and the sector of the whole disk: the event is the file system's,
// names that sector, the partition holding it and the disk.
func TestMediumErrorInDataOnPartition(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, part, dev, mp := ext4OnSCSIDebugPartition(t)
	e, _ := mediumErrorInFile(t, disk, mp)
	checkPartitionStack(t, e, disk, part, dev)
}

// TestMediumErrorInMetadataOnPartition: as above, but the block that
// fails is a directory's (metadata): ext4's warning names the directory.
func TestMediumErrorInMetadataOnPartition(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, part, dev, mp := ext4OnSCSIDebugPartition(t)
	e, later, sector := mediumErrorInDirectory(t, dev, mp)
	checkPartitionStack(t, e, disk, part, dev)
	// The block layer's line, with the sector, is the event's kernel
	// message or that of a later event of the file system.
	want := "critical medium error, dev " + disk + ", sector " + strconv.FormatUint(sector, 10) + " "
	found := false
	for _, l := range append([]event.Event{e}, later...) {
		if strings.HasPrefix(l.KernelMessage, want) {
			found = true
			checkPartitionStack(t, l, disk, part, dev)
		}
	}
	if !found {
		t.Errorf("no event carries the block layer's %q", want)
	}
}

// mdadm runs mdadm without udev (the guests have none: MDADM_NO_UDEV makes
// it create the array's node itself).
func mdadm(args ...string) error {
	cmd := exec.Command("mdadm", args...)
	cmd.Env = append(os.Environ(), "MDADM_NO_UDEV=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mdadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestMDLegFailureNamesTheLeg: ext4 on an md RAID1 of two partitions of
// the scsi_debug disk; md fails one leg out of the array (mdadm --fail,
// as it does on its own after errors). The file system sees no error; the
// kernel log's "md/raid1:md0: Disk failure on sdX2" is an event of it,
// whose storage stack shows the array degraded and the leg faulty.
func TestMDLegFailureNamesTheLeg(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, parts, mp := ext4OnMDRaid1(t)
	const md = "/dev/md0"
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	if err := mdadm(md, "--fail", "/dev/"+parts[1]); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	line := string(event.AppendText(nil, &e))
	t.Logf("%s", line)
	if e.Source != event.SourceKmsg || e.Error != "EIO" || !strings.Contains(e.KernelMessage, "Disk failure on "+parts[1]) ||
		!strings.Contains(e.Message, "device error") {
		t.Errorf("event of the failed leg: %s", line)
	}
	if len(e.Storage) != 4 || e.Storage[0].Kind != storage.KindMD || e.Storage[0].MD == nil {
		t.Fatalf("storage stack %+v, want md0, its two partitions and the disk", e.Storage)
	}
	a := e.Storage[0].MD
	if a.Level != "raid1" || a.Degraded != 1 || len(a.Members) != 2 {
		t.Errorf("array %+v, want raid1 degraded by one of two", a)
	}
	for _, m := range a.Members {
		if faulty := strings.Contains(m.State, "faulty"); faulty != (m.Name == parts[1]) {
			t.Errorf("member %s state %q, want %s faulty and no other", m.Name, m.State, parts[1])
		}
	}
	if d := storage.Find(e.Storage, disk); d == nil || d.Disk == nil || d.Disk.Model != "scsi_debug" {
		t.Errorf("no scsi_debug disk %s in the stack: %s", disk, line)
	}
	if want := parts[1] + " faulty"; !strings.Contains(line, want) {
		t.Errorf("text line lacks %q", want)
	}
}

// TestFailedDMKeepsItsStack: the dm device under a watched ext4 fails (its
// table is replaced by `error`, as when a device is lost): sysfs no longer
// shows what it was built on, and a re-reading of the stack (here at the
// rescan a bind mount causes) finds nothing below it. The events that
// follow still name the partition and the disk recorded before.
func TestFailedDMKeepsItsStack(t *testing.T) {
	testutil.CheckNoLeaks(t)
	disk, part, dev, mp := ext4OnDMOnSCSIDebug(t)
	changes := make(chan Change, 16)
	c := startConfig(t, Config{Paths: []string{mp}, OnChange: func(ch Change) { changes <- ch }}, false)
	name := dmKernelName(t, dmName)
	sectors, err := readSysUint("/sys/class/block/" + name + "/size")
	if err != nil {
		t.Fatal(err)
	}
	if err := dmsetup("reload", dmName, "--table", fmt.Sprintf("0 %d error", sectors)); err != nil {
		t.Fatal(err)
	}
	if err := dmsetup("resume", dmName); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir("/sys/class/block/" + name + "/slaves"); err != nil || len(ents) != 0 {
		t.Fatalf("slaves of %s after the table became `error`: %v %v, want none (else this test tests nothing)", name, ents, err)
	}
	bind := filepath.Join(t.TempDir(), "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(mp, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(bind, 0); err != nil {
			t.Errorf("unmount %s: %v", bind, err)
		}
	})
	select {
	case <-changes:
	case <-time.After(waitTimeout):
		t.Fatalf("no rescan within %v of the bind mount", waitTimeout)
	}
	if err := os.WriteFile("/sys/fs/ext4/"+name+"/trigger_fs_error", []byte("fshealth test"), 0); err != nil {
		t.Fatal(err)
	}
	// Other errors of the file system may come first: ext4 fails to
	// write to the device now failing (its journal, its superblock),
	// which on 7.x FAN_FS_ERROR reports as EIO. Each must name the
	// stack recorded before too.
	for {
		e := c.next()
		t.Logf("%s", event.AppendText(nil, &e))
		checkSCSIDebugStack(t, e, disk, part, dev)
		if len(e.Mountpoints) != 2 {
			t.Errorf("event %s, want it at %s and %s", event.AppendText(nil, &e), mp, bind)
		}
		if e.Error == "EUCLEAN" {
			return
		}
		if e.Error != "EIO" {
			t.Fatalf("event %s, want EUCLEAN (or EIO from the failing device before it)", event.AppendText(nil, &e))
		}
	}
}

// dmKernelName returns the kernel name ("dm-0") of the device mapper
// device called name.
func dmKernelName(t *testing.T, name string) string {
	t.Helper()
	paths, _ := filepath.Glob("/sys/class/block/dm-*/dm/name")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Base(filepath.Dir(filepath.Dir(p)))
		}
	}
	t.Fatalf("no device mapper device called %s in /sys/class/block", name)
	return ""
}
