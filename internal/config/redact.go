package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// redactedValue replaces secrets in Redacted's dump.
const redactedValue = "<redacted>"

// The show* types are the TOML form of a Config, for Redacted.

type showConfig struct {
	StateDir      string             `toml:"state_dir"`
	Hostname      string             `toml:"hostname,omitempty"`
	Watch         showWatch          `toml:"watch"`
	Metrics       showMetrics        `toml:"metrics"`
	History       showHistory        `toml:"history"`
	Delivery      showDelivery       `toml:"delivery"`
	Flood         showFlood          `toml:"flood"`
	Journal       showJournal        `toml:"journal"`
	Hooks         showHooks          `toml:"hooks"`
	Actions       showActions        `toml:"actions"`
	Webhooks      []showWebhook      `toml:"webhook,omitempty"`
	SMTP          []showSMTP         `toml:"smtp,omitempty"`
	Alertmanagers []showAlertmanager `toml:"alertmanager,omitempty"`
	Rules         []showRule         `toml:"rule"`
}

type showWatch struct {
	Paths         []string `toml:"paths"`
	KernelLog     bool     `toml:"kernel_log"`
	KernelLogHold string   `toml:"kernel_log_hold"`
}

type showMetrics struct {
	Listen string `toml:"listen"`
}

type showHistory struct {
	Retention string `toml:"retention"`
}

type showDelivery struct {
	InitialBackoff string `toml:"initial_backoff"`
	MaxBackoff     string `toml:"max_backoff"`
	MaxAge         string `toml:"max_age"`
}

type showFlood struct {
	Window          string `toml:"window"`
	ReminderInitial string `toml:"reminder_initial"`
	ReminderMax     string `toml:"reminder_max"`
}

type showJournal struct {
	Mode string `toml:"mode"`
}

type showHooks struct {
	Dir           string `toml:"dir,omitempty"`
	Timeout       string `toml:"timeout"`
	MaxConcurrent int    `toml:"max_concurrent"`
	User          string `toml:"user,omitempty"`
	Group         string `toml:"group,omitempty"`
	Isolation     string `toml:"isolation"`
}

type showActions struct {
	DryRun  bool   `toml:"dry_run"`
	Timeout string `toml:"timeout,omitempty"`
}

type showWebhook struct {
	Name            string            `toml:"name"`
	URL             string            `toml:"url"`
	Headers         map[string]string `toml:"headers,omitempty"`
	Template        string            `toml:"template,omitempty"`
	ContentType     string            `toml:"content_type"`
	Secret          string            `toml:"secret,omitempty"`
	SigningSecret   string            `toml:"signing_secret,omitempty"`
	SignatureHeader string            `toml:"signature_header"`
	Timeout         string            `toml:"timeout"`
}

type showSMTP struct {
	Name                string   `toml:"name"`
	Via                 string   `toml:"via"`
	Sendmail            string   `toml:"sendmail,omitempty"`
	Host                string   `toml:"host,omitempty"`
	Port                int      `toml:"port,omitzero"`
	From                string   `toml:"from"`
	To                  []string `toml:"to"`
	Username            string   `toml:"username,omitempty"`
	Password            string   `toml:"password,omitempty"`
	TLS                 string   `toml:"tls,omitempty"`
	CAFile              string   `toml:"ca_file,omitempty"`
	TLSFingerprints     []string `toml:"tls_fingerprint,omitempty"`
	AllowUnverifiedAuth bool     `toml:"allow_unverified_auth,omitempty"`
	Timeout             string   `toml:"timeout"`
	SubjectPrefix       string   `toml:"subject_prefix"`
}

type showAlertmanager struct {
	Name           string            `toml:"name"`
	URLs           []string          `toml:"urls"`
	Timeout        string            `toml:"timeout"`
	Headers        map[string]string `toml:"headers,omitempty"`
	Username       string            `toml:"username,omitempty"`
	Password       string            `toml:"password,omitempty"`
	ResendInterval string            `toml:"resend_interval"`
	Labels         map[string]string `toml:"labels,omitempty"`
}

