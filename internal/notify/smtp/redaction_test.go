package smtp_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/smtp"
)

// The echo server's credentials: a password with a backslash (which error
// cleaning escapes) and a user whose PLAIN blob holds the password's own
// base64 (user length + 2 is a multiple of 3), so the order secrets are
// scrubbed in matters.
const (
	echoUser = "oper"
	echoPass = `s3cr\et-pa55 word`
)

// echoSecretForms are the texts that must never appear in an error: the
// password raw and escaped, its base64, the PLAIN and LOGIN blobs, and any
// 6 bytes of the password.
func echoSecretForms() []string {
	b64 := base64.StdEncoding.EncodeToString
	forms := []string{echoPass, strings.ReplaceAll(echoPass, `\`, `\\`), b64([]byte(echoPass)),
		b64([]byte("\x00" + echoUser + "\x00" + echoPass))}
	for i := 0; i+6 <= len(echoPass); i++ {
		forms = append(forms, echoPass[i:i+6])
	}
	// Any 8 characters of the base64 forms (a part left by scrubbing a
	// shorter secret first).
	for _, s := range forms[2:4] {
		for i := 0; i+8 <= len(s); i++ {
			forms = append(forms, s[i:i+8])
		}
	}
	return forms
}

// echoServer is an SMTP server on 127.0.0.1 without TLS that echoes what
// it received — the AUTH exchange, decoded too — in the reply of the step
// named by fail ("auth", "mail", "rcpt", "data"), which fails.
func echoServer(t *testing.T, fail string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				echoSession(textproto.NewConn(c), fail)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

func echoSession(tp *textproto.Conn, fail string) {
	tp.PrintfLine("220 localhost ESMTP echo")
	var seen []string // what the client sent, and what it decodes to
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			tp.PrintfLine("250-localhost\r\n250 AUTH PLAIN LOGIN")
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			if strings.EqualFold(mech, "LOGIN") {
				tp.PrintfLine("334 VXNlcm5hbWU6")
				initial, _ = tp.ReadLine()
				seen = append(seen, initial)
				tp.PrintfLine("334 UGFzc3dvcmQ6")
				initial, _ = tp.ReadLine()
			}
			if initial == "" {
				tp.PrintfLine("334 ")
				initial, _ = tp.ReadLine()
			}
			seen = append(seen, initial)
			if b, err := base64.StdEncoding.DecodeString(initial); err == nil {
				seen = append(seen, strings.ReplaceAll(string(b), "\x00", " "))
			}
			if fail == "auth" {
				tp.PrintfLine("535 5.7.8 rejected %s", strings.Join(seen, " "))
				continue
			}
			tp.PrintfLine("235 2.7.0 ok")
		case "MAIL":
			if fail == "mail" {
				tp.PrintfLine("553 5.7.1 sender refused for %s", strings.Join(seen, " "))
				continue
			}
			tp.PrintfLine("250 ok")
		case "RCPT":
			if fail == "rcpt" {
				tp.PrintfLine("450 4.2.1 try later, %s", strings.Join(seen, " "))
				continue
			}
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go on")
			if _, err := tp.ReadDotBytes(); err != nil {
				return
			}
			tp.PrintfLine("554 5.6.0 refused: %s", strings.Join(seen, " "))
		case "NOOP", "RSET":
			tp.PrintfLine("250 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("500 what")
		}
	}
}

// TestPasswordNeverInErrorText: a server that echoes the credentials it
// received (the AUTH blobs and what they decode to) in the reply of a
// failed step never gets them into the error Send returns.
func TestPasswordNeverInErrorText(t *testing.T) {
	for _, fail := range []string{"auth", "mail", "rcpt", "data"} {
		t.Run(fail, func(t *testing.T) {
			port := echoServer(t, fail)
			n, err := smtp.New(smtp.Config{Name: "echo", Host: "127.0.0.1", Port: port, TLS: smtp.TLSNone,
				From: "fshealth@example.org", To: []string{"ops@example.org"},
				Username: echoUser, Password: echoPass, Timeout: 10 * time.Second, HeloName: "h.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			err = n.Send(context.Background(), notifytest.Alert(alert.TypeError))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Log(err)
			for _, s := range echoSecretForms() {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows %q: %s", s, err)
				}
			}
			if !strings.Contains(err.Error(), "xxxxx") {
				t.Errorf("the server's echo was not in the error, or not scrubbed: %s", err)
			}
		})
	}
}
