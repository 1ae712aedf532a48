// Package webhook delivers alerts as HTTP POST requests: by default the
// alert's JSON, or a body rendered from a Go text/template so that chat
// services such as Slack, ntfy, Mattermost or Teams can be targeted. Requests
// carry the alert id in X-Fshealth-Alert-Id (receivers de-duplicate on it).
// With a signing secret, requests are signed as Standard Webhooks
// (https://www.standardwebhooks.com) are: webhook-id (the alert id),
// webhook-timestamp (the attempt's time) and webhook-signature, an
// HMAC-SHA256 of the three, so that a captured request cannot be replayed
// once the receiver's tolerance for the timestamp has passed. The older
// secret signs the body alone.
//
// With a JSON content type, a body template inserts every value as JSON
// (see Funcs), so that no event text can change the body's structure.
//
// Nothing secret (the HMAC key, header values, the URL's user information or
// query values) ever appears in an error: URLs are shown redacted and
// receiver responses are scrubbed of every configured secret.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify"
)

// Defaults.
const (
	// DefaultContentType is the Content-Type of request bodies.
	DefaultContentType = "application/json"
	// DefaultSignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>"
	// when a secret is configured.
	DefaultSignatureHeader = "X-Fshealth-Signature"
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
	// AlertIDHeader carries the alert's id on every request.
	AlertIDHeader = "X-Fshealth-Alert-Id"
)

// maxBody caps a rendered request body.
const maxBody = 1 << 20

// maxExcerpt caps the part of a receiver's response quoted in an error.
const maxExcerpt = 200

// Config configures one webhook channel.
type Config struct {
	// Name is the channel's name from the configuration; "webhook" if empty.
	Name string
	// URL is the http or https endpoint alerts are POSTed to.
	URL string
	// Headers are extra request headers. They cannot replace the alert id
	// or signature headers, nor Content-Length or Transfer-Encoding; a
	// "Host" entry sets the request's Host.
	Headers map[string]string
	// Template, if set, is a text/template rendering the body from the
	// *alert.Alert; see Funcs for the helper functions. Empty means the
	// alert's JSON.
	Template string
	// ContentType is the body's Content-Type; if empty, that of a
	// Content-Type entry in Headers, else DefaultContentType.
	// When it names JSON, a template inserts every value JSON-encoded (see
	// jsonEscape) and its output is checked to be valid JSON (at New, with
	// SampleAlert and HostileAlert, and at every Send).
	ContentType string
	// Secret, if set, is the HMAC-SHA256 key for the signature header,
	// which signs the body alone (a captured request can be replayed).
	Secret string
	// SigningSecret, if set, is a Standard Webhooks secret ("whsec_" and
	// base64, see ParseSigningSecret): requests then carry IDHeader,
	// TimestampHeader and SignatureHeaderV1.
	SigningSecret string
	// SignatureHeader is the signature's header; DefaultSignatureHeader if
	// empty.
	SignatureHeader string
	// Timeout bounds one delivery attempt; DefaultTimeout if zero.
	Timeout time.Duration
	// Version is fshealth's version, sent as User-Agent: fshealth/Version;
	// "dev" if empty.
	Version string
}

// Notifier is a webhook channel. It implements alert.Notifier and is safe
// for concurrent use.
type Notifier struct {
	name        string
	url         *url.URL
	shownURL    string
	headers     http.Header
	host        string
	tmpl        *template.Template
	contentType string
	jsonBody    bool
	secret      []byte
	sigHeader   string
	signingKey  []byte
	now         func() time.Time
	timeout     time.Duration
	userAgent   string
	secrets     []string
	client      *http.Client
	transport   *http.Transport
}

// Notifier is an alert.Notifier.
var _ alert.Notifier = (*Notifier)(nil)

