package watch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// ext4OnMDRaid1 makes ext4 on /dev/md0, a RAID1 of the two partitions of
// the scsi_debug disk, mounts it and returns the disk's and the
// partitions' names and the mount point.
func ext4OnMDRaid1(t *testing.T) (disk string, parts []string, mp string) {
	t.Helper()
	disk = scsiDebugDisk(t)
	testutil.RequireCommand(t, "mdadm", "mdadm")
	testutil.RequireCommand(t, "mkfs.ext4", "e2fsprogs")
	parts = partitionDiskN(t, disk, 2)
	const md = "/dev/md0"
	if err := mdadm("--create", md, "--run", "--level=1", "--raid-devices=2", "--metadata=1.2", "--assume-clean",
		"/dev/"+parts[0], "/dev/"+parts[1]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mdadm("--stop", md); err != nil {
			t.Error(err)
		}
		if err := mdadm("--zero-superblock", "/dev/"+parts[0], "/dev/"+parts[1]); err != nil {
			t.Error(err)
		}
	})
	mkfs, err := loopfs.FindTool("mkfs.ext4")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", md).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", md, err, out)
	}
	mp = filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(md, mp, "ext4", 0, "errors=continue"); err != nil {
		t.Fatalf("mount %s: %v", md, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mp, 0); err != nil {
			t.Errorf("unmount %s: %v", mp, err)
		}
	})
	return disk, parts, mp
}

// nextRedundancy returns the next event, which must be a redundancy one.
func (c *collector) nextRedundancy() event.Event {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-c.events:
			if e.Kind == event.KindRedundancy {
				c.t.Logf("%s", event.AppendText(nil, &e))
				return e
			}
			c.t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
		case <-deadline:
			c.t.Fatalf("no redundancy event within %v", waitTimeout)
			return event.Event{}
		}
	}
}

// noRedundancy checks that no redundancy event arrives within a second.
func (c *collector) noRedundancy() {
	c.t.Helper()
	until := time.After(time.Second)
	for {
		select {
		case e := <-c.events:
			c.t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
		case <-until:
			return
		}
	}
}

// TestRedundancyMDLegLostAndRestored: ext4 on an md RAID1 of two
// partitions of a scsi_debug disk. A leg failed (mdadm --fail) is one
// member-faulty event naming the array and the leg, with the array
// degraded; removing it (--remove) is one member-removed event; adding it
// back (--add) and md's recovery end in one restored event. The file
// system sees no error at any point. Neither the kernel log nor the
// periodic check (an hour) wakes the watcher here: md's own events
// (/proc/mdstat) do, and while the recovery runs, the short re-reading of a
// settling array (md does not signal the end of a recovery on every
// kernel).
func TestRedundancyMDLegLostAndRestored(t *testing.T) {
	testutil.CheckNoLeaks(t)
	_, parts, mp := ext4OnMDRaid1(t)
	c := startConfig(t, Config{Paths: []string{mp}, Redundancy: true, RedundancyInterval: time.Hour}, false)
	c.noRedundancy()

	check := func(e event.Event, change, member string, degraded int) {
		t.Helper()
		r := e.Redundancy
		if e.Source != event.SourceMD || r == nil || r.Change != change || r.Array != "md0" || r.Level != "raid1" ||
			r.Member != member || r.Degraded != degraded || r.RaidDisks != 2 {
			t.Errorf("event %+v, redundancy %+v: want %s of md0 member %q, degraded %d of 2", e, r, change, member, degraded)
		}
		if e.Device != "/dev/md0" || e.FSType != "ext4" || len(e.Mountpoints) != 1 || e.Mountpoints[0] != mp {
			t.Errorf("file system of the event: %s %s %v", e.Device, e.FSType, e.Mountpoints)
		}
		if len(e.Storage) == 0 || e.Storage[0].Name != "md0" || e.Storage[0].MD == nil {
			t.Errorf("storage stack %+v", e.Storage)
		} else if e.Storage[0].MD.Degraded != degraded {
			t.Errorf("stack's md0 degraded %d, want %d", e.Storage[0].MD.Degraded, degraded)
		}
	}

	if err := mdadm("/dev/md0", "--fail", "/dev/"+parts[1]); err != nil {
		t.Fatal(err)
	}
	e := c.nextRedundancy()
	check(e, storage.ChangeMemberFaulty, parts[1], 1)
	if r := e.Redundancy; r != nil && !strings.Contains(r.MemberState, "faulty") {
		t.Errorf("member state %q", r.MemberState)
	}
	if line := string(event.AppendText(nil, &e)); !strings.Contains(line, "REDUNDANCY member-faulty") || !strings.Contains(line, "member "+parts[1]+" faulty, 1 of 2 members missing") {
		t.Errorf("text line %q", line)
	}
	c.noRedundancy()

	if err := mdadm("/dev/md0", "--remove", "/dev/"+parts[1]); err != nil {
		t.Fatal(err)
	}
	check(c.nextRedundancy(), storage.ChangeMemberRemoved, parts[1], 1)
	c.noRedundancy()

	if err := mdadm("/dev/md0", "--add", "/dev/"+parts[1]); err != nil {
		t.Fatal(err)
	}
	restored := c.nextRedundancy()
	check(restored, storage.ChangeRestored, "", 0)
	c.noRedundancy()

	// A watcher started later finds the array whole: it says nothing,
	// unless the loss is still open from before (the daemon restarted
	// while the array was repaired), which it then ends.
	var asked []string
	c2 := startConfig(t, Config{Paths: []string{mp}, Redundancy: true, RedundancyInterval: time.Hour,
		RedundancyLost: func(k string) bool { asked = append(asked, k); return false }}, false)
	c2.noRedundancy()
	if len(asked) != 1 || asked[0] != restored.FSKey() {
		t.Errorf("RedundancyLost asked about %q, want once about %q", asked, restored.FSKey())
	}
	c3 := startConfig(t, Config{Paths: []string{mp}, Redundancy: true, RedundancyInterval: time.Hour,
		RedundancyLost: func(k string) bool { return k == restored.FSKey() }}, false)
	check(c3.nextRedundancy(), storage.ChangeRestored, "", 0)
	c3.noRedundancy()
}

// TestMDEventsStop: waiting for md events on a file that never signals
// (a fixture mdstat) ends when stopped, with no event, leaving nothing
// open.
func TestMDEventsStop(t *testing.T) {
	testutil.CheckNoLeaks(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "mdstat"), []byte("Personalities : [raid1]\nunused devices: <none>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := openMDEvents(root)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	done := make(chan error)
	go func() { done <- m.wait(func() { events++ }) }()
	m.stop()
	if err := <-done; err != nil || events != 0 {
		t.Errorf("wait: %v after %d events", err, events)
	}
	m.close()
	if _, err := openMDEvents(t.TempDir()); err == nil {
		t.Error("no error without mdstat")
	}
}
