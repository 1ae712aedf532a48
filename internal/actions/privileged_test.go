package actions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// targetOf describes a mounted scratch image as an event would.
func targetOf(im *loopfs.Image) Target {
	return Target{Device: im.Dev, FSType: im.FSType, Mountpoints: []string{im.Mountpoint}, EventID: "test-event", Errno: "EUCLEAN"}
}

// superOptions returns the superblock options of the mount at mp.
func superOptions(t *testing.T, mp string) string {
	t.Helper()
	_, m, err := findMount(Target{Mountpoints: []string{mp}})
	if err != nil {
		t.Fatal(err)
	}
	return m.SuperOptions
}

// tool runs an e2fsprogs program directly and returns its combined output
// and exit status.
func tool(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	prog, err := loopfs.FindTool(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(prog, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), 0
}

// fsState returns the "Filesystem state:" dumpe2fs -h shows for image.
func fsState(t *testing.T, image string) string {
	t.Helper()
	out, code := tool(t, "dumpe2fs", "-h", image)
	if code != 0 {
		t.Fatalf("dumpe2fs -h %s: exit %d: %s", image, code, out)
	}
	for l := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(l, "Filesystem state:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("dumpe2fs -h %s shows no state:\n%s", image, out)
	return ""
}

// requireForcedCheck checks, on the unmounted image, that e2fsck -n and
// then e2fsck -p (what the boot-time fsck runs) check the file system in
// full instead of skipping it as clean, and that the mark is gone after.
func requireForcedCheck(t *testing.T, image string) {
	t.Helper()
	if s := fsState(t, image); s != "clean with errors" {
		t.Errorf("dumpe2fs: Filesystem state %q, want %q", s, "clean with errors")
	}
	out, code := tool(t, "e2fsck", "-n", image)
	if !strings.Contains(out, "contains a file system with errors, check forced") || !strings.Contains(out, "Pass 5") || code >= 4 {
		t.Errorf("e2fsck -n: exit %d, want a forced full check:\n%s", code, out)
	}
	out, code = tool(t, "e2fsck", "-p", image)
	if !strings.Contains(out, "contains a file system with errors, check forced") || code >= 2 {
		t.Errorf("e2fsck -p: exit %d, want a forced check:\n%s", code, out)
	}
	out, code = tool(t, "e2fsck", "-p", image)
	if !strings.Contains(out, "clean") || strings.Contains(out, "check forced") || code != 0 {
		t.Errorf("second e2fsck -p: exit %d, want clean:\n%s", code, out)
	}
}

func TestRemountRO(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	mp := im.Mountpoint
	// Per-mount flags must survive the remount.
	if err := unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "before"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Dry run: nothing changes.
	res := (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != "dry run: would remount "+mp+" read-only" {
		t.Errorf("dry run: %+v", res)
	}
	if err := os.WriteFile(filepath.Join(mp, "after-dry-run"), []byte("x"), 0o644); err != nil {
		t.Fatalf("dry run made the file system read-only: %v", err)
	}

	res = (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != "remounted "+mp+" read-only" || len(res.Argv) != 0 || res.DryRun {
		t.Fatalf("remount-ro: %+v", res)
	}
	err := os.WriteFile(filepath.Join(mp, "after"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write after remount-ro: %v, want EROFS", err)
	}
	if !hasOption(superOptions(t, mp), "ro") {
		t.Errorf("superblock options %q, want ro", superOptions(t, mp))
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		t.Fatal(err)
	}
	if want := int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV); st.Flags&want != want {
		t.Errorf("statfs flags %#x, want ro, nosuid and nodev (%#x)", st.Flags, want)
	}

	// Again: already read-only.
	res = (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != mp+" is already read-only" {
		t.Errorf("second remount-ro: %+v", res)
	}
	res = (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != "dry run: "+mp+" is already read-only; would do nothing" {
		t.Errorf("dry-run remount-ro of a read-only file system: %+v", res)
	}
}

func TestRemountROMountedReadOnly(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "ext4", 64<<20, "ro")
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != im.Mountpoint+" is already read-only" {
		t.Errorf("remount-ro: %+v", res)
	}
}

func TestRemountROBusy(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	path := filepath.Join(im.Mountpoint, "open-for-writing")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	want := fmt.Sprintf("failed: cannot remount %s read-only: busy (EBUSY), %d tries over ", im.Mountpoint, len(busyRetries)+1)
	writer := fmt.Sprintf(": pid %d (", os.Getpid())
	if res.OK || !strings.HasPrefix(res.Outcome, want) || !strings.Contains(res.Outcome, writer) || !strings.Contains(res.Outcome, path+" open for writing") || !strings.HasSuffix(res.Outcome, "; remount-ro does not force it") {
		t.Errorf("remount-ro with a file open for writing:\n%q\nwant it to start with %q and name %s", res.Outcome, want, path)
	}
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "still-writable"), []byte("x"), 0o644); err != nil {
		t.Errorf("file system not writable after the refused remount: %v", err)
	}
	f.Close()
	res = (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK {
		t.Errorf("remount-ro after closing the file: %+v", res)
	}
}

// TestRemountROWrongFilesystem: the event's mount point now holds another
// file system; remount-ro must not touch it.
func TestRemountROWrongFilesystem(t *testing.T) {
	testutil.CheckNoLeaks(t)
	a := testutil.NewExt4(t, 0)
	b := testutil.NewExt4(t, 0)
	target := targetOf(a)
	target.Mountpoints = []string{b.Mountpoint}
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, target)
	want := fmt.Sprintf("failed: %s is not mounted where it was: %s is now the mount point of %s (ext4)", a.Dev, b.Mountpoint, b.Dev)
	if res.OK || res.Outcome != want {
		t.Errorf("outcome %q, want %q", res.Outcome, want)
	}
	if hasOption(superOptions(t, b.Mountpoint), "ro") {
		t.Errorf("the other file system was remounted read-only")
	}
}

func TestFsckNextBootUnmountedImage(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "tune2fs", "e2fsprogs")
	testutil.RequireCommand(t, "e2fsck", "e2fsprogs")
	im, err := loopfs.Create(t.TempDir(), "ext4", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Device: im.File, FSType: "ext4"}

	res := (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: FsckNextBoot}, target)
	tune2fs, _ := LookPath("tune2fs")
	if !res.OK || !res.DryRun || res.Outcome != "dry run: would run: "+tune2fs+" -E force_fsck "+im.File {
		t.Errorf("dry run: %+v", res)
	}
	if s := fsState(t, im.File); s != "clean" {
		t.Fatalf("after the dry run the state is %q, want clean", s)
	}

	res = (&Runner{}).Run(context.Background(), Spec{Name: FsckNextBoot}, target)
	if !res.OK || res.Outcome != "marked "+im.File+" to be checked by fsck at next boot (superblock state: with errors)" ||
		strings.Join(res.Argv, " ") != tune2fs+" -E force_fsck "+im.File {
		t.Fatalf("fsck-next-boot: %+v", res)
	}
	if !strings.Contains(res.Output, "Setting filesystem error flag to force fsck") {
		t.Errorf("tune2fs output %q", res.Output)
	}
	requireForcedCheck(t, im.File)
}

// TestFsckNextBootMountedReadWrite shows why fsck-next-boot refuses to
// report success on a clean file system mounted read-write: tune2fs sets
// the flag, but the kernel writes its own state back at a clean unmount.
func TestFsckNextBootMountedReadWrite(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "tune2fs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	res := (&Runner{}).Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	want := fmt.Sprintf("failed: marked %s with tune2fs -E force_fsck, but the mark will not last: it is mounted read-write (on %s) and Linux clears the mark when it unmounts the file system cleanly unless the kernel itself has recorded errors on it; remount it read-only first (remount-ro, then fsck-next-boot)", im.Dev, im.Mountpoint)
	if res.OK || res.Outcome != want || len(res.Argv) != 4 {
		t.Errorf("fsck-next-boot on a read-write mount:\n%q\nwant\n%q", res.Outcome, want)
	}
	res = (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	if res.OK || !strings.HasPrefix(res.Outcome, "dry run: would run: ") || !strings.Contains(res.Outcome, "but the mark would not last") {
		t.Errorf("dry run: %+v", res)
	}
	file := im.File
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	// The reason for the refusal: the mark is gone after the unmount.
	if s := fsState(t, file); s != "clean" {
		t.Errorf("after a clean unmount the state is %q; the kernel no longer clears the mark, fsck-next-boot could accept read-write mounts", s)
	}
}

// TestFsckNextBootAfterRemountRO: remount-ro, then fsck-next-boot; the mark
// survives the unmount and the boot-time fsck checks the file system.
func TestFsckNextBootAfterRemountRO(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "tune2fs", "e2fsprogs")
	testutil.RequireCommand(t, "e2fsck", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "data"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Runner{}
	if res := r.Run(context.Background(), Spec{Name: RemountRO}, targetOf(im)); !res.OK {
		t.Fatalf("remount-ro: %+v", res)
	}
	res := r.Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	if !res.OK || res.Outcome != "marked "+im.Dev+" to be checked by fsck at next boot (superblock state: with errors)" {
		t.Fatalf("fsck-next-boot: %+v", res)
	}
	file := im.File
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	requireForcedCheck(t, file)
}

// TestFsckNextBootWithKernelErrors: the kernel has recorded an error, so
// the mark lasts even on a read-write mount.
func TestFsckNextBootWithKernelErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "tune2fs", "e2fsprogs")
	testutil.RequireCommand(t, "e2fsck", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	if err := im.TriggerError("fshealth actions test"); err != nil {
		t.Fatal(err)
	}
	res := (&Runner{}).Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	want := "marked " + im.Dev + " to be checked by fsck at next boot (superblock state: with errors); the kernel has recorded 1 errors on it, so the mark survives unmounting"
	if !res.OK || res.Outcome != want {
		t.Fatalf("fsck-next-boot:\n%q\nwant\n%q", res.Outcome, want)
	}
	file := im.File
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	requireForcedCheck(t, file)
}

func TestXFS(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "xfs", 320<<20, "")
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "data"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Runner{}

	res := r.Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	if res.OK || !res.Unsupported || res.Outcome != "fsck at next boot is not available for xfs (xfs_repair must be run by hand on the unmounted file system)" {
		t.Errorf("fsck-next-boot on xfs: %+v", res)
	}

	testutil.RequireCommand(t, "xfs_scrub", "xfsprogs")
	xfsScrub, _ := LookPath("xfs_scrub")
	wantArgv := xfsScrub + " -n " + im.Mountpoint
	unavailable := fmt.Sprintf(xfsNoKernelScrub, im.Mountpoint)
	kernelCan := xfsScrubProbe(im.Mountpoint) == nil
	t.Logf("kernel XFS online scrub: %v (probe: %v)", kernelCan, xfsScrubProbe(im.Mountpoint))

	res = r.Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	if strings.Join(res.Argv, " ") != wantArgv {
		t.Errorf("argv %q, want %s", res.Argv, wantArgv)
	}
	if kernelCan {
		if !res.OK || res.Outcome != "xfs_scrub -n found no errors on "+im.Mountpoint {
			t.Errorf("scrub on xfs: %+v", res)
		}
	} else if res.OK || !res.Unsupported || res.Outcome != unavailable || res.Output != "" {
		t.Errorf("scrub on xfs without kernel support: %+v", res)
	}

	// Without the probe, the real xfs_scrub runs and its own answer is
	// understood the same way.
	old := probeXFSScrub
	probeXFSScrub = func(string) error { return nil }
	t.Cleanup(func() { probeXFSScrub = old })
	res = r.Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	if kernelCan {
		if !res.OK {
			t.Errorf("scrub on xfs: %+v", res)
		}
	} else if res.OK || !res.Unsupported || res.Outcome != unavailable || !strings.Contains(res.Output, xfsScrubUnavailable) {
		t.Errorf("xfs_scrub without kernel support: %+v", res)
	}
	t.Logf("xfs_scrub said: %q", res.Output)

	res = (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	if !res.OK || res.Outcome != "dry run: would run: "+wantArgv {
		t.Errorf("dry-run scrub on xfs: %+v", res)
	}

	requireRemountRO(t, im)
}

func TestBtrfs(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "btrfs", 256<<20, "")
	testutil.RequireCommand(t, "btrfs", "btrfs-progs")
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "data"), []byte(strings.Repeat("data", 1<<16)), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	r := &Runner{}

	res := r.Run(context.Background(), Spec{Name: FsckNextBoot}, targetOf(im))
	if res.OK || !res.Unsupported || !strings.HasPrefix(res.Outcome, "fsck at next boot is not available for btrfs (") {
		t.Errorf("fsck-next-boot on btrfs: %+v", res)
	}

	btrfs, _ := LookPath("btrfs")
	want := btrfs + " scrub start -B " + im.Mountpoint
	res = (&Runner{DryRun: true}).Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	if !res.OK || res.Outcome != "dry run: would run: "+want {
		t.Errorf("dry-run scrub on btrfs: %+v", res)
	}
	res = r.Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
	if !res.OK || strings.Join(res.Argv, " ") != want || res.Outcome != "btrfs scrub of "+im.Mountpoint+" finished: no errors found" {
		t.Errorf("scrub on btrfs: %+v", res)
	}
	if !strings.Contains(res.Output, "Status:") || !strings.Contains(res.Output, "finished") {
		t.Errorf("btrfs scrub output: %q", res.Output)
	}
	t.Logf("outcome %q, output:\n%s", res.Outcome, res.Output)

	// A scrub that outlives its timeout: throttle it to 1 MiB/s.
	devs, _ := filepath.Glob(filepath.Join("/sys/fs/btrfs/*/devices", im.Name))
	if len(devs) != 1 {
		t.Fatalf("sysfs directory of %s: %v", im.Dev, devs)
	}
	speed := filepath.Join(filepath.Dir(filepath.Dir(devs[0])), "devinfo", "1", "scrub_speed_max")
	if err := os.WriteFile(speed, []byte("1048576"), 0); err != nil {
		why := testutil.Missing
		if errors.Is(err, os.ErrNotExist) {
			why = testutil.KernelLacks // scrub_speed_max is from Linux 5.14
		}
		testutil.Skip(t, why, "cannot throttle btrfs scrub (%v): timeout not tested", err)
	}
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "more"), make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	res = r.Run(context.Background(), Spec{Name: Scrub, Timeout: time.Second}, targetOf(im))
	wantPrefix := "failed: " + want + ": timed out after 1s; its process group was killed"
	if res.OK || !strings.HasPrefix(res.Outcome, wantPrefix) || !strings.HasSuffix(res.Outcome, "(the kernel's scrub has stopped)") && !strings.HasSuffix(res.Outcome, "(the kernel's scrub was stopped with btrfs scrub cancel)") {
		t.Errorf("scrub past its timeout:\n%q\nwant it to start with %q and say the scrub stopped", res.Outcome, wantPrefix)
	}
	if d := res.Finished.Sub(res.Started); d > 10*time.Second {
		t.Errorf("timed-out scrub took %v", d)
	}
	out, _ := exec.Command(btrfs, "scrub", "status", im.Mountpoint).CombinedOutput()
	if strings.Contains(string(out), "running") {
		t.Errorf("btrfs scrub still running after the timeout:\n%s", out)
	}
	t.Logf("outcome %q", res.Outcome)

	requireRemountRO(t, im)
}

