package btrfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

const fixtureUUID = "0b9d5e4e-0b1c-4b6a-9a57-3f1d2c4e5a6b"

// errorStats formats counters the way the kernel prints error_stats.
func errorStats(w, r, f, c, g int64) string {
	return fmt.Sprintf("write_errs %d\nread_errs %d\nflush_errs %d\ncorruption_errs %d\ngeneration_errs %d\n", w, r, f, c, g)
}

// sysTree creates a fake sysfs root with /fs/btrfs/<uuid>/devinfo/<devid>/
// directories; files maps "devid/name" to contents.
func sysTree(t *testing.T, uuid string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	dir := btrfs.DevinfoDir(root, uuid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, contents := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if contents == "" {
			continue // only the directory
		}
		if err := os.WriteFile(p, []byte(contents), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDevinfoDir(t *testing.T) {
	if got, want := btrfs.DevinfoDir("/sys", fixtureUUID), "/sys/fs/btrfs/"+fixtureUUID+"/devinfo"; got != want {
		t.Errorf("DevinfoDir = %s, want %s", got, want)
	}
}

func TestReadSysfsFixture(t *testing.T) {
	root := sysTree(t, fixtureUUID, map[string]string{
		"10/error_stats":        errorStats(0, 0, 0, 0, 0),
		"2/error_stats":         errorStats(1, 2, 3, 4, 5),
		"2/missing":             "0\n",
		"1/error_stats":         errorStats(0, 7, 0, 0, 0),
		"3/error_stats":         "invalid\n", // counters not loaded yet: left out
		"notadevid/error_stats": errorStats(9, 9, 9, 9, 9),
	})
	devs, err := btrfs.ReadSysfs(root, fixtureUUID)
	if err != nil {
		t.Fatal(err)
	}
	want := []btrfs.DeviceStats{
		{DevID: 1, ReadErrs: 7},
		{DevID: 2, WriteErrs: 1, ReadErrs: 2, FlushErrs: 3, CorruptionErrs: 4, GenerationErrs: 5},
		{DevID: 10},
	}
	if !reflect.DeepEqual(devs, want) {
		t.Errorf("ReadSysfs:\n got %+v\nwant %+v", devs, want)
	}
	if got := want[1].Total(); got != 15 {
		t.Errorf("Total = %d, want 15", got)
	}
}

func TestReadSysfsOldKernels(t *testing.T) {
	// No devinfo directory at all (before Linux 5.6, or not mounted).
	_, err := btrfs.ReadSysfs(t.TempDir(), fixtureUUID)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no devinfo: %v, want fs.ErrNotExist", err)
	}
	// devinfo without error_stats (Linux 5.6 to 5.13).
	root := sysTree(t, fixtureUUID, map[string]string{"1/in_fs_metadata": "1\n"})
	_, err = btrfs.ReadSysfs(root, fixtureUUID)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no error_stats: %v, want fs.ErrNotExist", err)
	}
}

func TestReadSysfsMalformedNamesTheFile(t *testing.T) {
	root := sysTree(t, fixtureUUID, map[string]string{"1/error_stats": "write_errs x\n"})
	_, err := btrfs.ReadSysfs(root, fixtureUUID)
	want := filepath.Join(btrfs.DevinfoDir(root, fixtureUUID), "1", "error_stats")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error naming %s", err, want)
	}
}

func TestStatsRefusesOtherFilesystems(t *testing.T) {
	dir := t.TempDir() // tmpfs or ext4, never btrfs in the test environment
	_, _, err := btrfs.Stats(dir, "/sys")
	if err == nil {
		testutil.Skip(t, testutil.NotApplicable, "%s is on btrfs", dir)
	}
	if !errors.Is(err, btrfs.ErrNotBtrfs) {
		t.Errorf("Stats(%s) = %v, want ErrNotBtrfs", dir, err)
	}
	if _, _, err := btrfs.Stats(filepath.Join(dir, "absent"), "/sys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent mount point: %v", err)
	}
}

// dev returns a DeviceStats with the given counters.
func dev(id uint64, path string, w, r, f, c, g uint64) btrfs.DeviceStats {
	return btrfs.DeviceStats{DevID: id, Path: path, WriteErrs: w, ReadErrs: r, FlushErrs: f, CorruptionErrs: c, GenerationErrs: g}
}

