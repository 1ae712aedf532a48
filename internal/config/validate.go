package config

import (
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"unicode"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/notify/webhook"
)

// The check functions return "" for a good value, else the reason it is
// bad, quoting the value only when it cannot be secret.

func checkAbsPath(p string) string {
	if p == "" {
		return "must not be empty"
	}
	if !filepath.IsAbs(p) {
		return fmt.Sprintf("not an absolute path: %q", p)
	}
	if strings.ContainsRune(p, 0) {
		return "contains a NUL character"
	}
	return ""
}

func checkHostname(h string) string {
	if h == "" {
		return "must not be empty (leave hostname out to use the machine's)"
	}
	if len(h) > 253 || !utf8.ValidString(h) {
		return fmt.Sprintf("not a host name: %q", h)
	}
	for _, r := range h {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Sprintf("not a host name: %q", h)
		}
	}
	return ""
}

// checkListen checks a host:port listen address. It returns a warning for
// addresses reachable from other hosts.
func checkListen(addr string) (msg, warn string) {
	if addr == "" {
		return "", ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("not a host:port address: %q", addr), ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port must be a number between 1 and 65535: %q", addr), ""
	}
	switch {
	case host == "":
		return "", fmt.Sprintf("%q listens on every interface: metrics are readable from other hosts", addr)
	case host == "localhost":
		return "", ""
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return "", ""
		}
		if ip.IsUnspecified() {
			return "", fmt.Sprintf("%q listens on every interface: metrics are readable from other hosts", addr)
		}
		return "", fmt.Sprintf("%q is not a loopback address: metrics are readable from other hosts", addr)
	}
	if msg := checkDNSName(host); msg != "" {
		return fmt.Sprintf("not a host:port address: %q", addr), ""
	}
	return "", fmt.Sprintf("%q may not be a loopback address: metrics may be readable from other hosts", addr)
}

