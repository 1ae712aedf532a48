package smtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/mail"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Transports (Config.Via).
const (
	// ViaSMTP speaks SMTP to Config.Host. It is the default.
	ViaSMTP = "smtp"
	// ViaSendmail hands the message to the local mail transfer agent's
	// sendmail program, which knows the smarthost, its credentials and
	// /etc/aliases.
	ViaSendmail = "sendmail"
	// DefaultSendmail is the sendmail program every MTA on Debian installs.
	DefaultSendmail = "/usr/sbin/sendmail"
)

// maxSendmailOutput caps what is kept of the program's output for the
// error message.
const maxSendmailOutput = 4096

// localNameRE matches a bare local name such as "root" or "ops-team".
var localNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// IsLocalName reports whether s is a bare local name ("root"), which the
// local mail transfer agent qualifies and looks up in /etc/aliases.
func IsLocalName(s string) bool {
	return len(s) <= 64 && localNameRE.MatchString(s)
}

// formatAddresses writes addresses for a header: bare local names as they
// are, others as net/mail does (display names RFC 2047-encoded).
func formatAddresses(as []*mail.Address) string {
	out := make([]string, len(as))
	for i, a := range as {
		if IsLocalName(a.Address) {
			out[i] = a.Address
		} else {
			out[i] = a.String()
		}
	}
	return strings.Join(out, ", ")
}

// sendmailArgs returns the arguments after the program: -i (a line with a
// single dot does not end the message), the envelope sender, then the
// recipients after "--", so that none can be taken for an option and the
// headers are not searched for more.
func (n *Notifier) sendmailArgs() []string {
	args := []string{"-i", "-f", n.from.Address, "--"}
	for _, a := range n.to {
		args = append(args, a.Address)
	}
	return args
}

// sendmailSend hands msg to the sendmail program, without a shell. The
// program's exit status is the result: 0 means the MTA took the message;
// anything else is an error with the status's sysexits.h name and meaning
// and the program's output, which the outbox retries like any failure.
func (n *Notifier) sendmailSend(ctx context.Context, id string, msg *gomail.Msg) error {
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return n.errorf("alert %s: writing the message: %v", id, err)
	}
	// The sendmail interface takes lines ending in LF.
	data := bytes.ReplaceAll(buf.Bytes(), []byte("\r\n"), []byte("\n"))
	cmd := exec.CommandContext(ctx, n.sendmail, n.sendmailArgs()...)
	// As for hooks: a minimal environment, and a process group of its own,
	// killed as a whole when the attempt times out.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stdin = bytes.NewReader(data)
	out := &capped{max: maxSendmailOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Do not wait for children that keep the output open (a queue runner).
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	if err == nil || errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Taken (a child that still holds the output does not matter).
		return nil
	}
	step := "running " + n.sendmail
	text := oneLine(strings.TrimSpace(out.String()))
	if text != "" {
		text = ": " + text
	}
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return n.errorf("alert %s: %s: timed out after %s (timeout %s)%s", id, step, time.Since(start).Round(time.Millisecond), n.timeout, text)
	case errors.Is(ctx.Err(), context.Canceled):
		return n.errorf("alert %s: %s: canceled%s", id, step, text)
	case errors.As(err, &ee) && ee.Exited():
		return n.errorf("alert %s: %s exited with status %s%s", id, n.sendmail, exitStatus(ee.ExitCode()), text)
	case errors.As(err, &ee):
		return n.errorf("alert %s: %s: %v%s", id, step, ee, text)
	}
	return n.errorf("alert %s: %s: %v%s", id, step, err, text)
}

// sysexits are the exit statuses of sysexits.h, which sendmail programs
// use, with what they mean.
var sysexits = map[int]string{
	64: "EX_USAGE: command line usage error",
	65: "EX_DATAERR: data format error",
	66: "EX_NOINPUT: cannot open input",
	67: "EX_NOUSER: addressee unknown",
	68: "EX_NOHOST: host name unknown",
	69: "EX_UNAVAILABLE: service unavailable",
	70: "EX_SOFTWARE: internal software error",
	71: "EX_OSERR: system error",
	72: "EX_OSFILE: critical OS file missing",
	73: "EX_CANTCREAT: cannot create (user) output file",
	74: "EX_IOERR: input/output error",
	75: "EX_TEMPFAIL: temporary failure",
	76: "EX_PROTOCOL: remote error in protocol",
	77: "EX_NOPERM: permission denied",
	78: "EX_CONFIG: configuration error",
}

// exitStatus describes an exit status: "75 (EX_TEMPFAIL: temporary
// failure)".
func exitStatus(code int) string {
	if m, ok := sysexits[code]; ok {
		return strconv.Itoa(code) + " (" + m + ")"
	}
	return strconv.Itoa(code)
}

// capped is an io.Writer that keeps the first max bytes.
type capped struct {
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }

var _ io.Writer = (*capped)(nil)
