package e2e_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// shippedUnit returns dist/fshealth.service.
func shippedUnit(t *testing.T) []byte {
	t.Helper()
	unit, err := os.ReadFile("../../dist/fshealth.service")
	if err != nil {
		t.Fatal(err)
	}
	return unit
}

// installUnit writes the shipped unit, with /usr/local/bin/fshealth
// replaced by the binary under test, as dir/fshealth.service.
func installUnit(t *testing.T, dir string) string {
	t.Helper()
	bin, err := filepath.Abs(binary)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fshealth.service")
	writeFile(t, path, strings.ReplaceAll(string(shippedUnit(t)), "/usr/local/bin/fshealth", bin), 0o644)
	return path
}

// systemdAnalyze runs systemd-analyze with args and returns its output.
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	testutil.RequireCommand(t, "systemd-analyze", "systemd")
	tool, err := loopfs.FindTool("systemd-analyze")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	return string(out), err
}

// exposureRe finds the overall score in `systemd-analyze security` output.
var exposureRe = regexp.MustCompile(`Overall exposure level for fshealth\.service: ([0-9]+\.[0-9]+)`)

// exposure returns the overall exposure score systemd-analyze gives the
// unit at path (offline: the unit file as it is, not a loaded unit).
func exposure(t *testing.T, path string) (float64, string) {
	t.Helper()
	out, err := systemdAnalyze(t, "security", "--offline=true", "--no-pager", path)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no overall exposure level:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return score, out
}

// TestSystemdUnitSecurity: systemd-analyze security rates the shipped unit
// better (lower) than the 4.5 it had before its system call and IP
// allow-lists, and the rows those settings are rated by say they are set.
func TestSystemdUnitSecurity(t *testing.T) {
	score, out := exposure(t, installUnit(t, t.TempDir()))
	t.Logf("systemd-analyze security --offline=true: overall exposure %.1f", score)
	if score >= 4.5 {
		t.Errorf("exposure %.1f, want better than 4.5:\n%s", score, out)
	}
	for _, row := range []string{
		"SystemCallFilter=~@clock ", "SystemCallFilter=~@debug ", "SystemCallFilter=~@module ", "SystemCallFilter=~@raw-io ",
		"SystemCallFilter=~@reboot ", "SystemCallFilter=~@swap ", "SystemCallFilter=~@obsolete ", "SystemCallFilter=~@cpu-emulation ",
		"PrivateMounts= ", "NoNewPrivileges= ", "CapabilityBoundingSet=~CAP_SYS_PTRACE ", "RestrictAddressFamilies=~AF_NETLINK ",
	} {
		if !regexp.MustCompile(`(?m)^✓ ` + regexp.QuoteMeta(row)).MatchString(out) {
			t.Errorf("systemd-analyze security does not pass %s:\n%s", row, out)
		}
	}
	if !strings.Contains(out, "Service defines IP address allow list with only localhost entries") {
		t.Errorf("the unit does not restrict IP traffic to localhost:\n%s", out)
	}
}

