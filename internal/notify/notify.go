// Package notify is the delivery core fshealth's channels share: the
// configured secrets that never appear in an error (Secrets), one-line
// excerpts of what a receiver said (Line), HTTP header checks, and an HTTP
// client that never follows a redirect and turns every failure into an
// error without the request URL (Client, StatusError). Each channel keeps
// only what is its own: its body, its headers, its protocol.
package notify

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/event"
)

// UserAgent returns the User-Agent of fshealth's requests:
// "fshealth/<version>", "fshealth/dev" for an empty version.
func UserAgent(version string) string {
	if version == "" {
		version = "dev"
	}
	return "fshealth/" + version
}

// minSecret is the shortest value Secrets scrubs: shorter ones are no
// credentials and would mangle every message.
const minSecret = 3

// Secrets holds the configured values that must never appear in an error:
// passwords, tokens, header values, the user information and query values
// of URLs. The zero value is empty and ready to use; it is not safe for
// concurrent Add, but Scrub may run concurrently once set up.
type Secrets struct {
	list []string
}

// Add records each value of at least three bytes.
func (s *Secrets) Add(values ...string) {
	for _, v := range values {
		if len(v) >= minSecret {
			s.list = append(s.list, v)
		}
	}
	// Longest first, so that a secret containing another is scrubbed whole.
	sort.SliceStable(s.list, func(i, j int) bool { return len(s.list[i]) > len(s.list[j]) })
}

// AddHeader records a configured header value and, for a
// "scheme credentials" value such as "Bearer abc", the credentials alone.
func (s *Secrets) AddHeader(v string) {
	s.Add(v)
	if _, cred, ok := strings.Cut(v, " "); ok {
		s.Add(strings.TrimSpace(cred))
	}
}

// AddBasicAuth records a password and the base64 form of the
// Authorization header carrying it.
func (s *Secrets) AddBasicAuth(user, pass string) {
	if pass == "" {
		return
	}
	s.Add(pass, url.QueryEscape(pass), base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
}

// AddURL records the parts of u that must not be shown: the user
// information and every query value, each also as it looks escaped.
func (s *Secrets) AddURL(u *url.URL) {
	add := func(v string) { s.Add(v, url.QueryEscape(v)) }
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
			// As the URL writes it, and the basic credentials net/http
			// sends for it.
			_, written, _ := strings.Cut(u.User.String(), ":")
			s.Add(written)
			s.Add(base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + p)))
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	// The query values as the URL writes them, which is how the request
	// line carries them (not necessarily as QueryEscape would).
	for _, kv := range strings.Split(u.RawQuery, "&") {
		if _, v, ok := strings.Cut(kv, "="); ok {
			s.Add(v)
		}
	}
}

// Scrub replaces every recorded secret in text with "xxxxx".
func (s *Secrets) Scrub(text string) string {
	for _, sec := range s.list {
		text = strings.ReplaceAll(text, sec, "xxxxx")
	}
	return text
}

// Line makes s one printable line of at most max bytes: control
// characters and invalid UTF-8 are escaped (event.Clean) and a cut is
// marked with "…". Scrub secrets before calling it, so that no part of a
// secret is left at the cut.
func Line(s string, max int) string {
	s = strings.TrimSpace(s)
	truncated := false
	if len(s) > max {
		s = Truncate(s, max)
		truncated = true
	}
	s = event.Clean(strings.ToValidUTF8(s, "\uFFFD"))
	if truncated {
		s += "…"
	}
	return s
}

// Truncate cuts s to at most max bytes at a rune boundary.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// RedactURL returns u as text that is safe to log: user information and
// every query value are replaced by "xxxxx" and the fragment is dropped.
func RedactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("xxxxx")
	}
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "xxxxx"
		} else {
			for k := range q {
				q[k] = []string{"xxxxx"}
			}
			c.RawQuery = q.Encode()
		}
	}
	c.Fragment, c.RawFragment = "", ""
	c.ForceQuery = false
	return c.String()
}
