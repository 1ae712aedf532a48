package webhook_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/webhook"
)

// The secrets of redactionConfig, in every form a receiver could echo
// them: as configured, URL-escaped (as the request carries them), and the
// basic credentials net/http sends for the URL's user information.
const (
	urlPass    = "pa ss/w0rd+pw"
	queryToken = "t0k en/v=al"
	rawQueryV  = "r4w+t0ken/x" // written unescaped in the URL's query
	hmacSecret = "hmac-k3y-value"
	headerCred = "h3ader-cred-value"
)

// redactionConfig is a webhook to base whose URL, header and HMAC key hold
// secrets.
func redactionConfig(base string) webhook.Config {
	u, _ := url.Parse(base)
	u.User = url.UserPassword("hookuser", urlPass)
	u.Path = "/hook"
	u.RawQuery = "token=" + url.QueryEscape(queryToken) + "&raw=" + rawQueryV
	return webhook.Config{
		Name:    "red",
		URL:     u.String(),
		Secret:  hmacSecret,
		Headers: map[string]string{"Authorization": "Token " + headerCred},
		Timeout: 5 * time.Second,
	}
}

// secretForms are the texts that must never appear in an error.
func secretForms() []string {
	forms := []string{urlPass, url.QueryEscape(urlPass), url.PathEscape(urlPass),
		url.UserPassword("hookuser", urlPass).String(),
		base64.StdEncoding.EncodeToString([]byte("hookuser:" + urlPass)),
		queryToken, url.QueryEscape(queryToken), rawQueryV, hmacSecret, headerCred}
	// Any 6 bytes of a secret are a leak too (what a partial scrub, in the
	// wrong order, would leave).
	for _, s := range []string{urlPass, queryToken, hmacSecret, headerCred} {
		for i := 0; i+6 <= len(s); i++ {
			forms = append(forms, s[i:i+6])
		}
	}
	return forms
}

func checkRedacted(t *testing.T, what, msg string) {
	t.Helper()
	for _, s := range secretForms() {
		if strings.Contains(msg, s) {
			t.Errorf("%s: error shows %q: %s", what, s, msg)
		}
	}
	if !strings.Contains(msg, `webhook "red"`) {
		t.Errorf("%s: error does not name the channel: %s", what, msg)
	}
}

// TestErrorsNeverShowSecrets: a receiver that echoes what it received —
// the request line, the credentials net/http sent, each header — in its
// reply's body gets every secret scrubbed from the error Send returns.
func TestErrorsNeverShowSecrets(t *testing.T) {
	echoes := map[string]func(r *http.Request) string{
		"request URI": func(r *http.Request) string { return "no route for " + r.RequestURI },
		"query values": func(r *http.Request) string {
			return "bad token " + r.URL.Query().Get("token") + " / " + r.URL.Query().Get("raw")
		},
		"user info": func(r *http.Request) string { return "expected " + url.UserPassword("hookuser", urlPass).String() },
		"hmac key":  func(r *http.Request) string { return "key " + hmacSecret + " rejected" },
	}
	for name, echo := range echoes {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, echo(r))
			}))
			t.Cleanup(srv.Close)
			n, err := webhook.New(redactionConfig(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			err = n.Send(context.Background(), webhook.SampleAlert())
			if err == nil {
				t.Fatal("Send succeeded against a 400")
			}
			checkRedacted(t, name, err.Error())
			if !strings.Contains(err.Error(), "xxxxx") {
				t.Errorf("%s: nothing was scrubbed (did the receiver echo?): %s", name, err)
			}
		})
	}
}

// TestCredentialsEchoed: the Authorization header as sent — the
// configured one, or the basic credentials net/http makes of the URL's user
// information when there is none — echoed whole or decoded.
func TestCredentialsEchoed(t *testing.T) {
	for _, withHeader := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			u, p, _ := r.BasicAuth()
			io.WriteString(w, "forbidden: "+r.Header.Get("Authorization")+" (user "+u+" password "+p+")")
		}))
		t.Cleanup(srv.Close)
		cfg := redactionConfig(srv.URL)
		if !withHeader {
			delete(cfg.Headers, "Authorization")
		}
		n, err := webhook.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		err = n.Send(context.Background(), webhook.SampleAlert())
		if err == nil {
			t.Fatal("Send succeeded against a 403")
		}
		checkRedacted(t, fmt.Sprintf("Authorization header (configured: %v)", withHeader), err.Error())
		if m := err.Error(); !strings.Contains(m, "forbidden: xxxxx") && !strings.Contains(m, "forbidden: Basic xxxxx (user xxxxx password xxxxx)") {
			t.Errorf("the credentials were not echoed, or not scrubbed: %s", err)
		}
	}
}

// TestStatusLineAndTransportErrorsScrubbed: secrets in the status line's
// text and in the text of a malformed response (which net/http quotes in
// its error) are scrubbed.
func TestStatusLineAndTransportErrorsScrubbed(t *testing.T) {
	for name, reply := range map[string]string{
		"status line":    "HTTP/1.1 502 upstream said " + hmacSecret + " " + headerCred + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"malformed code": "HTTP/1.1 5x" + headerCred + " x\r\n\r\n",
		"malformed line": "HTTP/1.1" + hmacSecret + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			base := notifytest.RawServer(t, reply)
			n, err := webhook.New(redactionConfig(base))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			err = n.Send(context.Background(), webhook.SampleAlert())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Log(err)
			checkRedacted(t, name, err.Error())
		})
	}
}

// TestLongestSecretScrubbedFirst: a secret that contains another (a header
// value holding the URL's token) is scrubbed whole, leaving no part of it.
func TestLongestSecretScrubbedFirst(t *testing.T) {
	const inner, outer = "inner-t0ken", "0uter-inner-t0ken-0uter"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "got ["+r.Header.Get("X-Api-Key")+"] and ["+r.URL.Query().Get("k")+"]")
	}))
	t.Cleanup(srv.Close)
	n, err := webhook.New(webhook.Config{Name: "red", URL: srv.URL + "/?k=" + inner, Headers: map[string]string{"X-Api-Key": outer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	err = n.Send(context.Background(), webhook.SampleAlert())
	if err == nil {
		t.Fatal("Send succeeded against a 401")
	}
	if !strings.Contains(err.Error(), `"got [xxxxx] and [xxxxx]"`) {
		t.Errorf("want both secrets scrubbed whole: %s", err)
	}
}