type showRule struct {
	Name     string   `toml:"name"`
	Severity string   `toml:"severity"`
	Channels []string `toml:"channels"`
	DryRun   bool     `toml:"dry_run"`
	// ActOnKernelLog is shown only when set.
	ActOnKernelLog bool         `toml:"act_on_kernel_log,omitempty"`
	Match          *showMatch   `toml:"match,omitempty"`
	Actions        []showAction `toml:"actions,omitempty"`
}

type showMatch struct {
	Mountpoint []string `toml:"mountpoint,omitempty"`
	UUID       []string `toml:"uuid,omitempty"`
	Device     []string `toml:"device,omitempty"`
	FSType     []string `toml:"fstype,omitempty"`
	Errno      []string `toml:"errno,omitempty"`
	Count      uint64   `toml:"count,omitzero"`
	Within     string   `toml:"within,omitempty"`
}

type showAction struct {
	Name    string   `toml:"name"`
	Argv    []string `toml:"argv,omitempty"`
	Timeout string   `toml:"timeout,omitempty"`
	Repeat  bool     `toml:"repeat"`
	DryRun  bool     `toml:"dry_run"`
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redactedValue
}

func redactHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k := range h {
		out[k] = redactedValue
	}
	return out
}

func safeURLs(us []string) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = safeURL(u)
	}
	return out
}

