// Package alertmanager delivers alerts to Prometheus Alertmanager through its
// API v2 (POST /api/v2/alerts).
//
// Every incident (a file system and an error kind) is one Alertmanager alert,
// identified by its labels: alertname="FilesystemError", instance (the host),
// device, mountpoint (the first one), fstype, uuid, errno, severity, the
// configured extra labels, and test="true" for test alerts. Labels with an
// empty value are left out, as Alertmanager itself drops them.
//
// Alertmanager forgets a firing alert once its endsAt has passed, so an open
// incident has to be re-sent: an alert of type error, digest or reminder is
// sent with endsAt = now + 3 × ResendInterval, and the daemon re-sends the
// incident's latest alert every ResendInterval while the incident is open
// (up to two lost re-sends do not resolve it). An alert of type resolved is
// sent with the same labels and endsAt = now, which resolves it at once. A
// test alert carries test="true" and lives TestAlertLifetime.
//
// Strings from the kernel or the file system (mount points, labels, paths)
// are made valid UTF-8 with control characters escaped before they become
// label or annotation values, so a hostile mount point can neither break the
// request nor forge lines in the description.
//
// Nothing secret (the basic-auth password, header values, the URLs' user
// information) ever appears in an error.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify"
)

// Defaults and fixed values.
const (
	// AlertName is the alertname label of every alert fshealth sends.
	AlertName = "FilesystemError"
	// APIPath is appended to each base URL.
	APIPath = "/api/v2/alerts"
	// DefaultTimeout bounds one POST to one Alertmanager.
	DefaultTimeout = 10 * time.Second
	// DefaultResendInterval is ResendInterval when the configuration leaves
	// it zero.
	DefaultResendInterval = 5 * time.Minute
	// EndsAtFactor times ResendInterval is how long a firing alert stays
	// firing in Alertmanager after it was last sent.
	EndsAtFactor = 3
	// TestAlertLifetime is how long a test alert stays firing.
	TestAlertLifetime = 5 * time.Minute
)

// maxLabelValue caps a label value, in bytes (cut at a rune boundary).
const maxLabelValue = 1024

// maxAnnotation caps an annotation value, in bytes.
const maxAnnotation = 16 << 10

// maxExcerpt caps the part of a response body quoted in an error.
const maxExcerpt = 200

// Config configures one Alertmanager channel.
type Config struct {
	// Name is the channel's name from the configuration; "alertmanager" if
	// empty.
	Name string
	// URLs are the base URLs of the Alertmanagers, e.g.
	// "http://127.0.0.1:9093" (a path prefix such as
	// "https://host/alertmanager" is kept). Every alert is POSTed to each
	// of them, as Alertmanager's high-availability setup expects; Send
	// succeeds when at least one accepted it. User information in a URL
	// ("http://user:pass@host:9093") is used as basic auth and never shown.
	URLs []string
	// Timeout bounds one POST to one Alertmanager; DefaultTimeout if zero.
	Timeout time.Duration
	// Headers are extra request headers (e.g. a tenant id or an
	// Authorization bearer token). They cannot replace Content-Type or
	// Content-Length. Their values are treated as secrets.
	Headers map[string]string
	// Username and Password, when Username is set, are sent as HTTP basic
	// auth to every URL.
	Username string
	Password string
	// ResendInterval is how often the daemon re-sends the alert of an open
	// incident; DefaultResendInterval if zero. A firing alert is sent with
	// endsAt = now + EndsAtFactor × ResendInterval, so Alertmanager resolves
	// it by itself when fshealth stops re-sending (e.g. fshealth was
	// stopped) for that long.
	ResendInterval time.Duration
	// ExtraLabels are added to every alert (e.g. env="prod"). They cannot
	// replace the labels fshealth sets.
	ExtraLabels map[string]string
	// GeneratorURL, if set, is sent as every alert's generatorURL (e.g. a
	// dashboard for the host); it must be an absolute http or https URL.
	GeneratorURL string
	// Version is fshealth's version, sent as User-Agent: fshealth/Version;
	// "dev" if empty.
	Version string
	// Logger, if set, receives a warning when some but not all of the
	// Alertmanagers failed (Send still succeeds then). Nil discards them.
	Logger *slog.Logger
}

