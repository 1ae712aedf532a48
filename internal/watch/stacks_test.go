package watch

// Storage stacks under a file system, built with the real tools (lvm2,
// cryptsetup, mdadm) on device-mapper devices that start failing: every
// event names every layer, from the device the file system was mounted
// as down to the loop device and its backing file. These run in the
// kernel matrix guests (this machine's kernel has no device-mapper).

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// scratchFile makes a sparse file of size bytes in a temporary directory.
func scratchFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// mkfsMount makes a file system of fstype on dev and mounts it (as dev:
// the name the admin would mount) with options; it is unmounted when the
// test ends. It returns the mount point.
func mkfsMount(t *testing.T, fstype, dev, options string) string {
	t.Helper()
	prog, pkg := loopfs.MkfsPackage(fstype)
	testutil.RequireCommand(t, prog, pkg)
	mkfs, err := loopfs.FindTool(prog)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", dev}
	if fstype == "xfs" {
		args = []string{"-q", "-f", dev}
	}
	if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", prog, dev, err, out)
	}
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mp, fstype, unix.MS_NOATIME, options); err != nil {
		t.Fatalf("mount %s (%s) on %s: %v", dev, fstype, mp, err)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 20; i++ {
			if err = unix.Unmount(mp, 0); !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("unmount %s: %v", mp, err)
		}
	})
	return mp
}

// remountDev unmounts mp and mounts dev there again: nothing of the file
// system stays cached.
func remountDev(t *testing.T, dev, mp, fstype, options string) {
	t.Helper()
	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mp, fstype, unix.MS_NOATIME, options); err != nil {
		t.Fatalf("mount %s on %s again: %v", dev, mp, err)
	}
}

// fillDirs makes directories of files, metadata beyond what mounting
// reads, and returns the last file of each directory.
func fillDirs(t *testing.T, mp string) []string {
	t.Helper()
	const dirs, files = 6, 40
	var last []string
	for d := range dirs {
		dir := filepath.Join(mp, "d"+strconv.Itoa(d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range files {
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		last = append(last, filepath.Join(dir, "f"+strconv.Itoa(files-1)))
	}
	unix.Sync()
	return last
}

// lookupFails stats each file, which must fail with EIO for at least one:
// the device under the file system is failing.
func lookupFails(t *testing.T, files []string) {
	t.Helper()
	failed := 0
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, syscall.EIO) {
			failed++
		} else if err != nil {
			t.Logf("stat: %v", err)
		}
	}
	if failed == 0 {
		t.Fatalf("no lookup failed with EIO on the failing device: everything was cached?")
	}
}

// eventWhere returns the first event want accepts; the others are logged.
func (c *collector) eventWhere(what string, want func(event.Event) bool) event.Event {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-c.events:
			c.t.Logf("event: %s", event.AppendText(nil, &e))
			if want(e) {
				return e
			}
		case <-deadline:
			c.t.Fatalf("no event for the %s within %v", what, waitTimeout)
			return event.Event{}
		}
	}
}

// flakeyUntilEnd makes every I/O of d fail (dm-flakey, always down) and
// puts its linear table back when the test ends, before the cleanups
// registered earlier (unmounting, removing the volume group).
func flakeyUntilEnd(t *testing.T, d *testutil.DMDevice) {
	t.Helper()
	d.Reload(t, testutil.FlakeyTable(d.Backing, d.Sectors))
	t.Cleanup(func() { d.Reload(t, testutil.LinearTable(d.Backing, d.Sectors)) })
}

// checkDMOverLoop checks that the stack holds the device-mapper device d
// (a plain dmsetup device: kind dm, its name) built on its loop device,
// whose backing file is file.
func checkDMOverLoop(t *testing.T, stack []storage.Layer, d *testutil.DMDevice, file string) {
	t.Helper()
	l := storage.Find(stack, d.KernelName)
	loop := filepath.Base(d.Backing)
	if l == nil || l.Kind != storage.KindDM || l.DMName != d.Name || len(l.On) != 1 || l.On[0] != loop {
		t.Errorf("layer %s: %+v, want dm device %s on %s", d.KernelName, l, d.Name, loop)
	}
	b := storage.Find(stack, loop)
	if b == nil || b.Kind != storage.KindLoop || b.BackingFile != file {
		t.Errorf("layer %s: %+v, want the loop device of %s", loop, b, file)
	}
}

