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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
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
	// Format, if set, names a built-in template (see Builtins) used
	// instead of Template, with its content type; ContentType must then be
	// empty or that type.
	Format string
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
	secrets     notify.Secrets
	client      *notify.Client
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
	if cfg.Format != "" {
		tmpl, ct, ok := Builtin(cfg.Format)
		switch {
		case !ok:
			return fail("%v", &FormatError{Name: cfg.Format})
		case cfg.Template != "":
			return fail("both a format and a template")
		case cfg.ContentType != "" && cfg.ContentType != ct:
			return fail("format %s is sent as %s, not %s", cfg.Format, ct, cfg.ContentType)
		}
		cfg.Template, cfg.ContentType = tmpl, ct
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
	n.userAgent = notify.UserAgent(cfg.Version)

	if cfg.URL == "" {
		return fail("no URL")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL in its error: do not show it.
		return fail("the URL does not parse")
	}
	n.url = u
	n.secrets.AddURL(u)
	n.shownURL = notify.RedactURL(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("URL %s: scheme must be http or https", n.shownURL)
	}
	if u.Host == "" {
		return fail("URL %s: no host", n.shownURL)
	}

	if !notify.ValidHeaderName(n.sigHeader) {
		return fail("signature header %q is not a valid header name", n.sigHeader)
	}
	if cfg.Secret != "" {
		n.secret = []byte(cfg.Secret)
		n.secrets.Add(cfg.Secret)
	}
	if cfg.SigningSecret != "" {
		key, err := ParseSigningSecret(cfg.SigningSecret)
		if err != nil {
			return fail("signing secret: %v", err)
		}
		n.signingKey = key
		n.secrets.Add(cfg.SigningSecret, strings.TrimPrefix(cfg.SigningSecret, SigningSecretPrefix))
	}
	headers, err := notify.ConfiguredHeaders(cfg.Headers, &n.secrets)
	if err != nil {
		return fail("%v", err)
	}
	for _, h := range headers {
		switch ck := h.Name; {
		case ck == "Host":
			n.host = h.Value
			continue
		case ck == "Content-Type":
			if cfg.ContentType != "" {
				return fail("both a content type and a Content-Type header")
			}
			n.contentType = h.Value
			continue
		case ck == "Content-Length" || ck == "Transfer-Encoding" || ck == "Connection":
			return fail("header %s cannot be set", ck)
		case ck == AlertIDHeader || ck == http.CanonicalHeaderKey(n.sigHeader) ||
			n.signingKey != nil && (ck == IDHeader || ck == TimestampHeader || ck == SignatureHeaderV1):
			return fail("header %s is set by fshealth", ck)
		}
		n.headers.Set(h.Name, h.Value)
	}
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

	n.client = notify.NewClient(n.timeout, &n.secrets)
	return n, nil
}

// Name returns the channel's name.
func (n *Notifier) Name() string { return n.name }

// Close releases idle connections. The Notifier must not be used after.
func (n *Notifier) Close() error {
	n.client.Close()
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
		return nil, fmt.Errorf("building the request: %v", n.secrets.Scrub(err.Error()))
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
	if err := notify.CheckRequestHeaders(req.Header); err != nil {
		return nil, err
	}
	return req, nil
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
// (redirects are not followed), 4xx or 5xx response is a
// *notify.StatusError; a template, network or timeout failure is an error
// naming the channel and the redacted URL.
func (n *Notifier) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return n.errorf("no alert")
	}
	req, err := n.request(ctx, a)
	if err != nil {
		// Execution errors may quote alert data, such as a file name.
		return n.errorf("%s", notify.Line(n.secrets.Scrub(err.Error()), 500))
	}
	if err := n.client.Post(req, n.shownURL); err != nil {
		return fmt.Errorf("webhook %q: %w", n.name, err)
	}
	return nil
}

// errorf returns an error naming the channel.
func (n *Notifier) errorf(format string, args ...any) error {
	return fmt.Errorf("webhook %q: %s", n.name, fmt.Sprintf(format, args...))
}

// parseContentType returns the media type of a Content-Type value, lower
// case and without parameters.
func parseContentType(v string) (string, error) {
	mt, _, _ := strings.Cut(v, ";")
	mt = strings.TrimSpace(mt)
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || !notify.ValidHeaderName(typ) || !notify.ValidHeaderName(sub) {
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