// PostableAlert is one alert in the body of POST /api/v2/alerts.
type PostableAlert struct {
	// Labels identify the alert; Alertmanager de-duplicates on them.
	Labels map[string]string `json:"labels"`
	// Annotations carry the details; the latest sent wins.
	Annotations map[string]string `json:"annotations,omitempty"`
	// StartsAt is when the incident began.
	StartsAt time.Time `json:"startsAt,omitzero"`
	// EndsAt is when Alertmanager considers the alert resolved unless it
	// is sent again.
	EndsAt time.Time `json:"endsAt,omitzero"`
	// GeneratorURL links back to the alert's source.
	GeneratorURL string `json:"generatorURL,omitempty"`
}

// endpoint is one Alertmanager.
type endpoint struct {
	url   string // the POST URL, without user information
	shown string // the same, for errors
}

// Notifier is an Alertmanager channel. It implements alert.Notifier and is
// safe for concurrent use.
type Notifier struct {
	name         string
	endpoints    []endpoint
	headers      http.Header
	username     string
	password     string
	hasAuth      bool
	resend       time.Duration
	timeout      time.Duration
	extra        map[string]string
	generatorURL string
	userAgent    string
	secrets      []string
	logger       *slog.Logger
	client       *http.Client
	transport    *http.Transport
	now          func() time.Time
}

var _ alert.Notifier = (*Notifier)(nil)

// labelName is the label name syntax Alertmanager accepts.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ownLabels are the label names fshealth sets itself.
var ownLabels = map[string]bool{
	"alertname": true, "instance": true, "device": true, "mountpoint": true,
	"fstype": true, "uuid": true, "errno": true, "severity": true, "test": true,
}

