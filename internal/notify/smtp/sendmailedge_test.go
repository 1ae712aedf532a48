package smtp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
)

// sendmailScript writes an executable sendmail stand-in running script
// with /bin/sh, which first records its process group in pgid (killed at
// cleanup, with what it left running).
func sendmailScript(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	pgid := filepath.Join(dir, "pgid")
	prog := filepath.Join(dir, "sendmail")
	body := "#!/bin/sh\necho $$ > " + pgid + "\ncat >/dev/null\n" + script + "\n"
	if err := os.WriteFile(prog, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pgid); err == nil {
			if id, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && id > 1 {
				syscall.Kill(-id, syscall.SIGKILL)
			}
		}
	})
	return prog
}

// TestSendmailEdges: a program that took the message (status 0) while a
// child of it still holds its output is a success; a failure's error
// carries the sysexits name, and the program's output after ": " only
// when it printed any, cut at 4 KiB (however many writes it took).
func TestSendmailEdges(t *testing.T) {
	a := notifytest.Alert(alert.TypeError)
	send := func(script string) error {
		t.Helper()
		n := newNotifier(t, smtp.Config{Name: "local", Via: smtp.ViaSendmail, Sendmail: sendmailScript(t, script),
			From: "fshealth", To: []string{"root"}})
		return n.Send(context.Background(), a)
	}
	if err := send("sleep 30 &\nexit 0"); err != nil {
		t.Errorf("status 0 with a child holding the output: %v, want success", err)
	}
	err := send("exit 75")
	if err == nil || !strings.HasSuffix(err.Error(), "exited with status 75 (EX_TEMPFAIL: temporary failure)") {
		t.Errorf("silent failure: %v, want the status and nothing after it", err)
	}
	err = send("echo 'queue full' >&2\nexit 42")
	if err == nil || !strings.HasSuffix(err.Error(), "exited with status 42: queue full") {
		t.Errorf("failure with output: %v, want the status (no sysexits name) and the output", err)
	}
	// The cap holds for output that may come in one read (5000 bytes) and
	// for output that comes in several (100000 bytes: exec copies it
	// through a 32 KiB buffer).
	for _, size := range []int{5000, 100000} {
		err = send(fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x\nexit 1", size))
		if err == nil || !strings.HasSuffix(err.Error(), ": "+strings.Repeat("x", 4096)) || strings.Contains(err.Error(), strings.Repeat("x", 4097)) {
			t.Errorf("failure with %d bytes of output: %.200v…, want the first 4096 bytes", size, err)
		}
	}
}

// TestPortRange: a port is 1 to 65535; 0 means the TLS mode's default.
func TestPortRange(t *testing.T) {
	for port, ok := range map[int]bool{-1: false, 0: true, 1: true, 587: true, 65535: true, 65536: false} {
		_, err := smtp.New(smtp.Config{Name: "p", Host: "mail.example.org", Port: port, From: "a@b.c", To: []string{"d@e.f"}})
		if (err == nil) != ok || !ok && !strings.Contains(err.Error(), fmt.Sprintf("port %d is out of range", port)) {
			t.Errorf("port %d: %v, want ok %v", port, err, ok)
		}
	}
}
