package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestMailSendmail(t *testing.T) {
	c, err := Parse("f.toml", []byte("[[mail]]\nvia = \"sendmail\"\nfrom = \"fshealth\"\nto = [\"root\", \"ops@example.org\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SMTP) != 1 {
		t.Fatalf("channels %+v", c.SMTP)
	}
	m := c.SMTP[0]
	if m.Name != "mail-1" || m.Via != ViaSendmail || m.Sendmail != DefaultSendmail || m.Host != "" || m.Port != 0 || m.TLS != "" ||
		m.From != "fshealth" || !slices.Equal(m.To, []string{"root", "ops@example.org"}) {
		t.Errorf("channel %+v", m)
	}
	if !slices.Contains(c.ChannelNames(), "mail-1") {
		t.Errorf("channel names %q lack mail-1", c.ChannelNames())
	}
	if s := c.Redacted(); !strings.Contains(s, `via = 'sendmail'`) || !strings.Contains(s, `sendmail = '/usr/sbin/sendmail'`) || strings.Contains(s, "port") {
		t.Errorf("redacted:\n%s", s)
	}
	if d, err := Parse("dump.toml", []byte(c.Redacted())); err != nil || !reflect.DeepEqual(d.SMTP, c.SMTP) {
		t.Errorf("the dump does not parse back: %v\n%+v\n%+v", err, d, c.SMTP)
	}

	c, err = Parse("f.toml", []byte("[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = \"a@b.c\"\ntls = \"starttls-opportunistic\"\n"+
		"tls_fingerprint = [\"sha256:"+strings.Repeat("aB:", 31)+"aB\", \""+strings.Repeat("0", 64)+"\"]\n"+
		"username = \"u\"\npassword = \"p\"\nallow_unverified_auth = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.SMTP[0]; m.Via != ViaSMTP || len(m.TLSFingerprints) != 2 || !m.AllowUnverifiedAuth {
		t.Errorf("channel %+v", m)
	}
}

func TestMailErrors(t *testing.T) {
	const base = "[[mail]]\nfrom = \"a@b.c\"\nto = \"a@b.c\"\n"
	for _, tc := range []struct{ name, in, want string }{
		{"unknown via", base + "via = \"pigeon\"\nhost = \"m\"", `f.toml:4: mail[1].via: must be "smtp" or "sendmail": "pigeon"`},
		{"host with sendmail", base + "via = \"sendmail\"\nhost = \"m\"",
			`f.toml:5: mail[1].host: is for via = "smtp": with via = "sendmail" the local mail transfer agent has its own configuration`},
		{"password with sendmail", base + "via = \"sendmail\"\nusername = \"u\"\npassword = \"pa55\"",
			`f.toml:5: mail[1].username: is for via = "smtp": with via = "sendmail" the local mail transfer agent has its own configuration` + "\n" +
				`f.toml:6: mail[1].password: is for via = "smtp": with via = "sendmail" the local mail transfer agent has its own configuration`},
		{"relative sendmail", base + "via = \"sendmail\"\nsendmail = \"sendmail\"", `f.toml:5: mail[1].sendmail: not an absolute path: "sendmail"`},
		{"sendmail without via", base + "host = \"m\"\nsendmail = \"/usr/sbin/sendmail\"", `f.toml:5: mail[1].sendmail: is for via = "sendmail"`},
		{"missing host", base, `f.toml:1: mail[1]: missing required key "host"`},
		{"local name over smtp", "[[mail]]\nhost = \"m\"\nfrom = \"a@b.c\"\nto = \"root\"",
			`f.toml:4: mail[1].to[1]: not an e-mail address: "root" (a bare local name is only for via = "sendmail")`},
		{"bad fingerprint", base + "host = \"m\"\ntls_fingerprint = \"AB:CD\"",
			`f.toml:5: mail[1].tls_fingerprint[1]: not a SHA-256 fingerprint (64 hex digits, colons allowed: what follows "=" in the output of ` +
				"`openssl x509 -noout -fingerprint -sha256`" + `): "AB:CD"`},
		{"fingerprint without TLS", base + "host = \"m\"\ntls = \"none\"\ntls_fingerprint = \"" + strings.Repeat("ab", 32) + "\"",
			`f.toml:6: mail[1].tls_fingerprint: means nothing with tls = "none"`},
		{"unverified auth strict", base + "host = \"m\"\nallow_unverified_auth = true",
			`f.toml:5: mail[1].allow_unverified_auth: is for tls = "starttls-opportunistic" (other modes never send credentials to an unverified server)`},
		{"relative CA file", base + "host = \"m\"\nca_file = \"ca.pem\"", `f.toml:5: mail[1].ca_file: not an absolute path: "ca.pem"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "pa55") {
				t.Errorf("error shows the password: %s", err)
			}
		})
	}
}

// TestMailFiles checks what Load (check-config) says about the sendmail
// program and the CA file, which Parse does not look at.
func TestMailFiles(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "sendmail")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(in string) error {
		path := filepath.Join(dir, "f.toml")
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		return err
	}
	const base = "[[mail]]\nfrom = \"a@b.c\"\nto = \"root\"\nvia = \"sendmail\"\n"
	for _, tc := range []struct{ name, in, want string }{
		{"missing", base + "sendmail = \"" + dir + "/nope\"", `does not exist (is a mail transfer agent such as exim4 or postfix installed?)`},
		{"not executable", base + "sendmail = \"" + noexec + "\"", `is not executable`},
		{"directory", base + "sendmail = \"" + dir + "\"", `is not a regular file`},
		{"CA file missing", "[[mail]]\nfrom = \"a@b.c\"\nto = \"a@b.c\"\nhost = \"m\"\nca_file = \"" + dir + "/nope.pem\"", `no such file or directory`},
		{"CA file not PEM", "[[mail]]\nfrom = \"a@b.c\"\nto = \"a@b.c\"\nhost = \"m\"\nca_file = \"" + notPEM + "\"", `holds no PEM certificate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := load(tc.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.toml:5: mail[1].") {
				t.Errorf("error %q, want %q at f.toml:5", err, tc.want)
			}
		})
	}
	// As root, X_OK holds for any file with an execute bit.
	if err := os.Chmod(noexec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := load(base + "sendmail = \"" + noexec + "\""); err != nil {
		t.Errorf("executable sendmail: %v", err)
	}
}

// TestExampleSendmail checks the commented-out sendmail channel of the
// example configuration.
func TestExampleSendmail(t *testing.T) {
	data, err := os.ReadFile("../../docs/fshealth.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "#[[mail]]\n")
	if !ok {
		t.Fatal("the example has no commented-out [[mail]]")
	}
	src := "[[mail]]\n"
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		src += strings.TrimPrefix(l, "#") + "\n"
	}
	c, err := Parse("example.toml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if m := c.SMTP[0]; m.Name != "local" || m.Via != ViaSendmail || m.Sendmail != DefaultSendmail || !slices.Equal(m.To, []string{"root"}) {
		t.Errorf("channel %+v", m)
	}
}