func TestTrackerBaselineThenIncreases(t *testing.T) {
	var tr btrfs.Tracker
	const u = fixtureUUID
	if incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 3, 0, 1, 0)}); incs != nil {
		t.Fatalf("first Update reported %v", incs)
	}
	if incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 3, 0, 1, 0)}); incs != nil {
		t.Fatalf("unchanged counters reported %v", incs)
	}
	incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 2, 3, 0, 4, 1)})
	want := []btrfs.Increase{
		{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "write", From: 0, To: 2},
		{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "corruption", From: 1, To: 4},
		{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "generation", From: 0, To: 1},
	}
	if !reflect.DeepEqual(incs, want) {
		t.Fatalf("Update:\n got %+v\nwant %+v", incs, want)
	}
	if d := incs[1].Delta(); d != 3 {
		t.Errorf("Delta = %d, want 3", d)
	}
	if s := incs[1].String(); s != "btrfs "+u+": device 1 (/dev/a): corruption errors 1 -> 4" {
		t.Errorf("String = %q", s)
	}
}

func TestTrackerDevices(t *testing.T) {
	var tr btrfs.Tracker
	const u = fixtureUUID
	tr.Update(u, []btrfs.DeviceStats{dev(2, "/dev/b", 0, 0, 0, 5, 0), dev(1, "/dev/a", 1, 0, 0, 0, 0)})

	// A reset counter (btrfs device stats -z) is not reported and becomes
	// the reference; a device missing from a reading keeps its values;
	// a new device is compared with zero.
	incs := tr.Update(u, []btrfs.DeviceStats{dev(3, "/dev/c", 0, 0, 1, 0, 0), dev(2, "/dev/b", 0, 0, 0, 0, 0)})
	want := []btrfs.Increase{{FSUUID: u, DevID: 3, Path: "/dev/c", Counter: "flush", From: 0, To: 1}}
	if !reflect.DeepEqual(incs, want) {
		t.Fatalf("after reset and add:\n got %+v\nwant %+v", incs, want)
	}
	// Device 1 comes back with one more write error; device 2 counts again
	// from its reset value; a reading without paths (ReadSysfs) keeps the
	// known paths.
	incs = tr.Update(u, []btrfs.DeviceStats{dev(2, "", 0, 0, 0, 1, 0), dev(1, "", 2, 0, 0, 0, 0)})
	want = []btrfs.Increase{
		{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "write", From: 1, To: 2},
		{FSUUID: u, DevID: 2, Path: "/dev/b", Counter: "corruption", From: 0, To: 1},
	}
	if !reflect.DeepEqual(incs, want) {
		t.Fatalf("after return:\n got %+v\nwant %+v", incs, want)
	}
	last := tr.Last(u)
	wantLast := []btrfs.DeviceStats{dev(1, "/dev/a", 2, 0, 0, 0, 0), dev(2, "/dev/b", 0, 0, 0, 1, 0), dev(3, "/dev/c", 0, 0, 1, 0, 0)}
	if !reflect.DeepEqual(last, wantLast) {
		t.Errorf("Last:\n got %+v\nwant %+v", last, wantLast)
	}
	// File systems are tracked separately.
	if incs := tr.Update("other", []btrfs.DeviceStats{dev(1, "/dev/x", 9, 9, 9, 9, 9)}); incs != nil {
		t.Errorf("other file system's baseline reported %v", incs)
	}
	tr.Forget(u)
	if tr.Last(u) != nil {
		t.Errorf("Last after Forget = %v", tr.Last(u))
	}
	if incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 5, 0, 0, 0, 0)}); incs != nil {
		t.Errorf("Update after Forget reported %v", incs)
	}
}

func TestTrackerEmptyFirstReadingIsNoBaseline(t *testing.T) {
	var tr btrfs.Tracker
	if incs := tr.Update(fixtureUUID, nil); incs != nil {
		t.Fatal(incs)
	}
	if tr.Last(fixtureUUID) != nil {
		t.Fatal("an empty reading became the baseline")
	}
	if incs := tr.Update(fixtureUUID, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 0, 0, 2, 0)}); incs != nil {
		t.Errorf("first non-empty reading reported %v", incs)
	}
}

