package actions

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

func TestExpand(t *testing.T) {
	vals := map[string]string{"device": "/dev/sda1", "mountpoint": "/srv/a b", "event_id": "{device}"}
	lookup := func(n string) (string, bool) { v, ok := vals[n]; return v, ok }
	for _, c := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"{device}", "/dev/sda1", ""},
		{"--dev={device},mp={mountpoint}", "--dev=/dev/sda1,mp=/srv/a b", ""},
		{"{{device}}", "{device}", ""},
		{"{{{device}}}", "{/dev/sda1}", ""},
		{"{event_id}", "{device}", ""}, // values are never expanded again
		{"awk {print $1}", "awk {print $1}", ""},
		{"{", "{", ""},
		{"}", "}", ""},
		{"{}", "{}", ""},
		{"{nope}", "", "unknown placeholder {nope}"},
		{"x{Device}", "", "unknown placeholder {Device}"},
	} {
		got, err := expand(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errBadPlaceholder) {
				t.Errorf("expand(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s   Spec
		err string // "" = valid
	}{
		{Spec{Name: RemountRO}, ""},
		{Spec{Name: FsckNextBoot, Timeout: time.Minute}, ""},
		{Spec{Name: Scrub}, ""},
		{Spec{Name: Command, Argv: []string{"/usr/local/bin/notify-ops", "{device}", "{mountpoint}", "{uuid}", "{fstype}", "{event_id}", "{errno}"}}, ""},
		{Spec{Name: Command, Argv: []string{"true"}}, ""},    // found in $PATH
		{Spec{Name: Command, Argv: []string{"tune2fs"}}, ""}, // found in /usr/sbin
		{Spec{Name: Command, Argv: []string{"/bin/echo", "{{literal}}"}}, ""},
		{Spec{}, "action name missing"},
		{Spec{Name: "reboot"}, `unknown action "reboot"`},
		{Spec{Name: Scrub, Argv: []string{"x"}}, "argv is only for"},
		{Spec{Name: RemountRO, Timeout: -time.Second}, "negative timeout"},
		{Spec{Name: Command}, "argv is empty"},
		{Spec{Name: Command, Argv: []string{""}}, "argv is empty"},
		{Spec{Name: Command, Argv: []string{"/bin/echo", "{mount_point}"}}, "unknown placeholder {mount_point}"},
		{Spec{Name: Command, Argv: []string{"/bin/{fstype}-check"}}, "cannot contain placeholders"},
		{Spec{Name: Command, Argv: []string{"bin/tool"}}, "relative path"},
		{Spec{Name: Command, Argv: []string{"no-such-program-fshealth"}}, "not found"},
		{Spec{Name: Command, Argv: []string{"/bin/echo", "a\x00b"}}, "NUL"},
	} {
		err := Validate(c.s)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", c.s, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.s, err, c.err)
		}
	}
}

func TestFormatArgv(t *testing.T) {
	got := FormatArgv([]string{"/usr/sbin/xfs_scrub", "-n", "/srv/a b", "x\ny", "", "$(id)", "über"})
	want := `/usr/sbin/xfs_scrub -n "/srv/a b" "x\ny" "" "$(id)" über`
	if got != want {
		t.Errorf("FormatArgv = %s, want %s", got, want)
	}
	if s := oneLine("a\nb\tc"); s != `a\nb\tc` {
		t.Errorf("oneLine = %q", s)
	}
}

func TestBoundedBuffer(t *testing.T) {
	b := newBoundedBuffer(100)
	b.Write([]byte("short"))
	if b.String() != "short" {
		t.Errorf("String = %q", b.String())
	}
	// Exactly at the limit minus the note's room: everything kept.
	b = newBoundedBuffer(100)
	in := strings.Repeat("a", 20)
	b.Write([]byte(in))
	if b.String() != in {
		t.Errorf("String = %q, want %q", b.String(), in)
	}
	// Much more, in odd-sized writes: beginning and end kept, a note.
	b = newBoundedBuffer(MaxOutput)
	var all bytes.Buffer
	for i := 0; i < 5000; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, i%97+1)
		all.Write(chunk)
		b.Write(chunk)
	}
	out := b.String()
	if len(out) > MaxOutput {
		t.Errorf("output is %d bytes, more than %d", len(out), MaxOutput)
	}
	if !strings.Contains(out, "output truncated") || !strings.Contains(out, "bytes left out") {
		t.Errorf("no truncation note in output")
	}
	head, tail, _ := strings.Cut(out, "\n[...")
	_, tail, _ = strings.Cut(tail, "...]\n")
	if !strings.HasPrefix(all.String(), head) || !strings.HasSuffix(all.String(), tail) {
		t.Errorf("kept output is not the beginning and end of the input")
	}
	if len(head) < MaxOutput/3 || len(tail) < MaxOutput/3 {
		t.Errorf("head %d and tail %d bytes: too little kept", len(head), len(tail))
	}
	// Invalid UTF-8 is replaced.
	b = newBoundedBuffer(100)
	b.Write([]byte("a\xffb"))
	if b.String() != "a\uFFFDb" {
		t.Errorf("String = %q", b.String())
	}
}