// New checks cfg and returns the channel. Every problem is an error naming
// the channel: a bad URL, a bad header, a template that does not parse or
// that fails (or, for a JSON content type, renders invalid JSON) on a sample
// alert.
func New(cfg Config) (*Notifier, error) {
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	fail := func(format string, args ...any) (*Notifier, error) {
		return nil, fmt.Errorf("webhook %q: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	n := &Notifier{
		name:        cfg.Name,
		contentType: cfg.ContentType,
		sigHeader:   cfg.SignatureHeader,
		timeout:     cfg.Timeout,
		headers:     make(http.Header),
		now:         time.Now,
	}
	if n.sigHeader == "" {
		n.sigHeader = DefaultSignatureHeader
	}
	if n.timeout == 0 {
		n.timeout = DefaultTimeout
	}
	if n.timeout < 0 {
		return fail("timeout must not be negative")
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	n.userAgent = "fshealth/" + version

	if cfg.URL == "" {
		return fail("no URL")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL in its error: do not show it.
		return fail("the URL does not parse")
	}
	n.url = u
	n.secrets = urlSecrets(u)
	n.shownURL = RedactURL(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("URL %s: scheme must be http or https", n.shownURL)
	}
	if u.Host == "" {
		return fail("URL %s: no host", n.shownURL)
	}

	if !validToken(n.sigHeader) {
		return fail("signature header %q is not a valid header name", n.sigHeader)
	}
	if cfg.Secret != "" {
		n.secret = []byte(cfg.Secret)
		n.secrets = append(n.secrets, cfg.Secret)
	}
	if cfg.SigningSecret != "" {
		key, err := ParseSigningSecret(cfg.SigningSecret)
		if err != nil {
			return fail("signing secret: %v", err)
		}
		n.signingKey = key
		n.secrets = append(n.secrets, cfg.SigningSecret, strings.TrimPrefix(cfg.SigningSecret, SigningSecretPrefix))
	}
	names := make([]string, 0, len(cfg.Headers))
	for k := range cfg.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := cfg.Headers[k]
		if !validToken(k) {
			return fail("header %q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fail("header %s: the value has a control character", k)
		}
		n.secrets = append(n.secrets, headerSecrets(v)...)
		ck := http.CanonicalHeaderKey(k)
		switch {
		case ck == "Host":
			n.host = v
			continue
		case ck == "Content-Type":
			if cfg.ContentType != "" {
				return fail("both a content type and a Content-Type header")
			}
			n.contentType = v
			continue
		case ck == "Content-Length" || ck == "Transfer-Encoding" || ck == "Connection":
			return fail("header %s cannot be set", ck)
		case ck == AlertIDHeader || ck == http.CanonicalHeaderKey(n.sigHeader) ||
			n.signingKey != nil && (ck == IDHeader || ck == TimestampHeader || ck == SignatureHeaderV1):
			return fail("header %s is set by fshealth", ck)
		}
		n.headers.Set(ck, v)
	}
	sortSecrets(n.secrets)
	if n.contentType == "" {
		n.contentType = DefaultContentType
	}
	if _, err := parseContentType(n.contentType); err != nil || strings.ContainsAny(n.contentType, "\r\n\x00") {
		return fail("content type %q is invalid", n.contentType)
	}
	n.jsonBody = isJSONType(n.contentType)

	if cfg.Template != "" {
		t, err := parseTemplate(cfg.Name, cfg.Template, n.jsonBody)
		if err != nil {
			return fail("template: %v", err)
		}
		n.tmpl = t
	}
	// Render a request for a sample alert and a hostile one, as Send
	// would, to find mistakes now rather than at the first error.
	for _, s := range samples() {
		if _, err := n.request(context.Background(), s.a); err != nil {
			return fail("%v (with %s)", err, s.what)
		}
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = n.timeout
	n.transport = tr
	n.client = &http.Client{
		Transport: tr,
		// Redirects are not followed: the 3xx response is returned and
		// reported as a failure, so alerts are never re-posted to a URL
		// nobody configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       n.timeout,
	}
	return n, nil
}

// Name returns the channel's name.
func (n *Notifier) Name() string { return n.name }

// Close releases idle connections. The Notifier must not be used after.
func (n *Notifier) Close() error {
	n.transport.CloseIdleConnections()
	return nil
}

// body renders the request body for a.
func (n *Notifier) body(a *alert.Alert) ([]byte, error) {
	if n.tmpl == nil {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encoding the alert: %v", err)
		}
		return b, nil
	}
	b, err := n.render(a)
	if err != nil {
		return nil, fmt.Errorf("template: %v", err)
	}
	return b, nil
}

// render executes the body template for a and, for a JSON content type,
// checks that the result is valid JSON.
func (n *Notifier) render(a *alert.Alert) ([]byte, error) {
	var buf bytes.Buffer
	lw := &limitedWriter{w: &buf, n: maxBody}
	if err := n.tmpl.Execute(lw, a); err != nil {
		if lw.over {
			return nil, fmt.Errorf("the body exceeds %d bytes", maxBody)
		}
		return nil, err
	}
	b := buf.Bytes()
	if n.jsonBody {
		if err := checkJSON(b); err != nil {
			return nil, fmt.Errorf("the body is not valid JSON (content type %s): %v", n.contentType, err)
		}
	}
	return b, nil
}

// request builds the POST of a: its body, rendered and checked, and its
// headers, signed for this attempt's time.
func (n *Notifier) request(ctx context.Context, a *alert.Alert) (*http.Request, error) {
	body, err := n.body(a)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %v", n.scrub(err.Error()))
	}
	for k, v := range n.headers {
		req.Header[k] = v
	}
	if n.host != "" {
		req.Host = n.host
	}
	req.Header.Set("Content-Type", n.contentType)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", n.userAgent)
	}
	if !validMessageID(a.ID) {
		return nil, fmt.Errorf("the alert id %q cannot be sent in a header", a.ID)
	}
	req.Header.Set(AlertIDHeader, a.ID)
	if n.secret != nil {
		req.Header.Set(n.sigHeader, Sign(n.secret, body))
	}
	if n.signingKey != nil {
		ts := n.now().Unix()
		req.Header.Set(IDHeader, a.ID)
		req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		req.Header.Set(SignatureHeaderV1, SignV1(n.signingKey, a.ID, ts, body))
	}
	if err := checkHeaders(req.Header); err != nil {
		return nil, err
	}
	return req, nil
}