// New checks cfg and returns the channel. Every problem is an error naming
// the channel: no URL or a bad one, a bad header, label or generator URL, a
// negative duration, credentials given twice.
func New(cfg Config) (*Notifier, error) {
	if cfg.Name == "" {
		cfg.Name = "alertmanager"
	}
	fail := func(format string, args ...any) (*Notifier, error) {
		return nil, fmt.Errorf("alertmanager %q: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	n := &Notifier{
		name:         cfg.Name,
		headers:      make(http.Header),
		username:     cfg.Username,
		password:     cfg.Password,
		hasAuth:      cfg.Username != "",
		resend:       cfg.ResendInterval,
		timeout:      cfg.Timeout,
		extra:        make(map[string]string),
		generatorURL: cfg.GeneratorURL,
		logger:       cfg.Logger,
		now:          time.Now,
	}
	if n.timeout < 0 {
		return fail("timeout must not be negative")
	}
	if n.timeout == 0 {
		n.timeout = DefaultTimeout
	}
	if n.resend < 0 {
		return fail("resend interval must not be negative")
	}
	if n.resend == 0 {
		n.resend = DefaultResendInterval
	}
	if cfg.Password != "" && cfg.Username == "" {
		return fail("a password is set but no username")
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	n.userAgent = "fshealth/" + version
	if n.password != "" {
		n.addSecret(n.password)
		n.addSecret(base64.StdEncoding.EncodeToString([]byte(n.username + ":" + n.password)))
	}

	if len(cfg.URLs) == 0 {
		return fail("no URL")
	}
	seen := make(map[string]bool)
	for i, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			// url.Parse quotes the whole URL, user information included.
			return fail("URL %d does not parse", i+1)
		}
		if u.User != nil {
			user := u.User.Username()
			pass, _ := u.User.Password()
			if pass != "" {
				n.addSecret(pass)
				n.addSecret(url.QueryEscape(pass))
			}
			u.User = nil
			if n.hasAuth && (user != n.username || pass != n.password) {
				return fail("URL %s has user information that differs from the configured basic auth", u.Redacted())
			}
			if user != "" && !n.hasAuth {
				n.username, n.password, n.hasAuth = user, pass, true
				if pass != "" {
					n.addSecret(base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)))
				}
			}
		}
		shown := u.String()
		if u.Scheme != "http" && u.Scheme != "https" {
			return fail("URL %s: scheme must be http or https", shown)
		}
		if u.Host == "" {
			return fail("URL %s has no host", shown)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return fail("URL %s: a base URL takes no query or fragment", shown)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + APIPath
		u.RawPath = ""
		post := u.String()
		if seen[post] {
			return fail("URL %s is listed twice", shown)
		}
		seen[post] = true
		n.endpoints = append(n.endpoints, endpoint{url: post, shown: post})
	}

	names := make([]string, 0, len(cfg.Headers))
	for k := range cfg.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := cfg.Headers[k]
		if !validHeaderName(k) {
			return fail("header name %q is not valid", k)
		}
		if !validHeaderValue(v) {
			return fail("header %s: the value has control characters", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Length", "Transfer-Encoding", "Host":
			return fail("header %s cannot be set", k)
		case "Authorization":
			if n.hasAuth {
				return fail("header Authorization conflicts with the basic auth")
			}
		}
		n.headers.Set(k, v)
		n.addSecret(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			n.addSecret(strings.TrimSpace(cred))
		}
	}

	for k, v := range cfg.ExtraLabels {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			return fail("extra label name %q is not valid (want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k)
		}
		if ownLabels[k] {
			return fail("extra label %q would replace a label fshealth sets", k)
		}
		if !utf8.ValidString(v) {
			return fail("extra label %s: the value is not valid UTF-8", k)
		}
		if v != "" {
			n.extra[k] = v
		}
	}

	if cfg.GeneratorURL != "" {
		u, err := url.Parse(cfg.GeneratorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("generator URL must be an absolute http or https URL")
		}
	}

	// Longest first, so that a secret containing another is scrubbed whole.
	sort.Slice(n.secrets, func(i, j int) bool { return len(n.secrets[i]) > len(n.secrets[j]) })

	n.transport = http.DefaultTransport.(*http.Transport).Clone()
	n.client = &http.Client{
		Transport: n.transport,
		// A redirect would POST the alert (and the credentials) somewhere
		// nobody configured, or turn it into a GET.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return n, nil
}

// addSecret records s to be scrubbed from errors; very short values are not
// worth it (and would mangle every message).
func (n *Notifier) addSecret(s string) {
	if len(s) >= 3 {
		n.secrets = append(n.secrets, s)
	}
}

// Name returns the channel's name.
func (n *Notifier) Name() string { return n.name }

// ResendInterval returns how often the daemon must re-send the latest alert
// of an open incident to keep it firing in Alertmanager.
func (n *Notifier) ResendInterval() time.Duration { return n.resend }

// Close releases idle connections. The Notifier must not be used after.
func (n *Notifier) Close() error {
	n.transport.CloseIdleConnections()
	return nil
}

// AttemptTimeout returns the channel's timeout, plus alert.AttemptMargin.
func (n *Notifier) AttemptTimeout() time.Duration { return n.timeout + alert.AttemptMargin }