// realPath resolves symbolic links in p, as the kernel names a loop
// device's backing file.
func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLVMOnFailingPVNamesEveryLayer: ext4 on an LVM logical volume, mounted
// as /dev/VG/LV, whose physical volume is a device-mapper device over a
// loop device. The physical volume starts failing every I/O (dm-flakey):
// ext4 cannot read a directory block, and the event names the logical
// volume (vg/lv, as mounted), the physical volume's device-mapper device,
// the loop device and its backing file.
func TestLVMOnFailingPVNamesEveryLayer(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireLVM(t, "flakey")
	file := realPath(t, scratchFile(t, 96<<20))
	pv := testutil.NewDMDevice(t, file, testutil.LinearTable)
	vg := testutil.NewVolumeGroup(t, 1, pv.Dev)
	lv := vg.CreateLV(t, "data", 64)
	mp := mkfsMount(t, "ext4", lv.Path, "errors=continue")
	files := fillDirs(t, mp)
	remountDev(t, lv.Path, mp, "ext4", "errors=continue")
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	flakeyUntilEnd(t, pv)
	lookupFails(t, files)
	e := c.eventWhere("failed directory read", func(e event.Event) bool { return e.Kind == event.KindError && e.Error == "EIO" })
	line := string(event.AppendText(nil, &e))
	if e.FSType != "ext4" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
		t.Errorf("event not about the ext4 at %s: %s", mp, line)
	}
	if len(e.Storage) != 3 {
		t.Fatalf("storage stack %+v, want the LV, the PV's dm device and its loop device: %s", e.Storage, line)
	}
	top := e.Storage[0]
	if top.Name != lv.KernelName || top.Kind != storage.KindLVM || top.LV != vg.Name+"/data" || top.DMName != lv.DMName ||
		top.MountedAs != lv.Path || !strings.HasPrefix(top.DMUUID, "LVM-") || len(top.On) != 1 || top.On[0] != pv.KernelName {
		t.Errorf("top layer %+v, want LV %s/data (%s) mounted as %s on %s", top, vg.Name, lv.KernelName, lv.Path, pv.KernelName)
	}
	for _, link := range []string{lv.Path, "/dev/mapper/" + lv.DMName} {
		if !strings.Contains(strings.Join(top.Links, " "), link) {
			t.Errorf("top layer's links %q lack %s", top.Links, link)
		}
	}
	checkDMOverLoop(t, e.Storage, pv, file)
	want := "LV " + vg.Name + "/data (" + lv.KernelName + ") → dm " + pv.Name + " (" + pv.KernelName + ") → " +
		filepath.Base(pv.Backing) + " file " + file
	if !strings.Contains(line, want) {
		t.Errorf("text line %s lacks %q", line, want)
	}
}

// TestLUKSOnFailingDeviceNamesEveryLayer: ext4 on a LUKS2 mapping (opened
// as /dev/mapper/NAME) on a device-mapper device over a loop device, which
// starts failing every I/O: the event names the LUKS mapping as mounted,
// the device under it, the loop device and its backing file.
func TestLUKSOnFailingDeviceNamesEveryLayer(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireDeviceMapper(t, "flakey", "crypt")
	testutil.RequireCryptsetup(t)
	file := realPath(t, scratchFile(t, 64<<20))
	under := testutil.NewDMDevice(t, file, testutil.LinearTable)
	luks := testutil.NewLUKS(t, under.Dev, 1)
	mp := mkfsMount(t, "ext4", luks.Path, "errors=continue")
	files := fillDirs(t, mp)
	remountDev(t, luks.Path, mp, "ext4", "errors=continue")
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	flakeyUntilEnd(t, under)
	lookupFails(t, files)
	e := c.eventWhere("failed directory read", func(e event.Event) bool { return e.Kind == event.KindError && e.Error == "EIO" })
	line := string(event.AppendText(nil, &e))
	if e.FSType != "ext4" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
		t.Errorf("event not about the ext4 at %s: %s", mp, line)
	}
	if len(e.Storage) != 3 {
		t.Fatalf("storage stack %+v, want the LUKS mapping, the dm device under it and its loop device: %s", e.Storage, line)
	}
	top := e.Storage[0]
	if top.Name != luks.KernelName || top.Kind != storage.KindCrypt || top.DMName != luks.Name || top.MountedAs != luks.Path ||
		!strings.HasPrefix(top.DMUUID, "CRYPT-LUKS2-") || len(top.On) != 1 || top.On[0] != under.KernelName {
		t.Errorf("top layer %+v, want LUKS mapping %s (%s) mounted as %s on %s", top, luks.Name, luks.KernelName, luks.Path, under.KernelName)
	}
	checkDMOverLoop(t, e.Storage, under, file)
	want := "dm-crypt " + luks.Name + " (" + luks.KernelName + ") → dm " + under.Name + " (" + under.KernelName + ") → " +
		filepath.Base(under.Backing) + " file " + file
	if !strings.Contains(line, want) {
		t.Errorf("text line %s lacks %q", line, want)
	}
}

