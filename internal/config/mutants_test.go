package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

// The tests of this file were written against the mutants gremlins left
// alive in this package (issue #20); each names the behaviour it holds.

// TestParseGolden checks exact errors and warnings of Parse for inputs the
// other tables leave out: each is the whole text of the error, or of the
// warnings ("" for none).
func TestParseGolden(t *testing.T) {
	const smtp = "[[smtp]]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
	label := strings.Repeat("a", 63) + "."
	dns253 := label + label + label + strings.Repeat("b", 61) // 253 bytes, labels of at most 63
	for _, c := range []struct{ name, in, err, warn string }{
		// Host names are at most 253 bytes.
		{"hostname of 253 bytes", "hostname = \"" + strings.Repeat("h", 253) + "\"\n", "", ""},
		{"hostname of 254 bytes", "hostname = \"" + strings.Repeat("h", 254) + "\"\n",
			"f.toml:1: hostname: not a host name: \"" + strings.Repeat("h", 254) + "\"", ""},
		{"mail host of 253 bytes", "[[smtp]]\nhost = \"" + dns253 + "\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n", "", ""},
		{"mail host of 254 bytes", "[[smtp]]\nhost = \"" + dns253 + "b\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n",
			"f.toml:2: smtp[1].host: not a host name: \"" + dns253 + "b\"", ""},
		// A table left out of decoding (an unknown one here) blanks its
		// header line only: the tables after it are still decoded and
		// checked.
		{"unknown table, then a bad value", "[histroy]\nretention = \"90d\"\n[history]\nretention = \"1h\"\n",
			"f.toml:1: unknown key \"histroy\"\nf.toml:4: history.retention: must be at least 1d: \"1h\"", ""},
		// A username is checked for control characters (it is no secret:
		// it is quoted).
		{"smtp username with a control character", smtp + "username = \"u\\u0007\"\npassword = \"pw\"\n",
			"f.toml:5: smtp[1].username: must be one line without control characters: \"u\\a\"", ""},
		{"alertmanager timeout at 100ms", "[[alertmanager]]\nurls = [\"https://am.example.com\"]\ntimeout = \"100ms\"\n", "", ""},
		{"alertmanager timeout under 100ms", "[[alertmanager]]\nurls = [\"https://am.example.com\"]\ntimeout = \"99ms\"\n",
			"f.toml:3: alertmanager[1].timeout: must be at least 100ms: \"99ms\"", ""},
		// max_backoff has a minimum of its own, before the order of the
		// two.
		{"max_backoff under 100ms", "[delivery]\ninitial_backoff = \"100ms\"\nmax_backoff = \"99999us\"\n",
			"f.toml:3: delivery.max_backoff: must be at least 100ms: \"99999us\"", ""},
		// reminder_max may equal reminder_initial and the window.
		{"reminder_max equal to reminder_initial", "[flood]\nwindow = \"1m\"\nreminder_initial = \"2h\"\nreminder_max = \"2h\"\n", "", ""},
		{"reminder_max equal to the window", "[flood]\nwindow = \"2h\"\nreminder_initial = \"1h\"\nreminder_max = \"2h\"\n", "", ""},
		// A secret may hold spaces and tabs, not other control
		// characters.
		{"password with a space and a tab", smtp + "username = \"u\"\npassword = \"pa 5\t5\"\n", "", ""},
		// A systemd credential name is at most 255 bytes.
		{"credential name of 255 bytes", smtp + "username = \"u\"\npassword_credential = \"" + strings.Repeat("c", 255) + "\"\n", "", ""},
		{"credential name of 256 bytes", smtp + "username = \"u\"\npassword_credential = \"" + strings.Repeat("c", 256) + "\"\n",
			"f.toml:6: smtp[1].password_credential: not a credential name: \"" + strings.Repeat("c", 256) + "\"", ""},
		// A header given by file: the file name is checked (Parse reads
		// no file).
		{"header file not absolute", "[[webhook]]\nurl = \"https://x.example\"\nheader_files = { X-Token = \"token.txt\" }\n",
			"f.toml:3: webhook[1].header_files.X-Token: not an absolute path: \"token.txt\"", ""},
		{"webhook URL port 1", "[[webhook]]\nurl = \"http://h.example:1/x\"\n", "", ""},
		// URLs that do not parse lose what may be user information or a
		// query, also at their very start.
		{"unparsable URL, scheme separator first", "[[webhook]]\nurl = \"://user:pa55@host\"\n",
			"f.toml:2: webhook[1].url: not an absolute http(s) URL: \"://<redacted>@host\"", ""},
		{"unparsable URL, fragment first", "[[webhook]]\nurl = \"#%zz\"\n",
			"f.toml:2: webhook[1].url: not an absolute http(s) URL: \"?<redacted>\"", ""},
		{"unparsable URL, an @ in its path", "[[webhook]]\nurl = \"/a@b/%zz\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"/a@b/%zz\"", ""},
		{"unparsable URL without a path", "[[webhook]]\nurl = \"http://u:pa55@[::1\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"http://<redacted>@[::1\"", ""},
		{"unparsable URL, empty user information", "[[webhook]]\nurl = \"http://@[::1\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"http://<redacted>@[::1\"", ""},
		// URLs that parse but are not absolute http(s) URLs are shown as
		// written, their user information cut.
		{"opaque URL with an @ first", "[[webhook]]\nurl = \"http:@host\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"http:<redacted>@host\"", ""},
		{"URL with a scheme and no host", "[[webhook]]\nurl = \"http:///x\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"http:///x\"", ""},
		{"URL with a host and no scheme", "[[webhook]]\nurl = \"//host/x\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"//host/x\"", ""},
		{"URL with user information only", "[[webhook]]\nurl = \"//u:pa55@/x\"\n", "f.toml:2: webhook[1].url: not an absolute http(s) URL: \"//<redacted>@/x\"", ""},
		// Header names take letters and digits, Z, 0 and 9 included.
		{"header name with Z, 0 and 9", "[[webhook]]\nurl = \"https://x.example\"\nheaders = { X-Z09 = \"v\" }\n", "", ""},
		// Header values may hold tabs, not other control characters.
		{"header value with a tab", "[[webhook]]\nurl = \"https://x.example\"\nheaders = { X-A = \"a\\tb\" }\n", "", ""},
		{"header value with U+0001", "[[webhook]]\nurl = \"https://x.example\"\nheaders = { X-A = \"a\\u0001b\" }\n",
			"f.toml:3: webhook[1].headers.X-A: header values cannot contain control characters (value not shown)", ""},
		// A shell whose options end with "--" and no script.
		{"shell with -c and a last --", "[[rule]]\nactions = [{ name = \"command\", argv = [\"/bin/sh\", \"-c\", \"--\"] }]\n", "", ""},
		// Problems on the same line keep the order they were found in.
		{"two problems on one line", "[[rule]]\nmatch = { device = \"\", fstype = \"\" }\n",
			"f.toml:2: rule[1].match.device[1]: empty pattern\nf.toml:2: rule[1].match.fstype[1]: empty pattern", ""},
		// starttls-opportunistic with a password: the longer warning
		// unless the server is authenticated some way (ca_file,
		// tls_fingerprint or allow_unverified_auth).
		{"opportunistic TLS, password, ca_file", smtp + "tls = \"starttls-opportunistic\"\nusername = \"u\"\npassword = \"pw\"\nca_file = \"/etc/ssl/relay.pem\"\n", "",
			"f.toml:7: smtp[1].password: may be sent unencrypted if the server does not offer STARTTLS: consider tls = \"starttls\""},
		{"opportunistic TLS, password, fingerprint", smtp + "tls = \"starttls-opportunistic\"\nusername = \"u\"\npassword = \"pw\"\ntls_fingerprint = \"" + strings.Repeat("ab", 32) + "\"\n", "",
			"f.toml:7: smtp[1].password: may be sent unencrypted if the server does not offer STARTTLS: consider tls = \"starttls\""},
		{"opportunistic TLS, password", smtp + "tls = \"starttls-opportunistic\"\nusername = \"u\"\npassword = \"pw\"\n", "",
			"f.toml:7: smtp[1].password: may be sent unencrypted if the server does not offer STARTTLS, and is not sent (the delivery fails) if its certificate cannot be verified: consider tls = \"starttls\", or ca_file or tls_fingerprint for a private relay"},
	} {
		cfg, err := Parse("f.toml", []byte(c.in))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err {
			t.Errorf("%s: error\n got %q\nwant %q", c.name, got, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if w := strings.Join(cfg.Warnings, "\n"); w != c.warn {
			t.Errorf("%s: warnings\n got %q\nwant %q", c.name, w, c.warn)
		}
	}
}

// TestReadableFileEmptyHeaders: an empty headers table in a file every
// user can read draws no warning (there is no header value to read).
func TestReadableFileEmptyHeaders(t *testing.T) {
	file := writeFile(t, t.TempDir(), "f.toml", "[[webhook]]\nurl = \"https://example.com/x\"\nheaders = {}\n", 0o644)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q, want none", c.Warnings)
	}
}

// TestUntrustedSendmail: as root, Load refuses a sendmail program that
// others than root can change.
func TestUntrustedSendmail(t *testing.T) {
	testutil.RequireRoot(t) // chown
	dir := t.TempDir()
	prog := writeFile(t, dir, "sendmail", "#!/bin/sh\n", 0o755)
	if err := os.Chown(prog, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "f.toml", "[[mail]]\nvia = \"sendmail\"\nfrom = \"a@b.c\"\nto = \"root\"\nsendmail = \""+prog+"\"\n", 0o600)
	want := file + `:5: mail[1].sendmail: refusing to run a program that others than root can change: "` + prog + `" is owned by another user (owner nobody (uid 65534), mode 0755): only root (or the user fshealth runs as) may be able to change what fshealth reads or runs`
	if got := loadErr(t, file); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestDescriptions checks the exact text of Redacted's first line and of
// the channels' String, which print no secret and say "none" for a secret
// not set.
func TestDescriptions(t *testing.T) {
	if got, _, _ := strings.Cut(Default().Redacted(), "\n"); got != "# fshealth configuration, defaults filled in, secrets redacted." {
		t.Errorf("Default().Redacted() starts %q", got)
	}
	c, err := Parse("f.toml", []byte(`
[[webhook]]
name = "w"
url = "https://hooks.example.com/x?token=t0ken"
headers = { X-B = "1", X-A = "2" }
[[mail]]
name = "m"
via = "sendmail"
from = "a@example.com"
to = "root"
[[smtp]]
name = "s"
host = "mail.example.com"
from = "a@example.com"
to = ["b@example.com"]
username = "u"
password = "pa55"
[[alertmanager]]
name = "am"
urls = ["https://am.example.com"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := strings.Cut(c.Redacted(), "\n"); got != "# fshealth configuration from f.toml, defaults filled in, secrets redacted." {
		t.Errorf("Redacted() starts %q", got)
	}
	for _, tc := range []struct{ got, want string }{
		{c.Webhooks[0].String(), `webhook "w" https://hooks.example.com/x?token=<redacted> (headers ["X-A" "X-B"], secret none, signing secret none)`},
		{c.SMTP[1].String(), `mail "m" via /usr/sbin/sendmail from "a@example.com" to ["root"]`},
		{c.SMTP[0].String(), `smtp "s" mail.example.com:587 tls=starttls from "a@example.com" to ["b@example.com"] (user "u", password <redacted>)`},
		{c.Alertmanagers[0].String(), `alertmanager "am" ["https://am.example.com"] (headers [], user "", password none)`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}

// TestSecretFileSize: a secret file of 64 KiB is read whole; one byte more
// is refused (without showing it).
func TestSecretFileSize(t *testing.T) {
	dir := t.TempDir()
	const conf = "[[smtp]]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\nusername = \"u\"\npassword_file = \"%s\"\n"
	full := writeFile(t, dir, "full", strings.Repeat("k", 64<<10), 0o600)
	c, err := Load(writeFile(t, dir, "f.toml", fmt.Sprintf(conf, full), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP[0].Password != strings.Repeat("k", 64<<10) {
		t.Errorf("a 64 KiB secret read as %d bytes", len(c.SMTP[0].Password))
	}
	over := writeFile(t, dir, "over", strings.Repeat("k", 64<<10+1), 0o600)
	file := writeFile(t, dir, "g.toml", fmt.Sprintf(conf, over), 0o600)
	want := file + `:6: smtp[1].password_file: "` + over + `" is larger than 65536 bytes: not a secret`
	if got := loadErr(t, file); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestHeaderFileValue: a header value read from a file is checked like an
// inline one, without showing it.
func TestHeaderFileValue(t *testing.T) {
	dir := t.TempDir()
	value := writeFile(t, dir, "token", "Bearer t0ken\x01", 0o600)
	file := writeFile(t, dir, "f.toml", "[[webhook]]\nurl = \"https://x.example\"\nheader_files = { Authorization = \""+value+"\" }\n", 0o600)
	want := file + ":3: webhook[1].header_files.Authorization: header values cannot contain control characters (value not shown)"
	if got := loadErr(t, file); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