// Send POSTs a, as one PostableAlert (see Payload), to every configured
// Alertmanager at once. It returns nil when at least one of them answered
// 2xx; otherwise an error naming the channel, the alert and every
// Alertmanager's failure (HTTP status and an excerpt of the response, or the
// network error), with secrets scrubbed.
func (n *Notifier) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return n.errorf("no alert")
	}
	body, err := json.Marshal([]PostableAlert{n.Payload(a, n.now())})
	if err != nil {
		return n.errorf("encoding alert %s: %v", event.Clean(a.ID), err)
	}
	errs := make([]error, len(n.endpoints))
	var wg sync.WaitGroup
	for i, ep := range n.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.post(ctx, ep, body)
		}()
	}
	wg.Wait()
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) < len(n.endpoints) {
		if len(failed) > 0 && n.logger != nil {
			n.logger.Warn("some Alertmanagers did not accept the alert",
				"channel", n.name, "alert_id", a.ID, "failures", strings.Join(failed, "; "))
		}
		return nil
	}
	if len(n.endpoints) == 1 {
		return n.errorf("alert %s not accepted: %s", event.Clean(a.ID), failed[0])
	}
	return n.errorf("alert %s not accepted by any of the %d Alertmanagers: %s",
		event.Clean(a.ID), len(n.endpoints), strings.Join(failed, "; "))
}

// post sends body to one Alertmanager.
func (n *Notifier) post(ctx context.Context, ep endpoint, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: building the request: %s", ep.shown, n.scrub(err.Error()))
	}
	for k, v := range n.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", n.userAgent)
	}
	if n.hasAuth {
		req.SetBasicAuth(n.username, n.password)
	}
	start := time.Now()
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %s", ep.shown, n.transportError(ctx, err, time.Since(start)))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	// Scrub before cleaning (which escapes backslashes) and cutting (which
	// could leave part of a secret).
	msg := fmt.Sprintf("POST %s: HTTP %s", ep.shown, cleanLine(n.scrub(resp.Status), 100))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		msg += " (redirects are not followed)"
	}
	if b := cleanLine(n.scrub(responseText(excerpt)), maxExcerpt); b != "" {
		msg += fmt.Sprintf(": %q", b)
	}
	return errors.New(msg)
}

// responseText returns Alertmanager's error text: its error bodies are a
// JSON string (e.g. "start time must be before end time") or an object with a
// message.
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

// transportError describes a failed round trip without the request URL.
func (n *Notifier) transportError(ctx context.Context, err error, took time.Duration) string {
	msg, raw := notify.TransportError(ctx, err, took, n.timeout)
	if !raw {
		return msg
	}
	return cleanLine(n.scrub(msg), 300)
}

// errorf returns an error that names the channel.
func (n *Notifier) errorf(format string, args ...any) error {
	return fmt.Errorf("alertmanager %q: %s", n.name, fmt.Sprintf(format, args...))
}

// scrub replaces every configured secret in s with "xxxxx".
func (n *Notifier) scrub(s string) string {
	for _, sec := range n.secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	return s
}

// Labels returns the labels that identify a's incident in Alertmanager: the
// same for every alert of the incident (error, digest, reminder, resolved) as
// long as its file system's identity and the severity stay the same.
func (n *Notifier) Labels(a *alert.Alert) map[string]string {
	l := make(map[string]string, 9+len(n.extra))
	for k, v := range n.extra {
		l[k] = v
	}
	set := func(k, v string) {
		if v = labelValue(v); v != "" {
			l[k] = v
		}
	}
	l["alertname"] = AlertName
	set("instance", a.Host)
	set("device", a.Filesystem.Device)
	if len(a.Filesystem.Mountpoints) > 0 {
		set("mountpoint", a.Filesystem.Mountpoints[0])
	}
	set("fstype", a.Filesystem.FSType)
	set("uuid", a.Filesystem.UUID)
	set("errno", a.ErrorKind)
	set("severity", a.Severity)
	if isTest(a) {
		l["test"] = "true"
	}
	return l
}

