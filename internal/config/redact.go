package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/fshealth/fshealth/internal/event"
)

// redactedValue replaces secrets in Redacted's dump.
const redactedValue = "<redacted>"

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

// fileOf returns c as a configuration file says it, with every default
// filled in and every secret — webhook secrets, passwords, header values,
// the user information and query values of URLs — replaced by
// "<redacted>".
func fileOf(c *Config) *fileConfig {
	dur := func(d time.Duration) duration { return duration(FormatDuration(d)) }
	f := &fileConfig{
		StateDir: c.StateDir,
		Hostname: c.Hostname,
		Watch:    fileWatch{Paths: append(stringList{}, c.Watch.Paths...), KernelLog: c.Watch.KernelLog, KernelLogHold: dur(c.Watch.KernelLogHold)},
		Metrics:  fileMetrics{Listen: c.Metrics.Listen},
		History:  fileHistory{Retention: dur(c.History.Retention)},
		Delivery: fileDelivery{InitialBackoff: dur(c.Delivery.InitialBackoff), MaxBackoff: dur(c.Delivery.MaxBackoff), MaxAge: dur(c.Delivery.MaxAge)},
		Flood:    fileFlood{Window: dur(c.Flood.Window), ReminderInitial: dur(c.Flood.ReminderInitial), ReminderMax: dur(c.Flood.ReminderMax)},
		Journal:  fileJournal{Mode: c.Journal.Mode},
		Hooks: fileHooks{
			Dir: c.Hooks.Dir, Timeout: dur(c.Hooks.Timeout), MaxConcurrent: int64(c.Hooks.MaxConcurrent),
			User: c.Hooks.User, Group: c.Hooks.Group, Isolation: c.Hooks.Isolation,
		},
		Actions: fileActions{DryRun: c.Actions.DryRun, Timeout: optionalDuration(c.Actions.Timeout)},
	}
	for _, w := range c.Webhooks {
		f.Webhooks = append(f.Webhooks, fileWebhook{
			Name:            w.Name,
			URL:             safeURL(w.URL),
			Template:        w.Template,
			Format:          w.Format,
			ContentType:     w.ContentType,
			Secret:          redact(w.Secret),
			SigningSecret:   redact(w.SigningSecret),
			SignatureHeader: w.SignatureHeader,
			Timeout:         dur(w.Timeout),
			fileHeaders:     fileHeaders{Headers: redactHeaders(w.Headers)},
		})
	}
	for _, m := range c.SMTP {
		f.SMTP = append(f.SMTP, fileSMTP{
			Name:                m.Name,
			Via:                 m.Via,
			Sendmail:            m.Sendmail,
			Host:                m.Host,
			Port:                int64(m.Port),
			From:                m.From,
			To:                  m.To,
			Username:            m.Username,
			Password:            redact(m.Password),
			TLS:                 m.TLS,
			CAFile:              m.CAFile,
			TLSFingerprints:     m.TLSFingerprints,
			AllowUnverifiedAuth: m.AllowUnverifiedAuth,
			Timeout:             dur(m.Timeout),
			SubjectPrefix:       m.SubjectPrefix,
		})
	}
	for _, a := range c.Alertmanagers {
		f.Alertmanagers = append(f.Alertmanagers, fileAlertmanager{
			Name:           a.Name,
			URLs:           safeURLs(a.URLs),
			Timeout:        dur(a.Timeout),
			Username:       a.Username,
			Password:       redact(a.Password),
			ResendInterval: dur(a.ResendInterval),
			Labels:         a.Labels,
			fileHeaders:    fileHeaders{Headers: redactHeaders(a.Headers)},
		})
	}
	for _, r := range c.Rules {
		fr := fileRule{Name: r.Name, Severity: r.Severity, Channels: append(stringList{}, r.Channels...), DryRun: r.DryRun, ActOnKernelLog: r.ActOnKernelLog}
		if m := r.Match; !m.IsEmpty() {
			fm := &fileMatch{Mountpoint: m.Mountpoint, UUID: m.UUID, Device: m.Device, FSType: m.FSType, Count: int64(m.Count), Within: optionalDuration(m.Within)}
			if len(m.Errno) > 0 {
				names := make([]string, len(m.Errno))
				for i, e := range m.Errno {
					names[i] = event.ErrnoName(e)
				}
				fm.Errno = names
			}
			fr.Match = fm
		}
		for _, a := range r.Actions {
			fr.Actions = append(fr.Actions, fileAction{
				Name: a.Name, Argv: a.Argv, Timeout: optionalDuration(a.Timeout), Repeat: a.Repeat, DryRun: a.DryRun,
			})
		}
		f.Rules = append(f.Rules, fr)
	}
	return f
}

// Redacted returns c as a TOML configuration file, with every default
// filled in and every secret — webhook secrets, passwords, header values,
// the user information and query values of URLs — replaced by
// "<redacted>". It is what `fshealth check-config --show` prints.
func (c *Config) Redacted() string {
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
	if err := toml.NewEncoder(&b).Encode(fileOf(c)); err != nil {
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

// optionalDuration is FormatDuration, or "" for zero (not set).
func optionalDuration(d time.Duration) duration {
	if d == 0 {
		return ""
	}
	return duration(FormatDuration(d))
}
