package debtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// guestPackages are what the guests' Debian roots hold beyond minbase:
// systemd as PID 1 and udev (for the fstab's devices), the tools the
// in-guest script uses. Not procps: the unit must not need /bin/kill.
const guestPackages = "systemd,systemd-sysv,udev,e2fsprogs,util-linux,kmod"

// guestReleases are the Debian releases booted, with the kernel matrix's
// kernel each boots (the matrix downloads and caches it).
var guestReleases = []struct {
	suite, kernel, systemd string
}{
	{"bookworm", "6.1", "252"},
	{"trixie", "6.12", "257"},
}

// TestSystemdGuest boots Debian 12 and Debian 13 guests (qemu, software
// emulation) with systemd as PID 1 and the .deb `make deb` builds
// installed as it is, and checks, from what the in-guest script
// (testdata/guest/guest-test) records: the unit starts and is READY; a
// real ext4 error (trigger_fs_error on a second disk) reaches the journal
// with its fields and `fshealth status`, with the host's mount points; the
// rule's remount-ro is visible outside the unit; the hook runs in a
// transient unit without NoNewPrivileges and the `setsid sleep` it leaves
// is killed with it, and a hook that outlives its timeout is killed; `systemctl reload` exits 0 when the configuration is
// applied and non-zero when the check or the daemon refuses it;
// `journalctl -p warning` shows the daemon's warnings and errors with their
// fields; the watchdog restarts a daemon whose history commit is stuck (the
// state file system frozen with fsfreeze) and the missed error is
// reported after the restart; `systemd-analyze security` rates the unit
// (the score is logged); no EPERM/EACCES from the sandbox in the journal.
func TestSystemdGuest(t *testing.T) {
	testutil.RequireRoot(t)
	for _, c := range [][2]string{{"qemu-system-x86_64", "qemu-system-x86"}, {"debugfs", "e2fsprogs"},
		{"mkfs.ext4", "e2fsprogs"}, {"dpkg-deb", "dpkg"}, {"debootstrap", "debootstrap"}} {
		testutil.RequireCommand(t, c[0], c[1])
	}
	deb := buildDeb(t)
	_, mirror := testutil.HostDebian(t)
	kernels := matrixKernels(t)
	for _, r := range guestReleases {
		t.Run(r.suite, func(t *testing.T) {
			// The two debootstraps (the first time) wait on the network,
			// the two guests each on one CPU: side by side.
			t.Parallel()
			vmlinuz := kernels[r.kernel]
			if vmlinuz == "" {
				t.Fatalf("the kernel matrix did not prepare kernel %s", r.kernel)
			}
			start := time.Now()
			lower := testutil.DebianRoot(t, r.suite, mirror, "systemd-guest", guestPackages, "usr/bin/systemd-analyze")
			t.Logf("Debian root: %s", time.Since(start).Round(time.Second))
			res := bootGuest(t, lower, deb, vmlinuz)
			checkGuest(t, res, r.systemd)
		})
	}
}

// matrixKernels runs the kernel matrix's kernel preparation (downloads
// cached in its cache) and returns each kernel's vmlinuz by name.
func matrixKernels(t *testing.T) map[string]string {
	t.Helper()
	var names []string
	for _, r := range guestReleases {
		names = append(names, r.kernel)
	}
	cmd := exec.Command("go", "run", "./matrix", "-kernels", strings.Join(names, ","), "-kernels-only")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("preparing the kernels with the matrix: %v\n%s", err, stderr.String())
	}
	kernels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, path, ok := strings.Cut(line, " "); ok {
			kernels[name] = path
		}
	}
	return kernels
}

// guestRootDiskID is the MBR disk id of the guest's root disk.
const guestRootDiskID = "f5e0a1b2"

// writeMBR writes an MBR partition table with disk id id (hex) and one
// Linux partition of sectors 512-byte sectors from sector start into the
// first sector of img.
func writeMBR(t *testing.T, img, id string, start, sectors uint32) {
	t.Helper()
	var mbr [512]byte
	n, err := strconv.ParseUint(id, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(mbr[440:], uint32(n))
	p := mbr[446:462]
	p[4] = 0x83 // Linux
	binary.LittleEndian.PutUint32(p[8:], start)
	binary.LittleEndian.PutUint32(p[12:], sectors)
	mbr[510], mbr[511] = 0x55, 0xaa
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(mbr[:], 0); err != nil {
		t.Fatal(err)
	}
}

// guestResult is what a guest's script recorded in /results.
type guestResult struct {
	dir     string
	console string
}

// devices reads which device the guest's root, data, scratch and state
// file systems are on.
func (g *guestResult) devices(t *testing.T) map[string]string {
	t.Helper()
	dev := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(g.file(t, "devices")), "\n") {
		if name, d, ok := strings.Cut(line, " "); ok && strings.HasPrefix(d, "/dev/") {
			dev[name] = d
		}
	}
	for _, name := range []string{"root", "data", "scratch", "state"} {
		if dev[name] == "" {
			t.Fatalf("the guest recorded no device for %s:\n%s", name, g.file(t, "devices"))
		}
	}
	return dev
}