// Payload returns the alert POSTed for a at time now: Labels, the
// annotations (summary, description, alert_id, alert_type, event_id, count,
// since, rule, and when known mountpoints, inode and path), startsAt (a.Since,
// or a.Time) and endsAt (see the package documentation).
func (n *Notifier) Payload(a *alert.Alert, now time.Time) PostableAlert {
	p := PostableAlert{
		Labels:       n.Labels(a),
		Annotations:  annotations(a),
		GeneratorURL: n.generatorURL,
	}
	p.StartsAt = a.Since
	if p.StartsAt.IsZero() {
		p.StartsAt = a.Time
	}
	if p.StartsAt.IsZero() {
		p.StartsAt = now
	}
	switch {
	case a.Type == alert.TypeResolved:
		p.EndsAt = now
	case isTest(a):
		p.StartsAt = now
		if !a.Time.IsZero() && a.Time.Before(now) {
			p.StartsAt = a.Time
		}
		p.EndsAt = now.Add(TestAlertLifetime)
	default:
		p.EndsAt = now.Add(EndsAtFactor * n.resend)
	}
	if !p.StartsAt.Before(p.EndsAt) {
		// Alertmanager refuses an alert that ends before it starts (a
		// resolved alert whose clock ran behind, a Since in the future).
		p.StartsAt = p.EndsAt.Add(-time.Second)
	}
	p.StartsAt = p.StartsAt.UTC()
	p.EndsAt = p.EndsAt.UTC()
	return p
}

// isTest reports whether a was sent by `fshealth test-alert`.
func isTest(a *alert.Alert) bool { return a.Test || a.Type == alert.TypeTest }

// annotations returns a's annotations.
func annotations(a *alert.Alert) map[string]string {
	m := map[string]string{
		"summary":     annotation(summary(a)),
		"description": annotation(Description(a)),
		"alert_id":    annotation(event.Clean(a.ID)),
		"alert_type":  annotation(event.Clean(a.Type)),
		"count":       strconv.FormatUint(a.Count, 10),
	}
	// set adds a one-line annotation; control characters are escaped.
	set := func(k, v string) {
		if v = annotation(event.Clean(v)); v != "" {
			m[k] = v
		}
	}
	if !a.Since.IsZero() {
		m["since"] = a.Since.UTC().Format(time.RFC3339)
	}
	set("rule", a.Rule)
	set("label", a.Filesystem.Label)
	if len(a.Filesystem.Mountpoints) > 0 {
		m["mountpoints"] = annotation(joinSafe(a.Filesystem.Mountpoints))
	}
	if e := a.Event; e != nil {
		set("event_id", e.ID)
		if e.Inode != nil {
			m["inode"] = strconv.FormatUint(*e.Inode, 10)
		}
		set("path", e.Path)
	}
	return m
}

// summary is the one-line summary annotation.
func summary(a *alert.Alert) string {
	var b strings.Builder
	switch {
	case isTest(a):
		b.WriteString("TEST: ")
	case a.Type == alert.TypeResolved:
		b.WriteString("resolved: ")
	}
	s := a.Summary
	if s == "" {
		s = fallbackSummary(a)
	}
	b.WriteString(event.Clean(s))
	if a.Host != "" {
		b.WriteString(" on ")
		b.WriteString(event.Safe(a.Host))
	}
	return b.String()
}

// fallbackSummary describes a when it has no Summary.
func fallbackSummary(a *alert.Alert) string {
	kind := a.ErrorKind
	if kind == "" {
		kind = "file system error"
	}
	dev := a.Filesystem.Device
	if dev == "" {
		dev = "unknown device"
	}
	return kind + " on " + dev
}

