package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
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
