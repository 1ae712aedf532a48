package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// EximOptions says how StartExim sets exim up.
type EximOptions struct {
	// Daemon runs exim as an SMTP server on 127.0.0.1 (Exim.Port);
	// without it, only the sendmail interface (Exim.Sendmail) is there.
	Daemon bool
	// CertPEM and KeyPEM, when set, are the server's certificate and key:
	// STARTTLS is offered with them.
	CertPEM, KeyPEM []byte
	// Aliases are /etc/aliases-style redirections, e.g. root → admin.
	Aliases map[string]string
}

// Exim is a test-local exim4 (Debian's exim4-daemon-light) with its own
// configuration, spool and mailbox in a temporary directory: every message
// it accepts, for any address, is delivered to one mbox file. It is stopped
// when the test ends, with every process it started.
type Exim struct {
	// Dir holds everything: exim.conf, spool/, mail/mbox.
	Dir string
	// Config is the configuration file.
	Config string
	// Port is the SMTP port on 127.0.0.1 (with Options.Daemon).
	Port int
	// Sendmail is a program that runs exim's sendmail interface with this
	// configuration, taking sendmail's arguments (delivery in the
	// foreground: -odi).
	Sendmail string
	// Mailbox is the mbox file messages are delivered to.
	Mailbox string

	cmd  *exec.Cmd
	done chan error
}

const eximConfig = `# fshealth test instance
primary_hostname = fshealth-test.invalid
qualify_domain = fshealth-test.invalid
spool_directory = {{.Dir}}/spool
log_file_path = {{.Dir}}/spool/%slog
pid_file_path = {{.Dir}}/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
never_users =
keep_environment =
host_lookup =
rfc1413_hosts =
local_interfaces = 127.0.0.1
daemon_smtp_ports = {{.Port}}
acl_smtp_rcpt = acl_check_rcpt
acl_not_smtp = acl_check_local
{{if .TLS}}tls_advertise_hosts = *
tls_certificate = {{.Dir}}/cert.pem
tls_privatekey = {{.Dir}}/key.pem
{{else}}tls_advertise_hosts =
{{end}}
begin acl

acl_check_rcpt:
  accept

# Local submissions (the sendmail interface) fail while these files exist.
acl_check_local:
  defer message = test: temporary failure
        condition = ${if exists{{"{"}}{{.Dir}}/tempfail}}
  deny  message = test: refused
        condition = ${if exists{{"{"}}{{.Dir}}/permfail}}
  accept

begin routers

aliases:
  driver = redirect
  data = ${lookup{$local_part}lsearch{{"{"}}{{.Dir}}/aliases}}

all:
  driver = accept
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = {{.Dir}}/mail/mbox
  user = Debian-exim
  group = Debian-exim
  mode = 0600
  check_string = "From "
  escape_string = ">From "
  envelope_to_add
  return_path_add
`