// checkHeaders returns an error if a request header's name or value could
// end the header early or smuggle another: control characters, CR and LF
// included. Values are not quoted (they may be secrets).
func checkHeaders(h http.Header) error {
	for k, vs := range h {
		if !validToken(k) {
			return fmt.Errorf("header %q is not a valid header name", k)
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
					return fmt.Errorf("header %s: the value has a control character", k)
				}
			}
		}
	}
	return nil
}

// Sign returns the signature header's value for body and key:
// "sha256=" followed by the lower-case hex HMAC-SHA256.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// AttemptTimeout returns the channel's timeout, plus alert.AttemptMargin.
func (n *Notifier) AttemptTimeout() time.Duration { return n.timeout + alert.AttemptMargin }

// Send POSTs a to the URL. It returns nil only for a 2xx response. A 3xx
// (redirects are not followed), 4xx or 5xx response is a *StatusError; a
// template, network or timeout failure is an error naming the channel and
// the redacted URL.
func (n *Notifier) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return n.errorf("no alert")
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := n.request(ctx, a)
	if err != nil {
		// Execution errors may quote alert data, such as a file name.
		return n.errorf("%s", cleanLine(err.Error(), 500))
	}

	start := time.Now()
	resp, err := n.client.Do(req)
	if err != nil {
		return n.errorf("POST %s: %s", n.shownURL, n.transportError(ctx, err, time.Since(start)))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxExcerpt))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	se := &StatusError{
		Channel:    n.name,
		URL:        n.shownURL,
		StatusCode: resp.StatusCode,
		Status:     cleanLine(n.scrub(resp.Status), 100),
		// Scrub before cutting, so that no part of a secret is left.
		Body:       cleanLine(n.scrub(string(excerpt)), maxExcerpt),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		if loc, err := resp.Location(); err == nil {
			se.Location = RedactURL(loc)
		}
	}
	return se
}

