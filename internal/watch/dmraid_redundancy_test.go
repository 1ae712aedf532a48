package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestRedundancyLVMRaid1LegLostAndRestored: ext4 on an LVM raid1 logical
// volume (device-mapper's raid target) over two physical volumes, each a
// device-mapper device over a loop device. One physical volume starts
// failing every I/O; the next write makes dm-raid fail that leg. The file
// system sees no error; the watcher, woken by device-mapper's event
// (/dev/mapper/control), reports one member-faulty event of source dm-raid
// naming the logical volume and the leg. The physical volume works again
// and `lvchange --refresh` makes dm-raid recover the leg: one restored
// event. Neither the kernel log nor the periodic check (an hour) wakes the
// watcher here.
func TestRedundancyLVMRaid1LegLostAndRestored(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireLVM(t, "flakey", "raid")
	pvA := testutil.NewDMDevice(t, realPath(t, scratchFile(t, 64<<20)), testutil.LinearTable)
	pvB := testutil.NewDMDevice(t, realPath(t, scratchFile(t, 64<<20)), testutil.LinearTable)
	vg := testutil.NewVolumeGroup(t, 2, pvA.Dev, pvB.Dev)
	lv := vg.CreateLV(t, "mirror", 32, "--type", "raid1", "-m", "1", "--nosync")
	mp := mkfsMount(t, "ext4", lv.Path, "errors=continue")

	// The leg on pvB: the data sub-volume built on it.
	leg := ""
	for _, i := range []string{"0", "1"} {
		name := testutil.DMKernelName(t, lv.DMName+"_rimage_"+i)
		if _, err := os.Stat(filepath.Join("/sys/class/block", name, "slaves", pvB.KernelName)); err == nil {
			leg = name
		}
	}
	if leg == "" {
		t.Fatalf("no data sub-volume of %s is on %s", lv.Path, pvB.Dev)
	}

	c := startConfig(t, Config{Paths: []string{mp}, Redundancy: true, RedundancyInterval: time.Hour}, false)
	c.noRedundancy()
	check := func(e event.Event, change, member string, degraded int) {
		t.Helper()
		r := e.Redundancy
		if e.Source != event.SourceDMRaid || r == nil || r.Change != change || r.Driver != storage.DriverDMRaid ||
			r.Array != lv.KernelName || r.Alias != vg.Name+"/mirror" || r.Level != "raid1" ||
			r.Member != member || r.Degraded != degraded || r.RaidDisks != 2 {
			t.Errorf("event %s, redundancy %+v: want %s of %s (%s/mirror) member %q, degraded %d of 2", event.AppendText(nil, &e), r, change, lv.KernelName, vg.Name, member, degraded)
		}
		if e.FSType != "ext4" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
			t.Errorf("file system of the event: %s %s %v", e.Device, e.FSType, e.Mountpoints)
		}
		if len(e.Storage) == 0 || e.Storage[0].Name != lv.KernelName || e.Storage[0].LV != vg.Name+"/mirror" ||
			storage.Find(e.Storage, leg) == nil || storage.Find(e.Storage, pvB.KernelName) == nil {
			t.Errorf("storage stack %+v, want the LV, its legs and the physical volumes", e.Storage)
		}
	}

	flakeyUntilEnd(t, pvB)
	f, err := os.Create(filepath.Join(mp, "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("fsync on a raid1 LV with one failing leg: %v, want success", err)
	}
	e := c.nextRedundancy()
	check(e, storage.ChangeMemberFaulty, leg, 1)
	if line := string(event.AppendText(nil, &e)); !strings.Contains(line, "REDUNDANCY member-faulty") ||
		!strings.Contains(e.Message, "dm-raid array "+vg.Name+"/mirror ("+lv.KernelName+", raid1): member "+leg+" faulty, 1 of 2 members missing") {
		t.Errorf("text line %q, message %q", line, e.Message)
	}
	c.noRedundancy()

	pvB.Reload(t, testutil.LinearTable(pvB.Backing, pvB.Sectors))
	if _, err := testutil.LVM("lvchange", "-y", "--refresh", vg.Name+"/mirror"); err != nil {
		t.Fatal(err)
	}
	check(c.nextRedundancy(), storage.ChangeRestored, "", 0)
	c.noRedundancy()
}

// TestRedundancyMultipathPathLostAndRestored: ext4 on a device-mapper
// multipath device (uuid "mpath-...", as multipathd names them) with two
// paths, two loop devices of one image file. A path failed (`dmsetup
// message ... fail_path`, as multipathd does when a path's checker or I/O
// fails) is one member-faulty event of source dm-multipath naming the
// path; reinstating it is one restored event. The file system sees no
// error; device-mapper's event wakes the watcher.
func TestRedundancyMultipathPathLostAndRestored(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireDeviceMapper(t, "multipath")
	file := realPath(t, scratchFile(t, 64<<20))
	var paths []string
	for range 2 {
		dev, hold, err := loopfs.Attach(file)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close() // the multipath table holds the loop devices after
		paths = append(paths, dev)
	}
	sectors, err := readSysUint("/sys/class/block/" + filepath.Base(paths[0]) + "/size")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("fshtmp%d", os.Getpid())
	table := fmt.Sprintf("0 %d multipath 0 0 1 1 round-robin 0 2 0 %s %s", sectors, paths[0], paths[1])
	if err := dmsetup("create", name, "-u", "mpath-"+name, "--table", table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = dmsetup("remove", name); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("removing the multipath device: %v", err)
	})
	kname := dmKernelName(t, name)
	mp := mkfsMount(t, "ext4", "/dev/"+kname, "errors=continue")

	c := startConfig(t, Config{Paths: []string{mp}, Redundancy: true, RedundancyInterval: time.Hour}, false)
	c.noRedundancy()
	check := func(e event.Event, change, member string, failed int) {
		t.Helper()
		r := e.Redundancy
		if e.Source != event.SourceDMMultipath || r == nil || r.Change != change || r.Driver != storage.DriverDMMultipath ||
			r.Array != kname || r.Alias != name || r.Member != member || r.Degraded != failed || r.RaidDisks != 2 {
			t.Errorf("event %s, redundancy %+v: want %s of %s (%s) path %q, %d of 2 failed", event.AppendText(nil, &e), r, change, kname, name, member, failed)
		}
		if e.FSType != "ext4" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
			t.Errorf("file system of the event: %s %s %v", e.Device, e.FSType, e.Mountpoints)
		}
		if len(e.Storage) != 3 || e.Storage[0].Kind != storage.KindMultipath || e.Storage[0].DMName != name ||
			storage.Find(e.Storage, filepath.Base(paths[0])) == nil || storage.Find(e.Storage, filepath.Base(paths[1])) == nil {
			t.Errorf("storage stack %+v, want the multipath device and its two paths", e.Storage)
		}
	}
	if err := dmsetup("message", name, "0", "fail_path", paths[1]); err != nil {
		t.Fatal(err)
	}
	e := c.nextRedundancy()
	check(e, storage.ChangeMemberFaulty, filepath.Base(paths[1]), 1)
	if want := "multipath device " + name + " (" + kname + "): path " + filepath.Base(paths[1]) + " failed, 1 of 2 paths failed"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	c.noRedundancy()
	if err := dmsetup("message", name, "0", "reinstate_path", paths[1]); err != nil {
		t.Fatal(err)
	}
	check(c.nextRedundancy(), storage.ChangeRestored, "", 0)
	c.noRedundancy()
}