// StartExim sets up (and with Options.Daemon, starts) a test-local exim.
// It skips the test when not root or exim4 is missing (under CI=true it
// fails instead).
func StartExim(t testing.TB, o EximOptions) *Exim {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "exim4", "exim4-daemon-light")
	bin, err := loopfs.FindTool("exim4")
	if err != nil {
		t.Fatal(err)
	}
	eu, err := user.Lookup("Debian-exim")
	if err != nil {
		t.Fatalf("exim's user: %v", err)
	}
	uid, _ := strconv.Atoi(eu.Uid)
	gid, _ := strconv.Atoi(eu.Gid)

	// Not t.TempDir, whose parent only root can enter: exim works as its
	// own user. Removed after exim has stopped (cleanups run last first).
	dir, err := os.MkdirTemp("", "fshealth-exim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Exim{Dir: dir, Config: filepath.Join(dir, "exim.conf"), Mailbox: filepath.Join(dir, "mail", "mbox"),
		Sendmail: filepath.Join(dir, "sendmail")}
	for _, d := range []string{"spool", "mail"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	var aliases strings.Builder
	for from, to := range o.Aliases {
		fmt.Fprintf(&aliases, "%s: %s\n", from, to)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("aliases", []byte(aliases.String()), 0o644)
	tlsOn := o.CertPEM != nil
	if tlsOn {
		write("cert.pem", o.CertPEM, 0o644)
		write("key.pem", o.KeyPEM, 0o600)
		// exim reads the key as its own user, for each connection.
		if err := os.Chown(filepath.Join(dir, "key.pem"), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if o.Daemon {
		e.Port = freePort(t)
	}
	var conf bytes.Buffer
	tmpl := template.Must(template.New("exim").Parse(eximConfig))
	if err := tmpl.Execute(&conf, map[string]any{"Dir": dir, "Port": e.Port, "TLS": tlsOn}); err != nil {
		t.Fatal(err)
	}
	write("exim.conf", conf.Bytes(), 0o644)
	// The stand-in for /usr/sbin/sendmail (which on Debian is exim
	// itself): exim with this configuration.
	write("sendmail", []byte("#!/bin/sh\nexec "+bin+" -C "+e.Config+" -odi \"$@\"\n"), 0o755)
	if out, err := exec.Command(bin, "-C", e.Config, "-bV").CombinedOutput(); err != nil {
		t.Fatalf("exim rejects its test configuration: %v\n%s", err, out)
	}
	if !o.Daemon {
		return e
	}

	e.cmd = exec.Command(bin, "-C", e.Config, "-bdf", "-oX", strconv.Itoa(e.Port))
	var out bytes.Buffer
	e.cmd.Stdout, e.cmd.Stderr = &out, &out
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("starting exim: %v", err)
	}
	e.done = make(chan error, 1)
	go func() { e.done <- e.cmd.Wait() }()
	t.Cleanup(func() { e.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.Port)), time.Second)
		if err == nil {
			c.Close()
			return e
		}
		select {
		case werr := <-e.done:
			e.done <- werr
			t.Fatalf("exim exited (%v) before listening on port %d: %s\n%s", werr, e.Port, out.String(), e.Log("panic"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("exim does not listen on port %d: %s\n%s", e.Port, out.String(), e.Log("main"))
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// stop ends the daemon and every process of its group (connection and
// delivery processes), and checks that none is left.
func (e *Exim) stop(t testing.TB) {
	pgid := e.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-e.done
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("exim processes left behind: %v", left)
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// SetFailure makes local submissions (the sendmail interface) fail:
// "temp" with a temporary failure (exim's ACL says defer), "perm" with a
// refusal (deny), "" not at all.
func (e *Exim) SetFailure(t testing.TB, kind string) {
	t.Helper()
	for _, k := range []string{"temp", "perm"} {
		p := filepath.Join(e.Dir, k+"fail")
		if k == kind {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// Log returns exim's log of the given kind ("main", "reject", "panic").
func (e *Exim) Log(kind string) string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, "spool", kind+"log"))
	return string(b)
}

// Messages returns the messages in the mailbox, without their mbox "From "
// lines, with CRLF line ends as on the wire.
func (e *Exim) Messages(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile(e.Mailbox)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	var cur []string
	flush := func() {
		if cur != nil {
			m := strings.Join(cur, "\r\n")
			m = strings.TrimRight(m, "\r\n") + "\r\n"
			msgs = append(msgs, []byte(m))
		}
	}
	prevBlank := true
	for _, line := range strings.Split(string(data), "\n") {
		if prevBlank && strings.HasPrefix(line, "From ") {
			flush()
			cur = []string{}
			prevBlank = false
			continue
		}
		if cur != nil {
			cur = append(cur, line)
		}
		prevBlank = line == ""
	}
	flush()
	return msgs
}

// WaitMessages waits until the mailbox holds n messages and exim's queue
// is empty, and returns them.
func (e *Exim) WaitMessages(t testing.TB, n int) [][]byte {
	t.Helper()
	return e.WaitMatching(t, n, nil)
}

// WaitMatching waits until the mailbox holds n messages for which match
// (nil: any) is true and exim's queue is empty (every delivery is
// complete), and returns
// every message. Messages exim made itself (reports of refused messages to
// their senders) can come first.
func (e *Exim) WaitMatching(t testing.TB, n int, match func([]byte) bool) [][]byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs := e.Messages(t)
		matched := 0
		for _, m := range msgs {
			if match == nil || match(m) {
				matched++
			}
		}
		if matched >= n && e.queueEmpty() {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("exim's mailbox has %d matching messages of %d, want %d; main log:\n%s", matched, len(msgs), n, e.Log("main"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queueEmpty reports whether exim's spool holds no message.
func (e *Exim) queueEmpty() bool {
	ents, err := os.ReadDir(filepath.Join(e.Dir, "spool", "input"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return len(ents) == 0
}

// SelfSignedCert returns a self-signed certificate and its key, in PEM, for
// the given DNS names and IP addresses, valid from notBefore to notAfter,
// and the certificate in DER.
func SelfSignedCert(t testing.TB, names []string, notBefore, notAfter time.Time) (certPEM, keyPEM, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fshealth test mail server"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), der
}