// dnsName matches a DNS host name; compiled when first used (its counted
// repetitions make it costly to compile at every command's start).
var dnsName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$`)
})

func checkDNSName(h string) string {
	if len(h) > 253 || !dnsName().MatchString(h) {
		return fmt.Sprintf("not a host name: %q", h)
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// checkName checks a channel or rule name: it appears in metrics labels and
// log lines.
func checkName(n string) string {
	if !nameRE.MatchString(n) {
		return fmt.Sprintf("names are 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit: %q", n)
	}
	return ""
}

// checkHTTPURL checks an absolute http or https URL.
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("not an absolute http(s) URL: %q", safeURL(s))
	}
	if u.Hostname() == "" {
		return fmt.Sprintf("not an absolute http(s) URL: %q", safeURL(s))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("bad port in URL: %q", safeURL(s))
		}
	}
	if u.Fragment != "" {
		return fmt.Sprintf("a URL to send to cannot have a #fragment: %q", safeURL(s))
	}
	return ""
}

// safeURL returns s for messages and dumps: without user information, and
// with query values replaced by "<redacted>".
func safeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable: cut what might be user information or a query.
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i] + "?<redacted>"
		}
		rest := s
		prefix := ""
		if i := strings.Index(s, "://"); i >= 0 {
			prefix, rest = s[:i+3], s[i+3:]
		}
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			rest = "<redacted>@" + rest[at+1:]
		}
		return prefix + rest
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteByte(':')
	}
	if u.Opaque != "" {
		if at := strings.LastIndexByte(u.Opaque, '@'); at >= 0 {
			b.WriteString("<redacted>@" + u.Opaque[at+1:])
		} else {
			b.WriteString(u.Opaque)
		}
	} else {
		if u.Scheme != "" || u.Host != "" || u.User != nil {
			b.WriteString("//")
		}
		if u.User != nil {
			b.WriteString("<redacted>@")
		}
		b.WriteString(u.Host)
		b.WriteString(u.EscapedPath())
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			b.WriteString("<redacted>")
		} else {
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				if i > 0 {
					b.WriteByte('&')
				}
				b.WriteString(url.QueryEscape(k))
				b.WriteString("=<redacted>")
			}
		}
	}
	if u.Fragment != "" {
		b.WriteString("#" + u.EscapedFragment())
	}
	return b.String()
}

// checkTemplate checks a webhook body template as the webhook channel
// would use it with the content type: its syntax and functions, then that
// it renders a sample alert and a hostile one (quotes, newlines, braces,
// invalid UTF-8, a 64 KiB kernel message) to a body that, for a JSON
// content type, parses.
func checkTemplate(text, contentType string) string {
	if err := webhook.CheckTemplate(text, contentType); err != nil {
		return err.Error()
	}
	return ""
}

// checkFormat checks a webhook's built-in template name and returns the
// content type it is sent with.
func checkFormat(name string) (contentType, msg string) {
	_, ct, ok := webhook.Builtin(name)
	if !ok {
		return "", (&webhook.FormatError{Name: name}).Error()
	}
	return ct, ""
}

func checkMediaType(s string) string {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") || strings.ContainsAny(s, "\r\n") {
		return fmt.Sprintf("not a media type: %q", s)
	}
	return ""
}

// isTchar reports whether c may appear in an HTTP header name (RFC 9110).
func isTchar(c rune) bool {
	return c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", c))
}

func checkHeaderName(s string) string {
	if s == "" {
		return "empty header name"
	}
	for _, c := range s {
		if !isTchar(c) {
			return fmt.Sprintf("not a header name: %q", s)
		}
	}
	return ""
}

// checkSetHeader checks the name of a header a channel sets: a valid name
// of a header that fshealth does not set itself.
func checkSetHeader(name string) string {
	if msg := checkHeaderName(name); msg != "" {
		return msg
	}
	switch strings.ToLower(name) {
	case "content-length", "transfer-encoding", "x-fshealth-alert-id":
		return fmt.Sprintf("header %q is set by fshealth", name)
	}
	return ""
}

// checkHeaderValue checks a header value without quoting it: values are
// secret (Authorization, tokens).
func checkHeaderValue(s string) string {
	for _, c := range s {
		if c == '\r' || c == '\n' || c == 0 || c < ' ' && c != '\t' || c == 0x7f {
			return "header values cannot contain control characters (value not shown)"
		}
	}
	return ""
}

func checkMailHost(h string) string {
	if h == "" {
		return "must not be empty"
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return ""
	}
	if strings.Contains(h, ":") {
		return fmt.Sprintf("a host name or address without a port (set port): %q", h)
	}
	return checkDNSName(h)
}

// checkAddress checks one e-mail address, a bare address or "Name <addr>".
func checkAddress(a string) string {
	p, err := mail.ParseAddress(a)
	if err != nil || !strings.Contains(p.Address, "@") || strings.HasPrefix(p.Address, "@") || strings.HasSuffix(p.Address, "@") {
		return fmt.Sprintf("not an e-mail address: %q", a)
	}
	return ""
}

func checkOneLine(s string) string {
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Sprintf("must be one line without control characters: %q", s)
		}
	}
	return ""
}

var labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are the labels fshealth sets on every Alertmanager alert.
var reservedLabels = []string{"alertname", "instance", "device", "mountpoint", "fstype", "uuid", "errno", "severity"}

func checkLabelName(n string) string {
	if !labelRE.MatchString(n) || strings.HasPrefix(n, "__") {
		return fmt.Sprintf("not a Prometheus label name: %q", n)
	}
	if slices.Contains(reservedLabels, n) {
		return fmt.Sprintf("label %q is set by fshealth", n)
	}
	return ""
}

func checkGlob(g string) string {
	if g == "" {
		return "empty pattern"
	}
	if _, err := filepath.Match(g, ""); err != nil {
		return fmt.Sprintf("bad pattern (%v): %q", err, g)
	}
	return ""
}