// Description returns the multi-line description annotation of a: what
// happened, on which file system, how many errors since when, the inode and
// path, the error text and ext4's recorded error state. Every string from
// the kernel or the file system is escaped (event.Safe / event.Clean), so no
// line can be forged.
func Description(a *alert.Alert) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	fs := a.Filesystem
	since := ""
	if !a.Since.IsZero() {
		since = " since " + a.Since.UTC().Format(time.RFC3339)
	}
	switch {
	case isTest(a):
		line("This is a test alert sent by `fshealth test-alert`; nothing is wrong.")
	case a.Type == alert.TypeResolved:
		line("The incident has ended: no more %s errors on this file system.", orDash(event.Safe(a.ErrorKind)))
	case a.Type == alert.TypeDigest:
		line("%d more %s error(s)%s.", a.Count, event.Safe(a.ErrorKind), since)
	case a.Type == alert.TypeReminder:
		line("The file system is still unhealthy: %d %s error(s)%s.", a.Count, event.Safe(a.ErrorKind), since)
	default:
		line("The file system reported %d %s error(s)%s.", a.Count, event.Safe(a.ErrorKind), since)
	}
	dev := "unknown device"
	if fs.Device != "" {
		dev = event.Safe(fs.Device)
	}
	s := "File system: " + dev
	if fs.FSType != "" {
		s += " (" + event.Safe(fs.FSType) + ")"
	}
	if len(fs.Mountpoints) > 0 {
		s += " mounted at " + joinSafe(fs.Mountpoints)
	}
	line("%s", s)
	if fs.UUID != "" || fs.Label != "" {
		s := "UUID " + orDash(event.Safe(fs.UUID))
		if fs.Label != "" {
			s += ", label " + event.Safe(fs.Label)
		}
		line("%s", s)
	}
	if a.Host != "" {
		line("Host: %s", event.Safe(a.Host))
	}
	if e := a.Event; e != nil {
		if e.Error != "" {
			line("Error: %s (%s), errno %d", event.Safe(e.Error), event.Clean(e.ErrorText), e.Errno)
		}
		if e.Inode != nil {
			s := fmt.Sprintf("Inode: %d", *e.Inode)
			if e.Generation != nil {
				s += fmt.Sprintf(" (generation %d)", *e.Generation)
			}
			line("%s", s)
		}
		switch {
		case e.Path != "":
			line("Path: %s", event.Safe(e.Path))
		case e.PathError != "":
			line("Path: unknown (%s)", event.Clean(e.PathError))
		}
		if st := e.Ext4; st != nil {
			s := fmt.Sprintf("ext4 recorded state: %d error(s) since the last fsck", st.ErrorsCount)
			if l := st.LastError; l != nil {
				s += fmt.Sprintf("; the last at %s in %s:%d", l.Time.UTC().Format(time.RFC3339), event.Safe(l.Function), l.Line)
				if l.Inode != 0 {
					s += fmt.Sprintf(" inode %d", l.Inode)
				}
				if l.Block != 0 {
					s += fmt.Sprintf(" block %d", l.Block)
				}
				if l.Error != "" {
					s += " " + event.Safe(l.Error)
				}
			}
			line("%s", s)
		}
		if e.Message != "" {
			line("Note: %s", event.Clean(e.Message))
		}
	}
	if a.Rule != "" {
		line("Rule: %s", event.Safe(a.Rule))
	}
	line("Alert id: %s", event.Safe(a.ID))
	return strings.TrimSuffix(b.String(), "\n")
}

// orDash returns s, or "-" for an empty (or empty-quoted) string.
func orDash(s string) string {
	if s == "" || s == `""` {
		return "-"
	}
	return s
}

// joinSafe joins strings from the file system, each made safe.
func joinSafe(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = event.Safe(s)
	}
	return strings.Join(out, ", ")
}

// labelValue makes s a valid, single-line label value of bounded length:
// invalid UTF-8 and control characters are escaped Go-style.
func labelValue(s string) string {
	return truncate(event.Clean(s), maxLabelValue)
}

// annotation makes s valid UTF-8 of bounded length. Newlines are kept
// (descriptions are multi-line); other control characters never reach here
// unescaped, because every piece is escaped where it is assembled.
func annotation(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return truncate(s, maxAnnotation)
}

// truncate cuts s to at most max bytes at a rune boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// cleanLine makes s one printable line of at most max bytes.
func cleanLine(s string, max int) string {
	return truncate(strings.TrimSpace(event.Clean(s)), max)
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
