package alertmanager_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/alertmanager"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
)

// A password with the characters error cleaning escapes (a backslash) and
// URL escaping changes (a space, a slash, a plus), and a header credential.
const (
	amUser = "amuser"
	amPass = `pa\ss w/rd+x`
	amTok  = "t0ken-value-123"
)

// amSecretForms are the texts that must never appear in an error: each
// secret as configured, escaped, in the basic credentials, and any 6 bytes
// of it.
func amSecretForms() []string {
	forms := []string{amPass, url.QueryEscape(amPass), url.PathEscape(amPass), strings.ReplaceAll(amPass, `\`, `\\`),
		base64.StdEncoding.EncodeToString([]byte(amUser + ":" + amPass)), amTok}
	for _, s := range []string{amPass, amTok, base64.StdEncoding.EncodeToString([]byte(amUser + ":" + amPass))} {
		for i := 0; i+6 <= len(s); i++ {
			forms = append(forms, s[i:i+6])
		}
	}
	return forms
}

func checkAMRedacted(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: Send succeeded", what)
	}
	for _, s := range amSecretForms() {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s: error shows %q: %s", what, s, err)
		}
	}
}

// TestCredentialsNeverInErrorText: an Alertmanager that echoes the
// credentials — configured basic auth, a URL's user information, a header
// — in its status line or body, whole, decoded, or cut at the excerpt's
// end, gets them scrubbed from the error Send returns.
func TestCredentialsNeverInErrorText(t *testing.T) {
	echo := map[string]func(r *http.Request) string{
		"authorization": func(r *http.Request) string { return "bad " + r.Header.Get("Authorization") },
		"decoded":       func(r *http.Request) string { u, p, _ := r.BasicAuth(); return "user " + u + " pass " + p },
		"header":        func(r *http.Request) string { return "token " + r.Header.Get("X-Token") },
		"json string": func(r *http.Request) string {
			_, p, _ := r.BasicAuth()
			return `"bad password ` + strings.ReplaceAll(p, `\`, `\\`) + `"`
		},
		// The password straddles the 200-byte excerpt's end.
		"cut": func(r *http.Request) string { _, p, _ := r.BasicAuth(); return strings.Repeat("y", 195) + p },
	}
	for name, reply := range echo {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, reply(r))
		}))
		t.Cleanup(srv.Close)
		withURL := url.URL{Scheme: "http", User: url.UserPassword(amUser, amPass), Host: strings.TrimPrefix(srv.URL, "http://")}
		for cname, cfg := range map[string]alertmanager.Config{
			"configured basic auth": {URLs: []string{srv.URL}, Username: amUser, Password: amPass, Headers: map[string]string{"X-Token": "Bearer " + amTok}},
			"user information":      {URLs: []string{withURL.String()}, Headers: map[string]string{"X-Token": amTok}},
		} {
			n := newNotifier(t, cfg)
			err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
			checkAMRedacted(t, name+", "+cname, err)
			if err != nil && !strings.Contains(err.Error(), "HTTP 502") {
				t.Errorf("%s, %s: %v", name, cname, err)
			}
		}
	}
}

// TestStatusLineAndTransportErrorsScrubbed: the credentials in the status
// line, also where it is cut at 100 bytes, and in a malformed response
// net/http quotes in its error.
func TestStatusLineAndTransportErrorsScrubbed(t *testing.T) {
	for name, reply := range map[string]string{
		"status line":     "HTTP/1.1 502 said " + amPass + " " + amTok + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"cut status line": "HTTP/1.1 502 " + strings.Repeat("z", 92) + amTok + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"malformed":       "HTTP/1.1 5x" + amTok + "\r\n\r\n",
	} {
		base := notifytest.RawServer(t, reply)
		n := newNotifier(t, alertmanager.Config{URLs: []string{base}, Username: amUser, Password: amPass, Headers: map[string]string{"X-Token": amTok}})
		err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
		checkAMRedacted(t, name, err)
	}
}

// TestLongestCredentialScrubbedFirst: a header value that contains the
// password is scrubbed whole.
func TestLongestCredentialScrubbedFirst(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "got ["+r.Header.Get("X-Key")+"]")
	}))
	t.Cleanup(srv.Close)
	n := newNotifier(t, alertmanager.Config{URLs: []string{srv.URL}, Username: amUser, Password: "inner-pw-123",
		Headers: map[string]string{"X-Key": "0uter-inner-pw-123-0uter"}})
	err := n.Send(context.Background(), notifytest.Alert(alert.TypeError))
	if err == nil || !strings.Contains(err.Error(), `got [xxxxx]`) {
		t.Errorf("want the header value scrubbed whole: %v", err)
	}
}
