package e2e_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

// TestUntrustedHooksRefused: a hooks directory and hook owned by nobody
// (mode 0755) are refused by check-config and by the daemon, naming the
// directory; the hook never runs.
func TestUntrustedHooksRefused(t *testing.T) {
	testutil.RequireRoot(t) // chown, and the checks apply to root
	dir := t.TempDir()
	hooks := filepath.Join(dir, "hooks")
	ran := filepath.Join(dir, "ran")
	if err := os.Mkdir(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(hooks, "10-hook")
	writeFile(t, hook, "#!/bin/sh\ntouch "+ran+"\n", 0o755)
	for _, p := range []string{hook, hooks} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, "[hooks]\ndir = "+tomlString(hooks)+"\n", 0o600)
	want := cfg + `:2: hooks.dir: hooks directory "` + hooks + `" is a directory owned by another user (owner nobody (uid 65534), mode 0755)`
	state := filepath.Join(dir, "state")
	for _, args := range [][]string{
		{"check-config", "--config", cfg},
		{"daemon", "--config", cfg, "--state-dir", state, "--metrics-listen", ""},
	} {
		_, stderr, code := run(t, args...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("fshealth %s: exit %d, stderr %q\nwant %q", args[0], code, stderr, want)
		}
	}
	// The same directory given with --hooks-dir.
	empty := filepath.Join(dir, "empty.toml")
	writeFile(t, empty, "", 0o600)
	_, stderr, code := run(t, "test-alert", "--config", empty, "--hooks-dir", hooks)
	if code == 0 || !strings.Contains(stderr, `--hooks-dir: hooks directory "`+hooks+`" is a directory owned by another user`) {
		t.Errorf("test-alert --hooks-dir: exit %d, stderr %q", code, stderr)
	}
	// A hook owned by nobody in root's directory.
	if err := os.Chown(hooks, 0, 0); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "check-config", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, `hooks.dir: hook "`+hook+`": refusing to run it: "`+hook+`" is owned by another user (owner nobody (uid 65534), mode 0755)`) {
		t.Errorf("check-config with nobody's hook: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the untrusted hook ran")
	}
}

// TestHookContained: the daemon runs a hook, for a real ext4 error, as the
// configured user in a cgroup of its own; the grandchild the hook leaves
// behind in a session of its own is killed when the hook exits, and the
// cgroup is removed.
func TestHookContained(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	// nobody must reach the hook and write its report.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hooks, out := filepath.Join(dir, "hooks"), filepath.Join(dir, "out")
	for _, d := range []string{hooks, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(hooks, "10-escape"), `#!/bin/sh
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
{ echo "pid $!"; echo "uid $(id -u)"; grep '^0::' /proc/self/cgroup; } > `+out+`/report.tmp
mv `+out+`/report.tmp `+out+`/report
`, 0o755)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+"\n[hooks]\ndir = "+tomlString(hooks)+"\nuser = \"nobody\"\n", 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: contained hook")
	report := filepath.Join(out, "report")
	eventually(t, func() string { return "the hook did not report" }, func() bool {
		_, err := os.Stat(report)
		return err == nil
	})
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	var uid, cgroup string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		switch {
		case strings.HasPrefix(l, "pid "):
			pid, _ = strconv.Atoi(strings.TrimPrefix(l, "pid "))
		case strings.HasPrefix(l, "uid "):
			uid = strings.TrimPrefix(l, "uid ")
		case strings.HasPrefix(l, "0::"):
			cgroup = strings.TrimPrefix(l, "0::")
		}
	}
	if uid != "65534" {
		t.Errorf("the hook ran as uid %q, want 65534 (nobody)", uid)
	}
	if !strings.Contains(filepath.Base(cgroup), "fshealth-hook-") {
		t.Errorf("the hook ran in cgroup %q, not one of its own", cgroup)
	}
	d.waitLog("hook ran", 1)
	eventually(t, func() string { return fmt.Sprintf("the hook's setsid grandchild %d outlived it", pid) }, func() bool {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		i := bytes.LastIndexByte(stat, ')')
		return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
	})
	if mnt := cgroup2Mount(t); mnt != "" {
		eventually(t, func() string { return "the hook's cgroup " + cgroup + " is still there" }, func() bool {
			_, err := os.Stat(filepath.Join(mnt, cgroup))
			return os.IsNotExist(err)
		})
	}
	d.stop()
}

// cgroup2Mount returns where cgroup2 is mounted, from /proc/self/mountinfo.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if ok && strings.HasPrefix(post, "cgroup2 ") {
			if f := strings.Fields(pre); len(f) >= 5 {
				return f[4]
			}
		}
	}
	t.Error("no cgroup2 mount")
	return ""
}

// TestSecretsFromCredentials: the daemon, run the way systemd runs it with
// LoadCredential= ($CREDENTIALS_DIRECTORY), sends a real error's alert with
// a header and a Standard Webhooks signature whose secrets come from
// credential files; neither secret reaches its log or check-config --show.
func TestSecretsFromCredentials(t *testing.T) {
	im := newFS(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.Mkdir(creds, 0o500); err != nil {
		t.Fatal(err)
	}
	const token = "Bearer cred-token-8f3a"
	signing := "whsec_" + base64.StdEncoding.EncodeToString([]byte("cred-signing-key-of-32-bytes!!!!"))
	writeFile(t, filepath.Join(creds, "hq-token"), token+"\n", 0o400)
	writeFile(t, filepath.Join(creds, "hq-signing"), signing+"\n", 0o400)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	wh := newReceiver(t)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+`
[[webhook]]
name = "hq"
url = `+tomlString(wh.URL()+"/alerts")+`
signing_secret_credential = "hq-signing"
header_credentials = { Authorization = "hq-token" }
`, 0o644)
	stdout, stderr, code := run(t, "check-config", "--config", cfg, "--show")
	if code != 0 || !strings.Contains(stdout, `Authorization = '<redacted>'`) {
		t.Errorf("check-config --show: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	trigger(t, im, "e2e: secrets from credentials")
	req := wh.waitAccepted(t, 1)[0]
	if got := req.Header.Get("Authorization"); got != token {
		t.Errorf("Authorization %q, want the credential's %q", got, token)
	}
	if req.Header.Get("webhook-signature") == "" {
		t.Errorf("no webhook-signature: the signing secret was not used")
	}
	d.stop()
	for what, out := range map[string]string{"check-config": stdout + stderr, "the daemon's log": d.stderr.String()} {
		if strings.Contains(out, "cred-token") || strings.Contains(out, signing[6:20]) {
			t.Errorf("%s shows a secret:\n%s", what, out)
		}
	}
	// Without $CREDENTIALS_DIRECTORY the configuration is refused, saying why.
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	_, stderr, code = run(t, "check-config", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, `webhook[1].signing_secret_credential: $CREDENTIALS_DIRECTORY is not set`) {
		t.Errorf("check-config without credentials: exit %d, stderr %q", code, stderr)
	}
}
