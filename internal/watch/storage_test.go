package watch

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// ext4OnLoopOnExt4 makes an ext4 image inside another loop-mounted ext4,
// mounts it errors=continue and returns both.
func ext4OnLoopOnExt4(t *testing.T) (outer, inner *loopfs.Image) {
	t.Helper()
	outer = testutil.NewExt4(t, 64<<20)
	inner, err := loopfs.Create(outer.Mountpoint, "ext4", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inner.Remove(); err != nil {
			t.Errorf("removing the inner image: %v", err)
		}
	})
	if err := inner.Mount(filepath.Join(t.TempDir(), "inner"), "errors=continue"); err != nil {
		t.Fatal(err)
	}
	return outer, inner
}

// TestEventNamesLoopOnLoop: ext4 on a loop device whose backing file is on
// another loop-mounted ext4. The event's storage stack names both loop
// devices, both backing files and the file system the inner image is on.
func TestEventNamesLoopOnLoop(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer, inner := ext4OnLoopOnExt4(t)
	c := start(t, []string{inner.Mountpoint}, false)
	if err := inner.TriggerError("fshealth storage test"); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	if len(e.Storage) < 2 {
		t.Fatalf("storage stack %+v, want the inner and the outer loop device", e.Storage)
	}
	top, below := e.Storage[0], storage.Find(e.Storage, outer.Name)
	if top.Name != inner.Name || top.Kind != storage.KindLoop || top.BackingFile != inner.File ||
		len(top.On) != 1 || top.On[0] != outer.Name {
		t.Errorf("top layer %+v, want %s on %s backed by %s", top, inner.Name, outer.Name, inner.File)
	}
	if f := top.BackingFS; f == nil || f.Mountpoint != outer.Mountpoint || f.FSType != "ext4" || f.Source != outer.Dev {
		t.Errorf("the inner image's file system %+v, want ext4 %s at %s", f, outer.Dev, outer.Mountpoint)
	}
	if below == nil || below.Kind != storage.KindLoop || below.BackingFile != outer.File {
		t.Errorf("layer %s: %+v, want the loop device of %s", outer.Name, below, outer.File)
	}
	line := string(event.AppendText(nil, &e))
	if want := inner.Name + " file " + inner.File + " → " + outer.Name + " file " + outer.File; !strings.Contains(line, want) {
		t.Errorf("text line %q lacks %q", line, want)
	}
	t.Logf("%s", line)
	c.none()
}

// TestBlockErrorBelowAttributedByStack: errors the kernel log reports only
// for a device deep below a watched file system — a medium error on the
// disk under its loop device's backing file, md failing that disk out of
// an array — are events of that file system, found through its recorded
// storage stack; the same errors on a device under no watched file system
// are not.
func TestBlockErrorBelowAttributedByStack(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer, inner := ext4OnLoopOnExt4(t)
	path, write := fakeKernelLog(t)
	c := startConfig(t, Config{Paths: []string{inner.Mountpoint}, KernelLog: true, KernelLogPath: path, KernelLogHold: testHold}, false)
	write("3,100,1,-;critical medium error, dev nosuchdisk, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0")
	write("3,101,2,-;critical medium error, dev %s, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0", outer.Name)
	write("2,102,3,-;md/raid1:md9: Disk failure on %s, disabling device.\\x0amd/raid1:md9: Operation continuing on 1 devices.", outer.Name)
	got := map[string]event.Event{}
	for range 2 {
		e := c.next()
		got[e.KernelMessage] = e
	}
	for _, e := range got {
		if e.Source != event.SourceKmsg || e.Device != inner.Dev || len(e.Storage) < 2 || e.Storage[0].Name != inner.Name ||
			storage.Find(e.Storage, outer.Name) == nil {
			t.Errorf("event not of %s with its stack: %s", inner.Dev, event.AppendText(nil, &e))
		}
	}
	medium := "critical medium error, dev " + outer.Name + ", sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"
	if e, ok := got[medium]; !ok || e.Error != "ENODATA" {
		t.Errorf("no ENODATA event for the medium error under %s: %v", inner.Dev, got)
	}
	md := "md/raid1:md9: Disk failure on " + outer.Name + ", disabling device.\nmd/raid1:md9: Operation continuing on 1 devices."
	if e, ok := got[md]; !ok || e.Error != "EIO" || !strings.Contains(e.Message, "device error") {
		t.Errorf("no device error event for the md member failure: %v", got)
	}
	c.none()
}

// TestSectorOfVanishedDiskMappedByRecordedStack: a block layer error names
// a disk sysfs no longer has (it was pulled, or its driver gave up on it)
// and a sector of it; the partition recorded in a watched file system's
// stack that holds the sector makes it an event of that file system, and a
// sector outside it (in another partition, or the partition table) does
// not.
func TestSectorOfVanishedDiskMappedByRecordedStack(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	path, write := fakeKernelLog(t)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogPath: path, KernelLogHold: testHold}, false)
	// As if the loop device were on partition 2 of a disk that is gone
	// now, the way the stack was recorded while it was there.
	done := make(chan struct{})
	c.w.Do(func() {
		fs := c.w.Watched()[0]
		fs.Storage[0].On = []string{"ghost2"}
		fs.Storage = append(fs.Storage[:1:1],
			storage.Layer{Name: "ghost2", Kind: storage.KindPartition, Partition: 2, Start: 4096, Sectors: 2048, On: []string{"ghost"}},
			storage.Layer{Name: "ghost", Kind: storage.KindDisk, Disk: &storage.Disk{Model: "GONE", Serial: "G1"}})
		close(done)
	})
	<-done
	write("3,100,1,-;critical medium error, dev ghost, sector 100 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0")
	write("3,101,2,-;critical medium error, dev ghost, sector 5000 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0")
	e := c.next()
	if e.Device != im.Dev || !strings.Contains(e.KernelMessage, "sector 5000") || e.ErrorCount != 1 {
		t.Errorf("event %s, want the one of sector 5000 (in ghost2) on %s", event.AppendText(nil, &e), im.Dev)
	}
	if len(e.Storage) == 0 || e.Storage[0].Name != im.Name {
		t.Errorf("event without its file system's stack: %s", event.AppendText(nil, &e))
	}
	c.none()
}
