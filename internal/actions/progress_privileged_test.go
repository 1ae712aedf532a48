package actions

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// throttleBtrfsScrub limits the scrub of every device of the btrfs image
// im to bytesPerSecond (scrub_speed_max, Linux 5.14+), and lifts the limit
// when the test ends.
func throttleBtrfsScrub(t *testing.T, im *loopfs.Image, bytesPerSecond int64) {
	t.Helper()
	devs, _ := filepath.Glob(filepath.Join("/sys/fs/btrfs/*/devices", im.Name))
	if len(devs) != 1 {
		t.Fatalf("sysfs directory of %s: %v", im.Dev, devs)
	}
	speed := filepath.Join(filepath.Dir(filepath.Dir(devs[0])), "devinfo", "1", "scrub_speed_max")
	if err := os.WriteFile(speed, []byte(strconv.FormatInt(bytesPerSecond, 10)), 0); err != nil {
		why := testutil.Missing
		if errors.Is(err, os.ErrNotExist) {
			why = testutil.KernelLacks // scrub_speed_max is from Linux 5.14
		}
		testutil.Skip(t, why, "cannot throttle btrfs scrub: %v", err)
	}
	t.Cleanup(func() { os.WriteFile(speed, []byte("0"), 0) })
}

// TestBtrfsScrubProgress: a real btrfs scrub, throttled so that it takes
// seconds, reports its progress in bytes, read from the kernel, growing
// until it ends.
func TestBtrfsScrubProgress(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "btrfs", 512<<20, "")
	testutil.RequireCommand(t, "btrfs", "btrfs-progs")
	writeRandom(t, filepath.Join(im.Mountpoint, "data"), 96<<20)
	unix.Sync()
	throttleBtrfsScrub(t, im, 16<<20)
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 0
	defer func(d time.Duration) { btrfsProgressEvery = d }(btrfsProgressEvery)
	btrfsProgressEvery = 100 * time.Millisecond

	var mu sync.Mutex
	var got []Progress
	r := &Runner{Progress: func(p Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}}
	res := r.Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	mu.Lock()
	defer mu.Unlock()
	if !res.OK {
		t.Fatalf("scrub: %+v", res)
	}
	// 96 MiB at 16 MiB/s, read every 100 ms: dozens of readings.
	if len(got) < 3 {
		t.Fatalf("%d progress reports, want several", len(got))
	}
	t.Logf("%d reports, from %s to %s", len(got), got[0], got[len(got)-1])
	// What a whole scrub reads: the data once, the metadata (DUP) twice.
	total := got[0].Total
	if total < 96<<20 || total > 100<<20 {
		t.Errorf("total to scrub %d, want 96 MiB of data and a little metadata", total)
	}
	for i, p := range got {
		if p.Unit != UnitBytes || p.Phase != "" || p.Total != total || p.Done > p.Total {
			t.Errorf("report %d: %+v", i, p)
		}
		if i > 0 && p.Done < got[i-1].Done {
			t.Errorf("report %d went back: %d after %d", i, p.Done, got[i-1].Done)
		}
	}
	if first, last := got[0], got[len(got)-1]; last.Done <= first.Done || last.Percent < 50 {
		t.Errorf("progress from %s to %s: want it to grow past half", first, last)
	}
}

// writeRandom writes n random bytes (incompressible, not deduplicated) to
// path.
func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2fsckProgressCommand: a command action running the real e2fsck with
// -C {progress_fd} reports each of its passes.
func TestE2fsckProgressCommand(t *testing.T) {
	testutil.RequireCommand(t, "e2fsck", "e2fsprogs")
	testutil.RequireCommand(t, "mkfs.ext4", "e2fsprogs")
	img := filepath.Join(testutil.ScratchDir(t), "ext4.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 0
	var got []Progress
	var mu sync.Mutex
	r := &Runner{Progress: func(p Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}}
	res := r.Run(context.Background(), Spec{Name: Command, Argv: []string{"e2fsck", "-fn", "-C", "{progress_fd}", "{device}"}},
		Target{Device: img, FSType: "ext4"})
	if !res.OK {
		t.Fatalf("%+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	passes := map[string]bool{}
	for _, p := range got {
		passes[p.Phase] = true
	}
	if len(passes) != 5 || got[len(got)-1].String() != fmt.Sprintf("pass 5 of 5: 100%% (%d of %d)", got[len(got)-1].Total, got[len(got)-1].Total) {
		t.Errorf("%d reports, passes %v, last %v", len(got), passes, got[len(got)-1])
	}
}