func TestTrackerReportBaseline(t *testing.T) {
	tr := btrfs.Tracker{ReportBaseline: true}
	const u = fixtureUUID
	incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 0, 0, 2, 0), dev(2, "/dev/b", 0, 0, 0, 0, 0)})
	want := []btrfs.Increase{{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "corruption", From: 0, To: 2, Baseline: true}}
	if !reflect.DeepEqual(incs, want) {
		t.Fatalf("baseline:\n got %+v\nwant %+v", incs, want)
	}
	if s := incs[0].String(); s != "btrfs "+u+": device 1 (/dev/a): corruption errors 0 -> 2 (already non-zero when first seen)" {
		t.Errorf("String = %q", s)
	}
	// Reported once: the next reading compares with it.
	if incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 0, 0, 2, 0)}); incs != nil {
		t.Errorf("second Update reported %v", incs)
	}
	incs = tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 0, 0, 0, 3, 0)})
	want = []btrfs.Increase{{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "corruption", From: 2, To: 3}}
	if !reflect.DeepEqual(incs, want) {
		t.Errorf("later increase:\n got %+v\nwant %+v", incs, want)
	}
}

// TestTrackerAcrossRestarts plays a daemon that persists Last and restores
// it at start: counters non-zero at the first start are reported once,
// errors that happened while it was stopped are reported at the next start,
// and nothing is reported twice.
func TestTrackerAcrossRestarts(t *testing.T) {
	const u = fixtureUUID
	var stored map[string][]btrfs.DeviceStats // what the daemon persists
	start := func(reading []btrfs.DeviceStats) []btrfs.Increase {
		tr := btrfs.Tracker{ReportBaseline: true}
		if devs, ok := stored[u]; ok {
			tr.Restore(u, devs)
		}
		incs := tr.Update(u, reading)
		stored = map[string][]btrfs.DeviceStats{u: tr.Last(u)}
		return incs
	}
	incs := start([]btrfs.DeviceStats{dev(1, "/dev/a", 0, 1, 0, 0, 0)})
	if len(incs) != 1 || !incs[0].Baseline || incs[0].To != 1 {
		t.Fatalf("first start: %+v", incs)
	}
	if incs := start([]btrfs.DeviceStats{dev(1, "/dev/a", 0, 1, 0, 0, 0)}); incs != nil {
		t.Fatalf("second start reported again: %+v", incs)
	}
	incs = start([]btrfs.DeviceStats{dev(1, "/dev/a", 0, 1, 0, 4, 0)})
	want := []btrfs.Increase{{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "corruption", From: 0, To: 4}}
	if !reflect.DeepEqual(incs, want) {
		t.Fatalf("errors while stopped:\n got %+v\nwant %+v", incs, want)
	}
	if incs := start([]btrfs.DeviceStats{dev(1, "/dev/a", 0, 1, 0, 4, 0)}); incs != nil {
		t.Fatalf("fourth start reported again: %+v", incs)
	}
}

func TestTrackerRestoreReplaces(t *testing.T) {
	var tr btrfs.Tracker
	const u = fixtureUUID
	tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 5, 0, 0, 0, 0), dev(2, "/dev/b", 5, 0, 0, 0, 0)})
	tr.Restore(u, []btrfs.DeviceStats{dev(1, "/dev/a", 1, 0, 0, 0, 0)})
	incs := tr.Update(u, []btrfs.DeviceStats{dev(1, "/dev/a", 5, 0, 0, 0, 0)})
	want := []btrfs.Increase{{FSUUID: u, DevID: 1, Path: "/dev/a", Counter: "write", From: 1, To: 5}}
	if !reflect.DeepEqual(incs, want) {
		t.Errorf("got %+v, want %+v", incs, want)
	}
	if got := tr.Last(u); len(got) != 1 {
		t.Errorf("Last after Restore kept device 2: %+v", got)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	var tr btrfs.Tracker
	var wg sync.WaitGroup
	total := make([]uint64, 8)
	for g := range 8 {
		wg.Go(func() {
			u := fmt.Sprint("fs", g%2)
			for i := range uint64(200) {
				for _, inc := range tr.Update(u, []btrfs.DeviceStats{dev(uint64(g), "", 0, 0, 0, i, 0)}) {
					total[g] += inc.Delta()
				}
				tr.Last(u)
			}
		})
	}
	wg.Wait()
	for g, n := range total {
		// Counters start at zero, so the baseline hides nothing.
		if n != 199 {
			t.Errorf("goroutine %d saw %d errors, want 199", g, n)
		}
	}
}