func TestBtrfsErrorSummary(t *testing.T) {
	out := "scrub done for 0a59\nScrub started:    Mon\nStatus:           finished\nError summary:    no errors found\n"
	if s := btrfsErrorSummary(out); s != "no errors found" {
		t.Errorf("summary = %q", s)
	}
	out = "Status: finished\nError summary:    csum=3\n  Corrected:      2\n  Uncorrectable:  1\n  Unverified:     0\nother: x\n"
	if s := btrfsErrorSummary(out); s != "csum=3; Corrected:      2; Uncorrectable:  1; Unverified:     0" {
		t.Errorf("summary = %q", s)
	}
	if s := btrfsErrorSummary("nothing"); s != "" {
		t.Errorf("summary = %q", s)
	}
}

// fakeSys makes sysRoot a fixture directory for the test.
func fakeSys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := sysRoot
	sysRoot = dir
	t.Cleanup(func() { sysRoot = old })
	return dir
}

// addBlock adds a block device to a fake sysfs: /sys/dev/block/MAJ:MIN
// links to the device's directory, with dm/uuid and dm/name when dmUUID is
// not empty.
func addBlock(t *testing.T, sys, name, majmin, dmUUID, dmName string) {
	t.Helper()
	dir := filepath.Join(sys, "devices", "virtual", "block", name)
	if err := os.MkdirAll(filepath.Join(dir, "dm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dmUUID != "" {
		os.WriteFile(filepath.Join(dir, "dm", "uuid"), []byte(dmUUID+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "dm", "name"), []byte(dmName+"\n"), 0o644)
	} else {
		os.Remove(filepath.Join(dir, "dm"))
	}
	os.MkdirAll(filepath.Join(sys, "dev", "block"), 0o755)
	os.MkdirAll(filepath.Join(sys, "block"), 0o755)
	if err := os.Symlink("../../devices/virtual/block/"+name, filepath.Join(sys, "dev", "block", majmin)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../devices/virtual/block/"+name, filepath.Join(sys, "block", name)); err != nil {
		t.Fatal(err)
	}
}

func TestLVMDetection(t *testing.T) {
	sys := fakeSys(t)
	addBlock(t, sys, "dm-3", "253:3", "LVM-Kq3ZlK1fJ0yX6nQ2cN8pGmV4wB7tH9sDrE5uA1oI3eY6iU8aO0", "vg0-data")
	addBlock(t, sys, "dm-4", "253:4", "CRYPT-LUKS2-0123456789abcdef-luks", "luks-root")
	addBlock(t, sys, "loop0", "7:0", "", "")

	if name, err := blockName(unix.Mkdev(253, 3)); err != nil || name != "dm-3" {
		t.Fatalf("blockName(253:3) = %q, %v", name, err)
	}
	for _, c := range []struct {
		name   string
		lvm    bool
		dmName string
	}{
		{"dm-3", true, "vg0-data"},
		{"dm-4", false, ""},
		{"loop0", false, ""},
		{"sda1", false, ""}, // not in sysfs at all
	} {
		lvm, dmName, err := lvmInfo(c.name)
		if err != nil || lvm != c.lvm || dmName != c.dmName {
			t.Errorf("lvmInfo(%s) = %v, %q, %v; want %v, %q", c.name, lvm, dmName, err, c.lvm, c.dmName)
		}
	}
}

// TestScrubExt4OnLVMDryRun runs scrub on an ext4 "on LVM" in dry-run mode:
// a device node with the LVM volume's number and a fake sysfs.
func TestScrubExt4OnLVMDryRun(t *testing.T) {
	testutil.RequireRoot(t) // to create block device nodes
	sys := fakeSys(t)
	addBlock(t, sys, "dm-3", "253:3", "LVM-Kq3ZlK1fJ0yX6nQ2cN8pGmV4wB7tH9sDrE5uA1oI3eY6iU8aO0", "vg0-data")
	addBlock(t, sys, "dm-4", "253:4", "CRYPT-LUKS2-0123456789abcdef-luks", "luks-root")
	dir := t.TempDir()
	lv, crypt := filepath.Join(dir, "dm-3"), filepath.Join(dir, "dm-4")
	if err := unix.Mknod(lv, unix.S_IFBLK|0o600, int(unix.Mkdev(253, 3))); err != nil {
		t.Fatalf("creating a block device node: %v", err)
	}
	if err := unix.Mknod(crypt, unix.S_IFBLK|0o600, int(unix.Mkdev(253, 4))); err != nil {
		t.Fatal(err)
	}
	r := &Runner{DryRun: true, LookPath: func(name string) (string, error) { return "/sbin/" + name, nil }}
	res := r.Run(context.Background(), Spec{Name: Scrub}, Target{Device: lv, FSType: "ext4"})
	if !res.OK || !res.DryRun || strings.Join(res.Argv, " ") != "/sbin/e2scrub "+lv {
		t.Errorf("scrub on LVM: %+v", res)
	}
	if want := "dry run: would run: /sbin/e2scrub " + lv; res.Outcome != want {
		t.Errorf("outcome %q, want %q", res.Outcome, want)
	}
	res = r.Run(context.Background(), Spec{Name: Scrub}, Target{Device: crypt, FSType: "ext4"})
	if want := "online scrub is not available: e2scrub needs ext4 on an LVM logical volume; " + crypt + " is not"; res.OK || !res.Unsupported || res.Outcome != want {
		t.Errorf("scrub on dm-crypt: %+v, want outcome %q", res, want)
	}
}

func TestUnsupported(t *testing.T) {
	r := &Runner{}
	for _, c := range []struct {
		spec    string
		fstype  string
		outcome string
	}{
		{FsckNextBoot, "xfs", "fsck at next boot is not available for xfs (xfs_repair must be run by hand on the unmounted file system)"},
		{FsckNextBoot, "btrfs", "fsck at next boot is not available for btrfs (it has no boot-time check: use scrub while it is mounted, or btrfs check by hand on the unmounted file system)"},
		{FsckNextBoot, "vfat", "fsck at next boot is not available for vfat (only ext2, ext3 and ext4 can be marked)"},
		{Scrub, "vfat", "online scrub is not available for vfat (only xfs, btrfs and ext4 on LVM have one)"},
		{Scrub, "", "online scrub is not available: the file system type is not known"},
	} {
		for _, dry := range []bool{false, true} {
			r.DryRun = dry
			res := r.Run(context.Background(), Spec{Name: c.spec}, Target{Device: "/dev/sdz9", FSType: c.fstype, Mountpoints: []string{"/srv"}})
			if res.OK || !res.Unsupported || res.Outcome != c.outcome || res.DryRun != dry || len(res.Argv) != 0 {
				t.Errorf("%s on %q (dry run %v): %+v, want outcome %q", c.spec, c.fstype, dry, res, c.outcome)
			}
		}
	}
}

func TestRunInvalidSpec(t *testing.T) {
	res := (&Runner{}).Run(context.Background(), Spec{Name: "reboot"}, Target{})
	if res.OK || !strings.HasPrefix(res.Outcome, `failed: invalid action: unknown action "reboot"`) {
		t.Errorf("Run(reboot) = %+v", res)
	}
}

func TestRemountNotMounted(t *testing.T) {
	dir := t.TempDir()
	res := (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, Target{Device: "/dev/sdz9", FSType: "ext4", Mountpoints: []string{dir}})
	want := "failed: /dev/sdz9 is not mounted where it was: " + dir + " is not a mount point any more"
	if res.OK || res.Outcome != want {
		t.Errorf("outcome %q, want %q", res.Outcome, want)
	}
	res = (&Runner{}).Run(context.Background(), Spec{Name: RemountRO}, Target{Device: "/dev/sdz9", FSType: "ext4"})
	if want := "failed: no mount point is known for /dev/sdz9"; res.OK || res.Outcome != want {
		t.Errorf("outcome %q, want %q", res.Outcome, want)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	r := &Runner{DryRun: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	r.Run(context.Background(), Spec{Name: Command, Argv: []string{"/bin/echo", "{device}"}}, Target{Device: "/dev/sda1", EventID: "ev1"})
	for _, want := range []string{"recovery action", "action=command", "ok=true", "dry_run=true", "event_id=ev1", `argv="[/bin/echo /dev/sda1]"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

func TestFdWritable(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "w"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := os.Open(filepath.Join(dir, "w"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	info := func(f *os.File) string { return filepath.Join("/proc/self/fdinfo", strconv.Itoa(int(f.Fd()))) }
	if !fdWritable(info(f)) {
		t.Errorf("write-only descriptor not seen as writable")
	}
	if fdWritable(info(g)) {
		t.Errorf("read-only descriptor seen as writable")
	}
}

func TestRunCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	res := (&Runner{}).Run(ctx, Spec{Name: Command, Argv: []string{"touch", filepath.Join(dir, "x")}}, Target{})
	if res.OK || res.Outcome != "failed: not started: context canceled" {
		t.Errorf("Run with a canceled context: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Errorf("the command ran")
	}
}