// TestIPAllowDropIn: `fshealth ip-allow` writes a drop-in allowing every
// destination of the configuration (address literals as they are, names
// resolved, the DNS servers when names are used, --allow additions), which
// systemd-analyze verify accepts with the unit; a bad --allow and a name
// that does not resolve are errors naming them.
func TestIPAllowDropIn(t *testing.T) {
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	writeFile(t, resolv, "# test\nnameserver 192.0.2.53\nnameserver 127.0.0.53\nsearch example\n", 0o644)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, `
[metrics]
listen = "0.0.0.0:9718"

[[webhook]]
name = "hq"
url = "https://192.0.2.10:8443/alerts"

[[smtp]]
name = "mail"
host = "localhost"
from = "fshealth@example.com"
to = ["ops@example.com"]

[[alertmanager]]
name = "am"
urls = ["http://[2001:db8::7]:9093", "http://198.51.100.7:9093"]
`, 0o600)
	out := mustRun(t, "ip-allow", "--config", cfg, "--resolv-conf", resolv, "--allow", "203.0.113.0/24")
	var allowed []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "IPAddressAllow="); ok {
			allowed = append(allowed, strings.Fields(v)...)
		}
	}
	for _, want := range []string{"192.0.2.10", "2001:db8::7", "198.51.100.7", "127.0.0.1", "192.0.2.53", "203.0.113.0/24"} {
		if !strings.Contains(" "+strings.Join(allowed, " ")+" ", " "+want+" ") {
			t.Errorf("the drop-in does not allow %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "127.0.0.53") {
		t.Errorf("the drop-in lists the loopback DNS server (localhost is allowed anyway):\n%s", out)
	}
	if !strings.HasPrefix(out, "# ") || !strings.Contains(out, "\n[Service]\n") {
		t.Errorf("not a drop-in:\n%s", out)
	}

	unitDir := t.TempDir()
	path := installUnit(t, unitDir)
	if err := os.Mkdir(filepath.Join(unitDir, "fshealth.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(unitDir, "fshealth.service.d", "ip-allow.conf"), out, 0o644)
	if vout, err := systemdAnalyze(t, "verify", path); err != nil || strings.Contains(vout, "fshealth") {
		t.Errorf("systemd-analyze verify with the drop-in: %v\n%s", err, vout)
	}
	if _, sout := exposure(t, path); !strings.Contains(sout, "IP address allow list with non-localhost entries") {
		t.Errorf("systemd-analyze security does not see the drop-in's addresses:\n%s", sout)
	}

	if _, stderr, code := run(t, "ip-allow", "--config", cfg, "--allow", "example.com"); code != 1 || !strings.Contains(stderr, `--allow "example.com": not an IP address or prefix`) {
		t.Errorf("a bad --allow: exit %d, stderr %q", code, stderr)
	}
	writeFile(t, cfg, "[[webhook]]\nname = \"nowhere\"\nurl = \"https://nowhere.invalid/x\"\n", 0o600)
	if _, stderr, code := run(t, "ip-allow", "--config", cfg); code != 1 || !strings.Contains(stderr, `webhook "nowhere": resolving "nowhere.invalid"`) {
		t.Errorf("a name that does not resolve: exit %d, stderr %q", code, stderr)
	}
}

// TestReloadCommand: `fshealth reload` (the unit's ExecReload=) fails,
// without signalling the daemon, when the configuration does not pass the
// check; otherwise it signals the daemon, found by --pid or by its state
// directory, and exits with the daemon's verdict: 0 when it applied the
// configuration, 1 with the daemon's reason when the daemon refused it (a
// change that needs a restart). The daemon tells its service manager
// RELOADING=1 with MONOTONIC_USEC=, then READY=1, either way.
func TestReloadCommand(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	im := newFS(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	good := baseConfig(im.Mountpoint)
	writeFile(t, cfg, good, 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	pid := strconv.Itoa(d.pid())

	writeFile(t, cfg, good+"\n[[webhook]]\nname = \"bad\"\nurl = \"ftp://example.com/\"\n", 0o600)
	_, stderr, code := run(t, "reload", "--config", cfg, "--pid", pid)
	if code != 1 || !strings.Contains(stderr, "configuration refused") || !strings.Contains(stderr, "webhook[1].url") {
		t.Errorf("reload with a bad configuration: exit %d, stderr %q; want 1 naming the bad key", code, stderr)
	}
	// The refused configuration never reached the daemon.
	if n := strings.Count(d.stderr.String(), "NOT reloaded"); n != 0 {
		t.Errorf("the daemon refused %d configurations: the bad one was sent to it:\n%s", n, d.stderr.String())
	}

	writeFile(t, cfg, good+"\n[[webhook]]\nname = \"new\"\nurl = \"http://127.0.0.1:9/\"\n", 0o600)
	out := mustRun(t, "reload", "--config", cfg, "--pid", pid)
	if !strings.Contains(out, "configuration reloaded by the daemon (pid "+pid+")") {
		t.Errorf("reload said %q", out)
	}
	if n := strings.Count(d.stderr.String(), "configuration reloaded"); n != 1 {
		t.Errorf("after reload exited 0 the daemon logged %d reloads, want 1:\n%s", n, d.stderr.String())
	}
	waitReloadNotes(t, d)
	mustRun(t, "reload", "--config", cfg, "--state-dir", state)
	waitReloadNotes(t, d)

	// Accepted by the check, refused by the daemon: the watched paths
	// change only with a restart.
	writeFile(t, cfg, strings.Replace(good, "paths = [", "paths = [\"/\", ", 1), 0o600)
	_, stderr, code = run(t, "reload", "--config", cfg, "--pid", pid)
	if code != 1 || !strings.Contains(stderr, "the daemon refused the configuration") || !strings.Contains(stderr, "watch.paths changed: restart the daemon") {
		t.Errorf("reload of a configuration the daemon refuses: exit %d, stderr %q; want 1 with the daemon's reason", code, stderr)
	}
	if n := strings.Count(d.stderr.String(), "configuration NOT reloaded"); n != 1 {
		t.Errorf("the daemon logged %d refusals, want 1:\n%s", n, d.stderr.String())
	}
	waitReloadNotes(t, d)

	d.stop()
	if _, err := os.Stat(filepath.Join(os.Getenv("RUNTIME_DIRECTORY"), "reload-"+pid+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the daemon left its reload verdict behind: %v", err)
	}
	if _, stderr, code := run(t, "reload", "--config", cfg, "--state-dir", state); code != 1 || !strings.Contains(stderr, "no fshealth daemon is running") {
		t.Errorf("reload with no daemon: exit %d, stderr %q", code, stderr)
	}
}

// waitReloadNotes waits for the notifications of one reload on the
// daemon's notify socket: RELOADING=1 with MONOTONIC_USEC=, then READY=1.
func waitReloadNotes(t *testing.T, d *daemon) {
	t.Helper()
	var got []string
	timeout := time.After(wait)
	for {
		select {
		case n := <-d.notes:
			if strings.HasPrefix(n, "WATCHDOG=1") {
				continue
			}
			got = append(got, n)
			switch {
			case len(got) == 1 && !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`).MatchString(n):
				t.Fatalf("first notification of a reload: %q, want RELOADING=1 and MONOTONIC_USEC=", n)
			case len(got) == 2 && n != "READY=1":
				t.Fatalf("second notification of a reload: %q, want READY=1", n)
			case len(got) == 2:
				return
			}
		case <-timeout:
			t.Fatalf("notifications of a reload: %q; want RELOADING=1 then READY=1", got)
		}
	}
}

// syscallGroups expands systemd's system call groups, as the installed
// systemd-analyze knows them, into sets of names.
func syscallGroups(t *testing.T) map[string][]string {
	t.Helper()
	out, err := systemdAnalyze(t, "syscall-filter", "--no-pager")
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v\n%s", err, out)
	}
	groups := map[string][]string{}
	group := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			group = strings.Fields(line)[0]
		case strings.HasPrefix(line, "    ") && group != "":
			if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				groups[group] = append(groups[group], f[0])
			}
		}
	}
	if len(groups["@system-service"]) == 0 || len(groups["@known"]) == 0 {
		t.Fatalf("systemd-analyze syscall-filter lists no @system-service or @known:\n%s", out)
	}
	return groups
}

// unitSyscallFilter returns the system calls the shipped unit's
// SystemCallFilter= lines allow (all of them allow-lists).
func unitSyscallFilter(t *testing.T, groups map[string][]string) map[string]bool {
	t.Helper()
	allowed := map[string]bool{}
	var expand func(string)
	expand = func(name string) {
		if !strings.HasPrefix(name, "@") {
			allowed[name] = true
			return
		}
		members, ok := groups[name]
		if !ok {
			t.Fatalf("the unit names the system call group %s, which systemd-analyze does not know", name)
		}
		for _, m := range members {
			expand(m)
		}
	}
	n := 0
	for _, line := range strings.Split(string(shippedUnit(t)), "\n") {
		v, ok := strings.CutPrefix(line, "SystemCallFilter=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "~") {
			t.Fatalf("the unit has a deny-list SystemCallFilter=%s, which this test does not handle", v)
		}
		n++
		for _, name := range strings.Fields(v) {
			expand(name)
		}
	}
	if n == 0 {
		t.Fatal("the unit has no SystemCallFilter=")
	}
	return allowed
}

// refusedOK are system calls the daemon makes that systemd versions which
// do not know them refuse (with SystemCallErrorNumber=EPERM, or ENOSYS),
// and why the daemon does not need them.
var refusedOK = map[string]string{
	"statmount": "to follow mounts by the id mount events carry; refused, the daemon follows mountinfo change notifications",
	"listmount": "to follow mounts by the id mount events carry; refused, the daemon follows mountinfo change notifications",
}

// straceNames maps the names strace gives system calls it does not know
// (x86-64 numbers) to theirs.
var straceNames = map[string]string{"syscall_0x1c9": "statmount", "syscall_0x1ca": "listmount"}

// straceSummary parses `strace -c` output into system call names.
func straceSummary(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	row := regexp.MustCompile(`^\s*[0-9.]+\s+[0-9.]+\s+[0-9]+\s+[0-9]+\s+(?:[0-9]+\s+)?([a-z0-9_]+)$`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil && m[1] != "total" {
			name := m[1]
			if real, ok := straceNames[name]; ok {
				name = real
			}
			names = append(names, name)
		}
	}
	if len(names) < 20 {
		t.Fatalf("strace -c summary has %d system calls:\n%s", len(names), b)
	}
	return names
}

// TestSyscallFilterCoversDaemon: every system call a real run of the daemon
// makes — start under a watchdog, a real ext4 error read from fanotify and
// the kernel log, its webhook delivery and hook, the remount-ro and
// fsck-next-boot actions (tune2fs), a reload through `fshealth reload`,
// SIGTERM — and `fshealth reload` itself, all followed with strace -f, is
// allowed by the unit's SystemCallFilter= as systemd expands it.
func TestSyscallFilterCoversDaemon(t *testing.T) {
	testutil.RequireCommand(t, "strace", "strace")
	strace, err := loopfs.FindTool("strace")
	if err != nil {
		t.Fatal(err)
	}
	allowed := unitSyscallFilter(t, syscallGroups(t))
	known := map[string]bool{}
	for _, n := range syscallGroups(t)["@known"] {
		known[n] = true
	}

	im := newFS(t)
	// A directory entry pointing at inode 1: looking it up reports
	// EUCLEAN against the directory, whose path the daemon looks up.
	bad := filepath.Join(im.Mountpoint, "dir")
	corruptDir(t, im, bad)
	dir := t.TempDir()
	wh := newReceiver(t)
	smtpd := newSMTPServer(t)
	hooks := filepath.Join(dir, "hooks")
	if err := os.Mkdir(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hooks, 0o755)
	hookOut := filepath.Join(dir, "hook.json")
	writeFile(t, filepath.Join(hooks, "save"), "#!/bin/sh\ncat > '"+hookOut+".tmp' && mv '"+hookOut+".tmp' '"+hookOut+"'\n", 0o755)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[hooks]
dir = %s

[[webhook]]
name = "hq"
url = %s

[[smtp]]
name = "mail"
host = "127.0.0.1"
port = %d
from = "fshealth@example.com"
to = ["ops@example.com"]
tls = "none"

[[rule]]
name = "protect"
actions = [ { name = "fsck-next-boot" }, { name = "remount-ro" } ]
`, tomlString(hooks), tomlString(wh.URL()), smtpd.port()), 0o600)
	state := filepath.Join(dir, "state")
	daemonTrace := filepath.Join(dir, "daemon.strace")
	metrics := freeAddr(t)
	d := launchDaemon(t, []string{strace, "-f", "-qq", "-c", "-o", daemonTrace, "--", binary, "daemon", "--config", cfg,
		"--state-dir", state, "--metrics-listen", metrics}, state, time.Second)

	// A mount while it runs: the daemon follows it (fanotify mount events
	// and statmount(2), where the kernel has them).
	tmp := filepath.Join(dir, "tmpfs")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("fshealth-test", tmp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(tmp, unix.MNT_DETACH) })
	if _, err := os.Lstat(filepath.Join(bad, "bad_link")); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link: %v, want EUCLEAN", err)
	}
	waitErrors(t, state, 1)
	// The path is looked up on the device (debugfs -c, traced too) and
	// added to the history.
	eventually(t, func() string { return "the history has no path " + bad }, func() bool {
		evs := events(t, state)
		return len(evs) > 0 && evs[0].Path == bad
	})
	wh.waitAccepted(t, 1)
	eventually(t, func() string { return "no mail arrived" }, func() bool { return len(smtpd.messages()) > 0 })
	if err := unix.Unmount(tmp, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string { return "the hook did not run" }, func() bool {
		_, err := os.Stat(hookOut)
		return err == nil
	})
	eventually(t, func() string { return im.Mountpoint + " was not remounted read-only" }, func() bool {
		var st unix.Statfs_t
		return unix.Statfs(im.Mountpoint, &st) == nil && st.Flags&unix.ST_RDONLY != 0
	})
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The watchdog keeps being fed: its probes ran.
	for msg := d.nextNote(); msg != "WATCHDOG=1"; msg = d.nextNote() {
	}
	reloadTrace := filepath.Join(dir, "reload.strace")
	cmd := exec.Command(strace, "-f", "-qq", "-c", "-o", reloadTrace, "--", binary, "reload", "--config", cfg, "--state-dir", state)
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fshealth reload: %v\n%s", err, out)
	}
	d.waitLog("configuration reloaded", 1)
	d.waitLog("action=fsck-next-boot ok=true", 1)
	d.waitLog("action=remount-ro ok=true", 1)
	// SIGTERM to the daemon itself: strace exits with it.
	if err := syscall.Kill(d.daemonPID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.waitExit(); err != nil {
		t.Fatalf("the daemon under strace exited with %v:\n%s", err, d.stderr.String())
	}

	for _, trace := range []string{daemonTrace, reloadTrace} {
		names := straceSummary(t, trace)
		t.Logf("%s: %d system calls: %s", filepath.Base(trace), len(names), strings.Join(names, " "))
		for _, name := range names {
			switch {
			case allowed[name]:
			case !known[name] && refusedOK[name] != "":
				t.Logf("%s is unknown to this systemd, which refuses it; the daemon uses it %s", name, refusedOK[name])
			default:
				t.Errorf("%s: system call %s is not allowed by the unit's SystemCallFilter=", filepath.Base(trace), name)
			}
		}
	}
}

// TestDaemonLogPriorities: with stderr connected to what $JOURNAL_STREAM
// names (as systemd connects it to journald), each line of the daemon's
// own log starts with the syslog priority of its level, and so does the
// error a failed start ends with.
func TestDaemonLogPriorities(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint), 0o600) // window = "0s": a warning
	stream := func(name string) (*os.File, string) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return f, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
	}

	f, env := stream("daemon.log")
	sock, notes := notifySocket(t)
	cmd := exec.Command(binary, "daemon", "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--metrics-listen", "")
	cmd.Env = append(cleanEnv(), env, "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case <-notes:
	case <-time.After(wait):
		t.Fatal("no READY=1")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon: %v", err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{`<4>time=`, `level=WARN msg="configuration: `, `<6>time=`, `level=INFO msg=ready`} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon's log lacks %q:\n%s", want, log)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		level := regexp.MustCompile(` level=([A-Z]+) `).FindStringSubmatch(line)
		want := map[string]string{"DEBUG": "<7>", "INFO": "<6>", "WARN": "<4>", "ERROR": "<3>"}
		if level == nil || !strings.HasPrefix(line, want[level[1]]+"time=") {
			t.Errorf("line without the priority of its level: %q", line)
		}
	}

	f, env = stream("failed.log")
	cmd = exec.Command(binary, "daemon", "--config", filepath.Join(dir, "missing.toml"), "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(cleanEnv(), env)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err == nil {
		t.Fatal("the daemon started with a missing configuration file")
	}
	if b, _ := os.ReadFile(f.Name()); !strings.HasPrefix(string(b), "<3>fshealth: ") || !strings.Contains(string(b), "missing.toml") {
		t.Errorf("a failed start ends with %q, want an error-priority line naming the file", b)
	}
}
