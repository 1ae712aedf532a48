package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

const nobody = 65534

// writeFile writes data to dir/name with mode (umask aside) and returns its
// path.
func writeFile(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadErr loads file and returns its error's text, or "".
func loadErr(t *testing.T, file string) string {
	t.Helper()
	_, err := Load(file)
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestConfigFileTrust(t *testing.T) {
	testutil.RequireRoot(t) // the checks apply to root, and chown
	dir := t.TempDir()
	file := writeFile(t, dir, "fshealth.toml", "state_dir = \"/var/lib/fshealth\"\n", 0o666)
	want := file + `: refusing a configuration file that others than root can change: "` + file + `" is writable by its group or by every user (owner root (uid 0), mode 0666)`
	if got := loadErr(t, file); !strings.HasPrefix(got, want) {
		t.Errorf("0666 file: %q\nwant %q", got, want)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := loadErr(t, file); got != "" {
		t.Errorf("0644 file: %v", got)
	}
	if err := os.Chown(file, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if got := loadErr(t, file); !strings.Contains(got, `"`+file+`" is owned by another user (owner nobody (uid 65534), mode 0644)`) {
		t.Errorf("nobody's file: %q", got)
	}
	// A directory above it that nobody owns.
	sub := filepath.Join(dir, "etc")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	file = writeFile(t, sub, "fshealth.toml", "", 0o600)
	if err := os.Chown(sub, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if got := loadErr(t, file); !strings.Contains(got, `"`+sub+`" is a directory owned by another user (owner nobody (uid 65534), mode 0755)`) {
		t.Errorf("nobody's directory: %q", got)
	}
	// Not as root: not checked.
	asRoot = func() bool { return false }
	defer func() { asRoot = func() bool { return os.Geteuid() == 0 } }()
	if got := loadErr(t, file); got != "" {
		t.Errorf("not as root: %v", got)
	}
}

func TestInlineSecretInReadableFile(t *testing.T) {
	dir := t.TempDir()
	conf := `[[smtp]]
host = "mail.example.com"
from = "a@example.com"
to = "b@example.com"
username = "u"
password = "hunter2"

[[webhook]]
url = "https://example.com/x"
headers = { Authorization = "Bearer t0ken" }

[[alertmanager]]
urls = ["https://am.example.com", "https://u:pw@am2.example.com"]
`
	file := writeFile(t, dir, "f.toml", conf, 0o644)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		file + `:6: smtp[1].password: the configuration file is readable by every user (mode 0644), and so is this secret: chmod o-r the file, or give it with password_file or password_credential`,
		file + `:10: webhook[1].headers: the configuration file is readable by every user (mode 0644), and so are these header values: chmod o-r the file, or give them with header_files or header_credentials`,
		file + `:13: alertmanager[1].urls[2]: the configuration file is readable by every user (mode 0644), and so are the user information and query values of this URL: chmod o-r the file`,
	}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings %q\nwant %q", c.Warnings, want)
	}
	for _, w := range c.Warnings {
		if strings.Contains(w, "hunter2") || strings.Contains(w, "t0ken") {
			t.Errorf("warning shows a secret: %s", w)
		}
	}
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(file); err != nil || len(c.Warnings) != 0 {
		t.Errorf("0640: %v %q", err, c.Warnings)
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	creds := t.TempDir()
	writeFile(t, dir, "smtp", "s3cret-mail\n", 0o600)
	writeFile(t, dir, "hmac", "s3cret-hmac", 0o640)
	signing := "whsec_" + base64.StdEncoding.EncodeToString([]byte("s3cret-signing-key-of-32-bytes!!"))
	writeFile(t, dir, "signing", signing+"\n", 0o600)
	writeFile(t, dir, "auth", "Bearer s3cret-token\r\n", 0o400)
	writeFile(t, creds, "am-password", "s3cret-am\n", 0o400)
	writeFile(t, creds, "am-header", "s3cret-am-header", 0o400)
	t.Setenv(CredentialsDirEnv, creds)
	conf := `[[smtp]]
host = "mail.example.com"
from = "a@example.com"
to = "b@example.com"
username = "u"
password_file = "` + dir + `/smtp"

[[webhook]]
url = "https://example.com/x"
secret_file = "` + dir + `/hmac"
signing_secret_file = "` + dir + `/signing"
headers = { X-Plain = "not secret" }
header_files = { Authorization = "` + dir + `/auth" }

[[alertmanager]]
urls = ["https://am:9093"]
username = "fshealth"
password_credential = "am-password"
header_credentials = { X-Token = "am-header" }
`
	file := writeFile(t, dir, "f.toml", conf, 0o600)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP[0].Password != "s3cret-mail" || c.Webhooks[0].Secret != "s3cret-hmac" || c.Webhooks[0].SigningSecret != signing ||
		c.Webhooks[0].Headers["Authorization"] != "Bearer s3cret-token" || c.Webhooks[0].Headers["X-Plain"] != "not secret" ||
		c.Alertmanagers[0].Password != "s3cret-am" || c.Alertmanagers[0].Headers["X-Token"] != "s3cret-am-header" {
		t.Errorf("secrets not read: %+v %+v %+v", c.SMTP[0], c.Webhooks[0], c.Alertmanagers[0])
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if dump := c.Redacted(); strings.Contains(dump, "s3cret") || strings.Contains(dump, signing[6:16]) {
		t.Errorf("Redacted shows a secret:\n%s", dump)
	}
	// Parse reads no file: the secrets stay empty, and that is no error.
	p, err := Parse(file, []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	if p.SMTP[0].Password != "" || p.Alertmanagers[0].Password != "" {
		t.Errorf("Parse read a secret")
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "readable", "s3cret", 0o644)
	writeFile(t, dir, "empty", "\n", 0o600)
	writeFile(t, dir, "ok", "s3cret", 0o600)
	writeFile(t, dir, "ctl", "s3c\x1bret", 0o600)
	creds := t.TempDir()
	smtp := func(pw string) string {
		return "[[smtp]]\nhost = \"m.example.com\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\nusername = \"u\"\n" + pw + "\n"
	}
	for _, c := range []struct {
		name, conf, creds, want string
	}{
		{"world-readable", smtp(`password_file = "` + dir + `/readable"`), "", `f.toml:6: smtp[1].password_file: "` + dir + `/readable" is readable by every user (mode 0644): chmod o-r it`},
		{"missing", smtp(`password_file = "` + dir + `/missing"`), "", `f.toml:6: smtp[1].password_file: "` + dir + `/missing": no such file or directory`},
		{"empty", smtp(`password_file = "` + dir + `/empty"`), "", `f.toml:6: smtp[1].password_file: "` + dir + `/empty" is empty`},
		{"control characters", smtp(`password_file = "` + dir + `/ctl"`), "", `f.toml:6: smtp[1].password_file: the secret contains control characters (value not shown)`},
		{"relative", smtp(`password_file = "ok"`), "", `f.toml:6: smtp[1].password_file: not an absolute path: "ok"`},
		{"two sources", smtp("password = \"x\"\npassword_file = \"" + dir + "/ok\""), "", `f.toml:7: smtp[1].password_file: give only one of password, password_file and password_credential`},
		{"no credentials directory", smtp(`password_credential = "smtp"`), "", `f.toml:6: smtp[1].password_credential: $CREDENTIALS_DIRECTORY is not set: systemd sets it for a service with LoadCredential=smtp:/path/to/file (or SetCredentialEncrypted=)`},
		{"missing credential", smtp(`password_credential = "smtp"`), creds, `f.toml:6: smtp[1].password_credential: credential "smtp": "` + creds + `/smtp": no such file or directory`},
		{"bad credential name", smtp(`password_credential = "../smtp"`), creds, `f.toml:6: smtp[1].password_credential: not a credential name: "../smtp"`},
		{"header twice", "[[webhook]]\nurl = \"https://e.example\"\nheaders = { Authorization = \"x\" }\nheader_files = { authorization = \"" + dir + "/ok\" }\n", "",
			`f.toml:4: webhook[1].header_files.authorization: header "authorization" is given more than once`},
		{"reserved header", "[[webhook]]\nurl = \"https://e.example\"\nheader_files = { X-Fshealth-Alert-Id = \"" + dir + "/ok\" }\n", "",
			`f.toml:3: webhook[1].header_files.X-Fshealth-Alert-Id: header "X-Fshealth-Alert-Id" is set by fshealth`},
		{"secret twice", "[[webhook]]\nurl = \"https://e.example\"\nsecret = \"x\"\nsecret_credential = \"y\"\n", creds,
			`f.toml:4: webhook[1].secret_credential: give only one of secret, secret_file and secret_credential`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(CredentialsDirEnv, c.creds)
			sub := t.TempDir()
			file := writeFile(t, sub, "f.toml", c.conf, 0o600)
			want := strings.ReplaceAll(c.want, "f.toml", file)
			if got := loadErr(t, file); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if strings.Contains(loadErr(t, file), "s3c") {
				t.Errorf("error shows the secret")
			}
		})
	}
}

func TestUntrustedHooksAndPrograms(t *testing.T) {
	testutil.RequireRoot(t) // chown
	dir := t.TempDir()
	hooks := filepath.Join(dir, "hooks")
	if err := os.Mkdir(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := writeFile(t, hooks, "10-hook", "#!/bin/sh\n", 0o755)
	prog := writeFile(t, dir, "prog", "#!/bin/sh\n", 0o755)
	conf := "[hooks]\ndir = \"" + hooks + "\"\n\n[[rule]]\nactions = [{ name = \"command\", argv = [\"" + prog + "\"] }]\n"
	file := writeFile(t, dir, "f.toml", conf, 0o600)
	if got := loadErr(t, file); got != "" {
		t.Fatalf("trusted: %v", got)
	}
	for _, p := range []string{hook, prog} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	got := loadErr(t, file)
	for _, want := range []string{
		file + `:2: hooks.dir: hook "` + hook + `": refusing to run it: "` + hook + `" is owned by another user (owner nobody (uid 65534), mode 0755)`,
		file + `:5: rule[1].actions[1].argv: refusing to run a program that others than root can change: "` + prog + `" is owned by another user (owner nobody (uid 65534), mode 0755)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if err := os.Chown(hooks, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if got := loadErr(t, file); !strings.Contains(got, file+`:2: hooks.dir: hooks directory "`+hooks+`" is a directory owned by another user (owner nobody (uid 65534), mode 0755)`) {
		t.Errorf("nobody's hooks dir: %s", got)
	}
	// --hooks-dir is checked the same way.
	c := Default()
	err := c.ApplyOverrides(Overrides{HooksDir: &hooks})
	if err == nil || !strings.Contains(err.Error(), `--hooks-dir: hooks directory "`+hooks+`" is a directory owned by another user`) {
		t.Errorf("--hooks-dir: %v", err)
	}
	// A program that does not exist is only a warning.
	file = writeFile(t, dir, "g.toml", "[[rule]]\nactions = [{ name = \"command\", argv = [\"/nonexistent/prog\"] }]\n", 0o600)
	c, err = Load(file)
	if err != nil || !slices.Equal(c.Warnings, []string{file + `:2: rule[1].actions[1].argv: program "/nonexistent/prog" does not exist (yet?): the action will fail until it does`}) {
		t.Errorf("missing program: %v %q", err, c.Warnings)
	}
}

func TestHooksUser(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f.toml", "[hooks]\nuser = \"nobody\"\ngroup = \"nogroup\"\n", 0o600)
	c, err := Load(file)
	if err != nil || c.Hooks.User != "nobody" || c.Hooks.Group != "nogroup" {
		t.Errorf("%v %+v", err, c)
	}
	for _, tt := range []struct{ conf, want string }{
		{"[hooks]\nuser = \"no-such-user-fshealth\"\n", `f.toml:2: hooks.user: no user "no-such-user-fshealth" in the user database`},
		{"[hooks]\nuser = \"nobody\"\ngroup = \"no-such-group-fshealth\"\n", `f.toml:3: hooks.group: no group "no-such-group-fshealth" in the group database`},
		{"[hooks]\ngroup = \"nogroup\"\n", `f.toml:2: hooks.group: group "nogroup" needs a user`},
	} {
		f := writeFile(t, dir, "f.toml", tt.conf, 0o600)
		_, err := Load(f)
		if err == nil || err.Error() != strings.ReplaceAll(tt.want, "f.toml", f) {
			t.Errorf("%q: %v\nwant %s", tt.conf, err, tt.want)
		}
	}
}

func TestShellScriptWarning(t *testing.T) {
	for _, tt := range []struct {
		argv string
		warn string // "" = none
	}{
		{`["/bin/sh", "-c", "umount {mountpoint}"]`, `argv[3] puts {mountpoint} into a shell script`},
		{`["/usr/bin/bash", "-ec", "logger {device} {errno}"]`, `argv[3] puts {device} into a shell script`},
		// Values fshealth makes itself cannot carry shell syntax.
		{`["/bin/sh", "-c", "e2fsck -C {progress_fd} -n /dev/x; logger {event_id} {errno}"]`, ""},
		{`["/bin/busybox", "sh", "-c", "x {uuid}"]`, `argv[4] puts {uuid} into a shell script`},
		{`["/bin/sh", "-c", "umount \"$1\"", "sh", "{mountpoint}"]`, ""},
		{`["/bin/sh", "/etc/fshealth/script", "{mountpoint}"]`, ""},
		{`["/usr/bin/logger", "-c", "{mountpoint}"]`, ""},
		{`["/bin/sh", "-c", "echo {{mountpoint}}"]`, ""},
		{`["/bin/bash", "-o", "pipefail", "-c", "x {fstype}"]`, `argv[5] puts {fstype} into a shell script`},
		{`["/bin/sh", "-c", "--", "x {fstype}"]`, `argv[4] puts {fstype} into a shell script`},
		{`["/bin/sh", "--", "/script", "{fstype}"]`, ""},
	} {
		c, err := Parse("f.toml", []byte("[[rule]]\nactions = [{ name = \"command\", argv = "+tt.argv+" }]\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.argv, err)
		}
		got := strings.Join(c.Warnings, "\n")
		if tt.warn == "" && got != "" || !strings.Contains(got, tt.warn) {
			t.Errorf("%s: warnings %q, want %q", tt.argv, got, tt.warn)
		}
		if tt.warn != "" && !strings.HasPrefix(got, "f.toml:2: rule[1].actions[1].argv: ") {
			t.Errorf("%s: warning %q does not say where", tt.argv, got)
		}
	}
}