// transportError describes a failed round trip without the request URL
// (which net/http would show unredacted).
func (n *Notifier) transportError(ctx context.Context, err error, took time.Duration) string {
	msg, raw := notify.TransportError(ctx, err, took, n.timeout)
	if !raw {
		return msg
	}
	return cleanLine(n.scrub(msg), 300)
}

// errorf returns an error naming the channel.
func (n *Notifier) errorf(format string, args ...any) error {
	return fmt.Errorf("webhook %q: %s", n.name, fmt.Sprintf(format, args...))
}

// scrub replaces every configured secret in s with "xxxxx".
func (n *Notifier) scrub(s string) string {
	for _, sec := range n.secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	return s
}

// StatusError is a delivery the receiver answered with a status other than
// 2xx.
type StatusError struct {
	// Channel is the channel's name.
	Channel string
	// URL is the redacted URL.
	URL string
	// StatusCode is the HTTP status code, e.g. 503.
	StatusCode int
	// Status is the status line's text, e.g. "503 Service Unavailable".
	Status string
	// Body is a short, sanitized excerpt of the response body.
	Body string
	// Location is the redacted redirect target of a 3xx response.
	Location string
	// RetryAfter is the delay the receiver asked for in Retry-After, or 0.
	RetryAfter time.Duration
}

// Error describes the failure with the status and the body excerpt.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook %q: POST %s: HTTP %s", e.Channel, e.URL, e.Status)
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		b.WriteString(" (redirects are not followed")
		if e.Location != "" {
			b.WriteString("; Location: " + e.Location)
		}
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		b.WriteString(": \"" + e.Body + "\"")
	}
	return b.String()
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
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

// urlSecrets returns the parts of u that must not be shown.
func urlSecrets(u *url.URL) []string {
	var s []string
	add := func(v string) {
		if len(v) >= 3 {
			s = append(s, v)
			if e := url.QueryEscape(v); e != v {
				s = append(s, e)
			}
		}
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
			// As the URL writes it, and the basic credentials net/http
			// sends for it.
			_, written, _ := strings.Cut(u.User.String(), ":")
			add(written)
			add(base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + p)))
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
			add(v)
		}
	}
	return s
}

// headerSecrets returns the parts of a configured header value to scrub:
// the value and, for "scheme credentials" values such as "Bearer abc", the
// credentials alone. Values shorter than six bytes are not scrubbed (they
// would mangle messages and are no credentials).
func headerSecrets(v string) []string {
	var s []string
	if len(v) >= 6 {
		s = append(s, v)
	}
	if _, cred, ok := strings.Cut(v, " "); ok && len(cred) >= 6 {
		s = append(s, strings.TrimSpace(cred))
	}
	return s
}

// sortSecrets orders secrets longest first, so that a secret containing
// another is replaced whole.
func sortSecrets(s []string) {
	sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
}

// cleanLine makes s one printable line of at most max bytes, escaping
// control characters and invalid UTF-8 and noting truncation.
func cleanLine(s string, max int) string {
	s = strings.TrimSpace(s)
	truncated := false
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
		truncated = true
	}
	s = event.Clean(strings.ToValidUTF8(s, "\uFFFD"))
	if truncated {
		s += "…"
	}
	return s
}

// validToken reports whether s is a valid HTTP header name (an RFC 9110
// token).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseContentType returns the media type of a Content-Type value, lower
// case and without parameters.
func parseContentType(v string) (string, error) {
	mt, _, _ := strings.Cut(v, ";")
	mt = strings.TrimSpace(mt)
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || !validToken(typ) || !validToken(sub) {
		return "", errors.New("invalid media type")
	}
	return strings.ToLower(mt), nil
}

// isJSONType reports whether the content type is JSON (application/json or
// any +json type).
func isJSONType(v string) bool {
	mt, err := parseContentType(v)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// limitedWriter fails writes beyond n bytes.
type limitedWriter struct {
	w    io.Writer
	n    int
	over bool
}

// Write writes p, or fails if that would exceed the limit.
func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.over = true
		return 0, errors.New("body too large")
	}
	l.n -= len(p)
	return l.w.Write(p)
}
