package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxExcerpt caps the part of a receiver's response quoted in an error.
const MaxExcerpt = 200

// ValidHeaderName reports whether s is a valid HTTP header name (an RFC
// 9110 token).
func ValidHeaderName(s string) bool {
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

// ValidHeaderValue reports whether s has no control character but tab: no
// CR or LF that could end the header early or smuggle another.
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Header is one configured request header, its name canonical.
type Header struct {
	Name, Value string
}

// ConfiguredHeaders checks the configured extra headers and returns them
// sorted by name, with canonical names; every value is recorded in
// secrets. The error names a bad header (never its value).
func ConfiguredHeaders(h map[string]string, secrets *Secrets) ([]Header, error) {
	out := make([]Header, 0, len(h))
	for k, v := range h {
		if !ValidHeaderName(k) {
			return nil, fmt.Errorf("header %q is not a valid header name", k)
		}
		if !ValidHeaderValue(v) {
			return nil, fmt.Errorf("header %s: the value has a control character", k)
		}
		secrets.AddHeader(v)
		out = append(out, Header{http.CanonicalHeaderKey(k), v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckRequestHeaders returns an error if a request header's name or value
// could end the header early or smuggle another. Values are not quoted
// (they may be secrets).
func CheckRequestHeaders(h http.Header) error {
	for k, vs := range h {
		if !ValidHeaderName(k) {
			return fmt.Errorf("header %q is not a valid header name", k)
		}
		for _, v := range vs {
			if !ValidHeaderValue(v) {
				return fmt.Errorf("header %s: the value has a control character", k)
			}
		}
	}
	return nil
}

// Client POSTs alerts over HTTP for one channel. It never follows a
// redirect (the 3xx is a failure, so an alert and its credentials never go
// to a URL nobody configured), bounds every attempt by its timeout, and
// reports every failure without the request URL and with the channel's
// secrets scrubbed. It is safe for concurrent use.
type Client struct {
	timeout   time.Duration
	secrets   *Secrets
	client    *http.Client
	transport *http.Transport
}

// NewClient returns a client whose attempts take at most timeout and whose
// errors are scrubbed of secrets.
func NewClient(timeout time.Duration, secrets *Secrets) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	return &Client{
		timeout:   timeout,
		secrets:   secrets,
		transport: tr,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Timeout returns the client's timeout.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Close releases idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Post sends req within the client's timeout; shown is the request URL
// redacted for messages. It returns nil only for a 2xx response; a 3xx,
// 4xx or 5xx response is a *StatusError; a network failure, timeout or
// cancellation is an error "POST <shown>: <what happened>".
func (c *Client) Post(req *http.Request, shown string) error {
	ctx, cancel := context.WithTimeout(req.Context(), c.timeout)
	defer cancel()
	req = req.WithContext(ctx)
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %s", shown, c.transportError(ctx, err, time.Since(start)))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 4*MaxExcerpt))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	se := &StatusError{
		URL:        shown,
		StatusCode: resp.StatusCode,
		Status:     Line(c.secrets.Scrub(resp.Status), 100),
		// Scrub before cutting, so that no part of a secret is left.
		Body:       Line(c.secrets.Scrub(responseText(excerpt)), MaxExcerpt),
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
// (which net/http's errors show unredacted, secrets included).
func (c *Client) transportError(ctx context.Context, err error, took time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s (timeout %s)", took.Round(time.Millisecond), c.timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return Line(c.secrets.Scrub(err.Error()), 300)
}

// responseText returns the text of an error response: a body that is a
// JSON string (as Alertmanager's errors are) or an object with a "message"
// (as many APIs answer) gives that text; any other body is taken as it is.
func responseText(b []byte) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &o) == nil && o.Message != "" {
		return o.Message
	}
	return string(b)
}

// StatusError is a POST the receiver answered with a status other than
// 2xx.
type StatusError struct {
	// URL is the redacted request URL.
	URL string
	// StatusCode is the HTTP status code, e.g. 503.
	StatusCode int
	// Status is the status line's text, e.g. "503 Service Unavailable".
	Status string
	// Body is a short, sanitized excerpt of the response body (for a JSON
	// string or an object with a message, that text).
	Body string
	// Location is the redacted redirect target of a 3xx response.
	Location string
	// RetryAfter is the delay the receiver asked for in Retry-After, or 0.
	RetryAfter time.Duration
}

// Error describes the failure with the status and the body excerpt.
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s: HTTP %s", e.URL, e.Status)
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