func (g *guestResult) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		t.Errorf("the guest recorded no %s: %v", name, err)
	}
	return string(b)
}

// bootGuest installs deb and the test's files into an overlay of the
// Debian root lower, makes a disk image of it, boots it with vmlinuz and
// three small ext4 disks (/srv/data, /srv/scratch, /var/lib/fshealth), and
// returns what the guest recorded once it powered off.
func bootGuest(t *testing.T, lower, deb, vmlinuz string) *guestResult {
	t.Helper()
	root := overlayRoot(t, lower)
	mustCommand(t, "dpkg", "--root="+root, "-i", deb)
	if err := os.Remove(filepath.Join(root, "bin/kill")); err == nil {
		t.Fatal("the guest root has /bin/kill (procps): the unit must work without it")
	}
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{
		{"guest-test", "usr/local/sbin/guest-test", 0o755},
		{"guest-test.service", "etc/systemd/system/guest-test.service", 0o644},
		{"10-probe", "etc/fshealth/hooks.d/10-probe", 0o755},
		{"fshealth.toml", "etc/fshealth/fshealth.toml", 0o600},
		{"fstab", "etc/fstab", 0o644},
	} {
		b, err := os.ReadFile(filepath.Join("testdata/guest", f.src))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f.dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"srv/data", "srv/scratch"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/systemd/system/guest-test.service",
		filepath.Join(root, "etc/systemd/system/multi-user.target.wants/guest-test.service")); err != nil {
		t.Fatal(err)
	}
	// A root password is not needed; the console shows the boot.
	mustCommand(t, "umount", filepath.Join(root, "proc"))

	dir := t.TempDir()
	img := filepath.Join(dir, "root.img")
	start := time.Now()
	// The root file system in the first partition of its disk, found by
	// the partition's id: the kernel names NVMe disks in the order their
	// probes finish, which varies.
	mustCommand(t, "mkfs.ext4", "-q", "-F", "-L", "guestroot", "-E", "offset=1048576", "-d", root, img, "2047M")
	writeMBR(t, img, guestRootDiskID, 2048, 2047<<11)
	disks := []string{img}
	for _, name := range []string{"data", "scratch", "state"} {
		p := filepath.Join(dir, name+".img")
		mustCommand(t, "mkfs.ext4", "-q", "-F", "-L", name, p, "32M")
		disks = append(disks, p)
	}
	t.Logf("disk images: %s", time.Since(start).Round(time.Second))

	args := []string{"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "1024",
		"-nodefaults", "-no-user-config", "-nographic", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", vmlinuz, "-append", "root=PARTUUID=" + guestRootDiskID + "-01 rootwait rw console=ttyS0 panic=-1 systemd.show_status=0"}
	// One NVMe controller, one namespace per disk. The disks' names follow
	// the order the kernel's probes finish: the root is found by its
	// partition's id, the others by label (fstab), and the guest records
	// which is which (devices).
	args = append(args, "-device", "nvme,id=nvme0,serial=fshealth-guest")
	for i, d := range disks {
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw", d, i),
			"-device", fmt.Sprintf("nvme-ns,drive=d%d,bus=nvme0,nsid=%d", i, i+1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 10 * time.Second
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start = time.Now()
	err := cmd.Run()
	t.Logf("guest: boot, test and power-off: %s", time.Since(start).Round(time.Second))
	res := &guestResult{dir: filepath.Join(dir, "results"), console: console.String()}
	if err != nil {
		t.Fatalf("qemu: %v (timed out: %v)\n%s", err, ctx.Err() != nil, tail(res.console, 80))
	}
	if out, err := command("debugfs", "-R", "rdump /results "+dir, img+"?offset=1048576"); err != nil {
		t.Fatalf("reading /results from the guest's disk: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(res.dir, "done")); err != nil {
		t.Fatalf("the guest's script did not finish:\n%s\nconsole:\n%s", readOr(filepath.Join(res.dir, "script.log")), tail(res.console, 80))
	}
	return res
}

// checkGuest checks what the guest recorded.
func checkGuest(t *testing.T, g *guestResult, systemdVersion string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest script log:\n%s", tail(readOr(filepath.Join(g.dir, "script.log")), 150))
			t.Logf("guest journal:\n%s", tail(readOr(filepath.Join(g.dir, "boot-journal.txt")), 200))
		}
	})
	if v := g.file(t, "systemd-version"); !strings.HasPrefix(v, "systemd "+systemdVersion+" ") {
		t.Errorf("systemd version %q, want %s", v, systemdVersion)
	}
	if s := readOr(filepath.Join(g.dir, "timeouts")); s != "" {
		t.Errorf("the guest waited in vain for: %s", strings.Fields(s))
	}
	// Started, READY=1 (active), no restart yet.
	if s := g.file(t, "show-start"); !strings.Contains(s, "ActiveState=active\n") || !strings.Contains(s, "NRestarts=0\n") {
		t.Errorf("after start:\n%s", s)
	}
	// The exposure score, as the guest's systemd rates the installed unit.
	sec := g.file(t, "security")
	if m := regexp.MustCompile(`Overall exposure level for fshealth.service: ([0-9.]+) (\S+)`).FindStringSubmatch(sec); m == nil {
		t.Errorf("systemd-analyze security:\n%s", sec)
	} else {
		t.Logf("systemd %s: systemd-analyze security fshealth.service: %s %s", systemdVersion, m[1], m[2])
		if score, _ := strconv.ParseFloat(m[1], 64); score >= 4.5 {
			t.Errorf("exposure %s, want under 4.5", m[1])
		}
	}

	// The ext4 error: remount-ro visible outside the unit, the hook in a
	// unit of its own without NoNewPrivileges, its leftover killed.
	if s := g.file(t, "data-options"); !strings.HasPrefix(s, "ro") {
		t.Errorf("/srv/data after the remount-ro rule: %q, want ro", s)
	}
	if s := g.file(t, "hook-nnp"); !regexp.MustCompile(`^NoNewPrivs:\s+0\n$`).MatchString(s) {
		t.Errorf("the hook's NoNewPrivs: %q, want 0 (not the daemon's sandbox)", s)
	}
	if s := g.file(t, "hook-cgroup"); !regexp.MustCompile(`^0::/system\.slice/fshealth-hook-[0-9a-f]{16}\.service\n$`).MatchString(s) {
		t.Errorf("the hook's cgroup: %q, want a transient fshealth-hook-*.service", s)
	}
	if s := g.file(t, "hook-stdin"); !strings.Contains(s, `"device":"`+g.devices(t)["data"]+`"`) {
		t.Errorf("the hook's stdin: %q", s)
	}
	if s := g.file(t, "hook-leftover"); s != "gone\n" {
		t.Errorf("the hook's setsid sleep: %q, want gone", s)
	}
	if s := g.file(t, "hook-units"); strings.TrimSpace(s) != "" {
		t.Errorf("hook units left behind:\n%s", s)
	}

	// Reloads tell the truth.
	for name, want := range map[string]string{"reload-good": "0", "reload-restored": "0"} {
		if s := strings.TrimSpace(g.file(t, name)); s != want {
			t.Errorf("%s: systemctl reload exited %s, want %s", name, s, want)
		}
	}
	for _, name := range []string{"reload-bad", "reload-refused"} {
		if s := strings.TrimSpace(g.file(t, name)); s == "0" || s == "" {
			t.Errorf("%s: systemctl reload exited %q, want non-zero", name, s)
		}
	}
	if s := g.file(t, "show-reloaded"); !strings.Contains(s, "ActiveState=active\n") || !strings.Contains(s, "NRestarts=0\n") {
		t.Errorf("after the reloads:\n%s", s)
	}

	// The watchdog.
	if s := g.file(t, "show-stuck"); !strings.Contains(s, "NOT feeding the watchdog") {
		t.Errorf("while the commit is stuck:\n%s", s)
	}
	if s := g.file(t, "show-restarted"); !strings.Contains(s, "ActiveState=active\n") || strings.Contains(s, "NRestarts=0\n") {
		t.Errorf("after the watchdog fired:\n%s", s)
	}

	// A hook that outlives its timeout is killed with its unit.
	if s := g.file(t, "hook-timeout-leftover"); s != "gone\n" {
		t.Errorf("the hook past its timeout: %q, want gone", s)
	}

	journal := journalEntries(t, g.file(t, "journal.json"))
	dev := g.devices(t)
	checkJournal(t, journal, dev)
	timedOut := false
	for _, e := range journal {
		if strings.HasPrefix(e["MESSAGE"], "hook failed ") && e["PRIORITY"] == "4" &&
			strings.HasPrefix(e["FSHEALTH_ERROR"], "timed out after 20s; it was killed with everything it started") {
			timedOut = true
		}
	}
	if !timedOut {
		t.Error("no warning in the journal that the hook timed out and was killed")
	}
	warnings := journalEntries(t, g.file(t, "journal-warning.json"))
	found := false
	for _, e := range warnings {
		if p, _ := strconv.Atoi(e["PRIORITY"]); p > 4 {
			t.Errorf("journalctl -p warning shows priority %d: %q", p, e["MESSAGE"])
		}
		if e["SYSLOG_IDENTIFIER"] == "fshealth" && strings.HasPrefix(e["MESSAGE"], "configuration NOT reloaded") &&
			e["PRIORITY"] == "3" && strings.Contains(e["FSHEALTH_ERR"], "watch.paths changed") {
			found = true
		}
	}
	if !found {
		t.Errorf("journalctl -p warning does not show the refused reload at priority 3 with FSHEALTH_ERR (%d entries)", len(warnings))
	}

	// status: both errors, with the host's mount points.
	checkStatus(t, g.file(t, "status.json"), dev)
}

// checkJournal checks the daemon's journal: the error event with its
// fields, the host's mount points, the outcome of the action once, and no
// EPERM or EACCES.
func checkJournal(t *testing.T, entries []map[string]string, dev map[string]string) {
	t.Helper()
	var event map[string]string
	actions := 0
	denied := regexp.MustCompile(`(?i)operation not permitted|permission denied|EPERM|EACCES`)
	for _, e := range entries {
		msg := e["MESSAGE"]
		if e["MESSAGE_ID"] == "8d9a4e9cc3304a7c8d6942249e608e0f" && e["FSHEALTH_DEVICE"] == dev["data"] && event == nil {
			event = e
		}
		if strings.HasPrefix(msg, "recovery action ") && e["FSHEALTH_ACTION"] == "remount-ro" {
			actions++
		}
		// The one refusal the daemon is built for: a seccomp filter
		// (the unit's @system-service, with a libseccomp that does not
		// know them) refusing listmount(2)/statmount(2), which it then
		// follows mounts without (docs/systemd.md).
		fallback := strings.HasPrefix(msg, "following mounts ") && strings.Contains(msg, "mountinfo change notifications")
		if denied.MatchString(msg) && !fallback {
			t.Errorf("the journal has a refusal: %q", msg)
		}
		if e["FSHEALTH_MOUNTPOINT"] != "" && e["FSHEALTH_DEVICE"] == dev["root"] && e["FSHEALTH_MOUNTPOINT"] != "/" {
			t.Errorf("the root file system's mount point in the journal: %q", e["FSHEALTH_MOUNTPOINT"])
		}
	}
	if event == nil {
		t.Fatalf("no error event for %s (/srv/data) in the journal", dev["data"])
	}
	for k, want := range map[string]string{"PRIORITY": "3", "FSHEALTH_ERROR": "EUCLEAN", "FSHEALTH_FSTYPE": "ext4",
		"FSHEALTH_MOUNTPOINT": "/srv/data", "FSHEALTH_SOURCE": "fanotify", "SYSLOG_IDENTIFIER": "fshealth"} {
		if event[k] != want {
			t.Errorf("the error event's %s = %q, want %q", k, event[k], want)
		}
	}
	if actions != 1 {
		t.Errorf("the remount-ro outcome is logged %d times, want once", actions)
	}
}

// checkStatus checks `fshealth status --json` after both errors.
func checkStatus(t *testing.T, s string, dev map[string]string) {
	t.Helper()
	var st struct {
		Filesystems []struct {
			Device      string   `json:"device"`
			Mountpoints []string `json:"mountpoints"`
			Errors      uint64   `json:"errors"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("fshealth status --json: %v\n%s", err, s)
	}
	seen := map[string]bool{}
	for _, f := range st.Filesystems {
		seen[f.Device] = true
		want := map[string]string{dev["root"]: "/", dev["data"]: "/srv/data", dev["scratch"]: "/srv/scratch", dev["state"]: "/var/lib/fshealth"}[f.Device]
		if want != "" && (len(f.Mountpoints) != 1 || f.Mountpoints[0] != want) {
			t.Errorf("status: %s mounted at %q, want only %s (the host's view)", f.Device, f.Mountpoints, want)
		}
		if (f.Device == dev["data"] || f.Device == dev["scratch"]) && f.Errors == 0 {
			t.Errorf("status: %s has no errors", f.Device)
		}
	}
	for _, d := range []string{dev["root"], dev["data"], dev["scratch"]} {
		if !seen[d] {
			t.Errorf("status does not list %s:\n%s", d, s)
		}
	}
}

// journalEntries parses `journalctl -o json` output (one object per line;
// a field with several values is an array, binary ones arrays of bytes:
// the first string value is kept).
func journalEntries(t *testing.T, s string) []map[string]string {
	t.Helper()
	var out []map[string]string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("journal entry %q: %v", sc.Text(), err)
		}
		e := map[string]string{}
		for k, v := range raw {
			var str string
			var strs []string
			switch {
			case json.Unmarshal(v, &str) == nil:
				e[k] = str
			case json.Unmarshal(v, &strs) == nil && len(strs) > 0:
				e[k] = strs[0]
			}
		}
		out = append(out, e)
	}
	return out
}

// readOr returns a file's contents, or "" if it cannot be read.
func readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