// requireRemountRO runs remount-ro on the mounted image and checks that
// writes fail with EROFS afterwards.
func requireRemountRO(t *testing.T, im *loopfs.Image) {
	t.Helper()
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	if !res.OK || res.Outcome != "remounted "+im.Mountpoint+" read-only" {
		t.Errorf("remount-ro on %s: %+v", im.FSType, res)
	}
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "after-remount-ro"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write on %s after remount-ro: %v, want EROFS", im.FSType, err)
	}
}

func TestScrubExt4OnLoop(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	for _, dry := range []bool{false, true} {
		res := (&Runner{DryRun: dry}).Run(context.Background(), Spec{Name: Scrub}, targetOf(im))
		want := "online scrub is not available: e2scrub needs ext4 on an LVM logical volume; " + im.Dev + " is not"
		if res.OK || !res.Unsupported || res.Outcome != want || len(res.Argv) != 0 {
			t.Errorf("scrub on ext4 on a loop device (dry run %v): %+v\nwant outcome %q", dry, res, want)
		}
	}
}

// TestCommandHostileMountpoint mounts a file system on a directory whose
// name has spaces, a newline, quotes and shell syntax, and runs a command
// and remount-ro against it.
func TestCommandHostileMountpoint(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireRoot(t)
	dir := t.TempDir()
	im, err := loopfs.Create(dir, "ext4", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Remove(); err != nil {
			t.Error(err)
		}
	})
	mp := filepath.Join(dir, "mnt with spaces\nand newline $(touch "+dir+"/pwned1); touch "+dir+"/pwned2 `touch "+dir+"/pwned3` '\" {device}")
	if err := im.Mount(mp, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	target := Target{Device: im.Dev, FSType: "ext4", UUID: "$(touch " + dir + "/pwned4)", Mountpoints: []string{mp}, EventID: "ev;touch " + dir + "/pwned5", Errno: "EUCLEAN"}
	checkHostileCommand(t, dir, target)

	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, target)
	if !res.OK || strings.ContainsAny(res.Outcome, "\n") || res.Outcome != "remounted "+quoteIfNeeded(mp)+" read-only" {
		t.Errorf("remount-ro of the hostile mount point: %+v", res)
	}
	if err := os.WriteFile(filepath.Join(mp, "x"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write after remount-ro: %v, want EROFS", err)
	}
}

// TestRemountROBusyForAMoment: a file open for writing that is closed a
// moment after the first try (a copy finishing, a database closing) does
// not stop the remount: it is tried again.
func TestRemountROBusyForAMoment(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	f, err := os.OpenFile(filepath.Join(im.Mountpoint, "closed-soon"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(busyRetries[0] + busyRetries[1]/2)
		f.Close()
	}()
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, targetOf(im))
	<-closed
	want := fmt.Sprintf("remounted %s read-only (busy at first: ", im.Mountpoint)
	if !res.OK || !strings.HasPrefix(res.Outcome, want) {
		t.Errorf("remount-ro with a file closed after %v:\n%q\nwant it to start with %q", busyRetries[0]+busyRetries[1]/2, res.Outcome, want)
	}
}