// TestXFSOnMDLegFailing: XFS on an md RAID1 of a loop device and a
// device-mapper device over another loop device. The device-mapper leg
// starts failing every I/O; the next write makes md fail it out of the
// array (its superblock update fails). XFS sees no error (the other leg
// holds the data); the watcher reports the lost redundancy (md0 degraded,
// the leg faulty) and the kernel log's "Disk failure on dm-N" as an
// error of the file system, both with the stack: the array, its members
// and their states, the failing leg's device-mapper device and loop
// device.
func TestXFSOnMDLegFailing(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireDeviceMapper(t, "flakey")
	testutil.RequireCommand(t, "mdadm", "mdadm")
	fileA := realPath(t, scratchFile(t, xfsSize+(8<<20)))
	fileB := realPath(t, scratchFile(t, xfsSize+(8<<20)))
	loopA, hold, err := loopfs.Attach(fileA)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	leg := testutil.NewDMDevice(t, fileB, testutil.LinearTable)
	const md, mdName = "/dev/md0", "md0"
	if err := mdadm("--create", md, "--run", "--level=1", "--raid-devices=2", "--metadata=1.2", "--assume-clean", loopA, leg.Dev); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mdadm("--stop", md); err != nil {
			t.Error(err)
		}
		if err := mdadm("--zero-superblock", loopA, leg.Dev); err != nil {
			t.Error(err)
		}
	})
	hold.Close() // md holds the loop device now
	mp := mkfsMount(t, "xfs", md, "")
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold, Redundancy: true, RedundancyInterval: time.Hour}, false)
	flakeyUntilEnd(t, leg)
	f, err := os.Create(filepath.Join(mp, "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("fsync on a RAID1 with one failing leg: %v, want success (the other leg holds the data)", err)
	}
	var redundancy, failure *event.Event
	for redundancy == nil || failure == nil {
		e := c.eventWhere("failed md leg", func(event.Event) bool { return true })
		switch {
		case e.Kind == event.KindRedundancy && redundancy == nil:
			redundancy = &e
		case e.Kind == event.KindError && strings.Contains(e.KernelMessage, "Disk failure on "+leg.KernelName) && failure == nil:
			failure = &e
		default:
			t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
		}
	}
	r := redundancy.Redundancy
	if redundancy.Source != event.SourceMD || r == nil || r.Change != storage.ChangeMemberFaulty || r.Array != mdName ||
		r.Member != leg.KernelName || r.Degraded != 1 || r.RaidDisks != 2 || r.Level != "raid1" {
		t.Errorf("redundancy event %s (%+v), want %s member %s faulty, 1 of 2 missing", event.AppendText(nil, redundancy), r, mdName, leg.KernelName)
	}
	if failure.Source != event.SourceKmsg || failure.Error != "EIO" {
		t.Errorf("md's leg failure: %s, want a kernel-log EIO event", event.AppendText(nil, failure))
	}
	for _, e := range []*event.Event{redundancy, failure} {
		line := string(event.AppendText(nil, e))
		if e.Device != md || e.FSType != "xfs" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
			t.Errorf("event not about the XFS on %s at %s: %s", md, mp, line)
		}
		if len(e.Storage) != 4 || e.Storage[0].Name != mdName || e.Storage[0].MD == nil {
			t.Errorf("storage stack %+v, want %s, its two legs and the loop device under the dm leg: %s", e.Storage, mdName, line)
			continue
		}
		a := e.Storage[0].MD
		if a.Level != "raid1" || a.Degraded != 1 || len(a.Members) != 2 {
			t.Errorf("array %+v, want raid1 degraded by one of two", a)
		}
		for _, m := range a.Members {
			if faulty := strings.Contains(m.State, "faulty"); faulty != (m.Name == leg.KernelName) {
				t.Errorf("member %s state %q, want %s faulty and no other", m.Name, m.State, leg.KernelName)
			}
		}
		if l := storage.Find(e.Storage, filepath.Base(loopA)); l == nil || l.Kind != storage.KindLoop || l.BackingFile != fileA {
			t.Errorf("leg %s: %+v, want the loop device of %s", loopA, l, fileA)
		}
		checkDMOverLoop(t, e.Storage, leg, fileB)
		// md's state of the leg follows its name ("faulty" and, on some
		// kernels, more flags: "faulty,write_error"), then what it is on.
		for _, want := range []string{leg.Name + " (" + leg.KernelName + ") faulty", " → " + filepath.Base(leg.Backing) + " file " + fileB} {
			if !strings.Contains(line, want) {
				t.Errorf("text line %s lacks %q", line, want)
			}
		}
	}
}