// Redacted returns c as a TOML configuration file, with every default
// filled in and every secret — webhook secrets, passwords, header values,
// the user information and query values of URLs — replaced by
// "<redacted>". It is what `fshealth check-config --show` prints.
func (c *Config) Redacted() string {
	s := showConfig{
		StateDir: c.StateDir,
		Hostname: c.Hostname,
		Watch:    showWatch{Paths: c.Watch.Paths, KernelLog: c.Watch.KernelLog, KernelLogHold: FormatDuration(c.Watch.KernelLogHold)},
		Metrics:  showMetrics{Listen: c.Metrics.Listen},
		History:  showHistory{Retention: FormatDuration(c.History.Retention)},
		Delivery: showDelivery{
			InitialBackoff: FormatDuration(c.Delivery.InitialBackoff),
			MaxBackoff:     FormatDuration(c.Delivery.MaxBackoff),
			MaxAge:         FormatDuration(c.Delivery.MaxAge),
		},
		Flood: showFlood{
			Window:          FormatDuration(c.Flood.Window),
			ReminderInitial: FormatDuration(c.Flood.ReminderInitial),
			ReminderMax:     FormatDuration(c.Flood.ReminderMax),
		},
		Journal: showJournal{Mode: c.Journal.Mode},
		Hooks: showHooks{
			Dir:           c.Hooks.Dir,
			Timeout:       FormatDuration(c.Hooks.Timeout),
			MaxConcurrent: c.Hooks.MaxConcurrent,
			User:          c.Hooks.User,
			Group:         c.Hooks.Group,
			Isolation:     c.Hooks.Isolation,
		},
		Actions: showActions{DryRun: c.Actions.DryRun, Timeout: formatOptionalDuration(c.Actions.Timeout)},
	}
	if s.Watch.Paths == nil {
		s.Watch.Paths = []string{}
	}
	for _, w := range c.Webhooks {
		s.Webhooks = append(s.Webhooks, showWebhook{
			Name:            w.Name,
			URL:             safeURL(w.URL),
			Headers:         redactHeaders(w.Headers),
			Template:        w.Template,
			ContentType:     w.ContentType,
			Secret:          redact(w.Secret),
			SigningSecret:   redact(w.SigningSecret),
			SignatureHeader: w.SignatureHeader,
			Timeout:         FormatDuration(w.Timeout),
		})
	}
	for _, m := range c.SMTP {
		s.SMTP = append(s.SMTP, showSMTP{
			Name:                m.Name,
			Via:                 m.Via,
			Sendmail:            m.Sendmail,
			Host:                m.Host,
			Port:                m.Port,
			From:                m.From,
			To:                  m.To,
			Username:            m.Username,
			Password:            redact(m.Password),
			TLS:                 m.TLS,
			CAFile:              m.CAFile,
			TLSFingerprints:     m.TLSFingerprints,
			AllowUnverifiedAuth: m.AllowUnverifiedAuth,
			Timeout:             FormatDuration(m.Timeout),
			SubjectPrefix:       m.SubjectPrefix,
		})
	}
	for _, a := range c.Alertmanagers {
		s.Alertmanagers = append(s.Alertmanagers, showAlertmanager{
			Name:           a.Name,
			URLs:           safeURLs(a.URLs),
			Timeout:        FormatDuration(a.Timeout),
			Headers:        redactHeaders(a.Headers),
			Username:       a.Username,
			Password:       redact(a.Password),
			ResendInterval: FormatDuration(a.ResendInterval),
			Labels:         a.Labels,
		})
	}
	for _, r := range c.Rules {
		sr := showRule{Name: r.Name, Severity: r.Severity, Channels: r.Channels, DryRun: r.DryRun, ActOnKernelLog: r.ActOnKernelLog}
		if sr.Channels == nil {
			sr.Channels = []string{}
		}
		if !r.Match.IsEmpty() {
			m := r.Match
			sm := &showMatch{Mountpoint: m.Mountpoint, UUID: m.UUID, Device: m.Device, FSType: m.FSType, Count: m.Count}
			for _, e := range m.Errno {
				sm.Errno = append(sm.Errno, ErrnoName(e))
			}
			if m.Within > 0 {
				sm.Within = FormatDuration(m.Within)
			}
			sr.Match = sm
		}
		for _, a := range r.Actions {
			sr.Actions = append(sr.Actions, showAction{
				Name: a.Name, Argv: a.Argv, Timeout: formatOptionalDuration(a.Timeout), Repeat: a.Repeat, DryRun: a.DryRun,
			})
		}
		s.Rules = append(s.Rules, sr)
	}
	var b bytes.Buffer
	b.WriteString("# fshealth configuration")
	if c.File != "" {
		b.WriteString(" from " + strings.ReplaceAll(c.File, "\n", `\n`))
	}
	b.WriteString(", defaults filled in, secrets redacted.\n")
	for _, w := range c.Warnings {
		b.WriteString("# warning: " + strings.ReplaceAll(w, "\n", `\n`) + "\n")
	}
	b.WriteByte('\n')
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(s); err != nil {
		// Cannot happen with these types; say so rather than panic.
		b.WriteString("# error encoding the configuration: " + err.Error() + "\n")
	}
	return b.String()
}

// String returns c.Redacted(), so that printing a configuration never shows
// a secret.
func (c *Config) String() string { return c.Redacted() }

// String describes w without its secrets.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %q %s (headers %s, secret %s, signing secret %s)", w.Name, safeURL(w.URL), headerNames(w.Headers),
		orNone(redact(w.Secret)), orNone(redact(w.SigningSecret)))
}

// String describes s without its password.
func (s SMTP) String() string {
	if s.Via == ViaSendmail {
		return fmt.Sprintf("mail %q via %s from %q to %q", s.Name, s.Sendmail, s.From, s.To)
	}
	return fmt.Sprintf("smtp %q %s:%d tls=%s from %q to %q (user %q, password %s)",
		s.Name, s.Host, s.Port, s.TLS, s.From, s.To, s.Username, orNone(redact(s.Password)))
}

// String describes a without its secrets.
func (a Alertmanager) String() string {
	return fmt.Sprintf("alertmanager %q %q (headers %s, user %q, password %s)",
		a.Name, safeURLs(a.URLs), headerNames(a.Headers), a.Username, orNone(redact(a.Password)))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// headerNames lists the names of headers, not their secret values.
func headerNames(h map[string]string) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Sprintf("%q", names)
}

// formatOptionalDuration is FormatDuration, or "" for zero (not set).
func formatOptionalDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return FormatDuration(d)
}
