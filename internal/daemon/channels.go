package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/notify/alertmanager"
	"github.com/fshealth/fshealth/internal/notify/hook"
	"github.com/fshealth/fshealth/internal/notify/journal"
	"github.com/fshealth/fshealth/internal/notify/smtp"
	"github.com/fshealth/fshealth/internal/notify/webhook"
)

// Channels are the notifiers built from a configuration, by name.
type Channels struct {
	// ByName holds every channel, the journal included.
	ByName map[string]alert.Notifier
	// Journal logs every event and alert; it is also the "journal" channel.
	Journal *journal.Writer
	// Alertmanagers are the Alertmanager channels, which need re-sends
	// while an incident is open.
	Alertmanagers []*alertmanager.Notifier
}

// BuildChannels creates every channel of c. Errors (a bad template, an
// address) name the channel. stderr is where the journal channel logs when
// journald is not used.
func BuildChannels(c *config.Config, version string, stderr io.Writer, log *slog.Logger) (*Channels, error) {
	jw, err := journal.New(journal.Config{Mode: c.Journal.Mode, Stderr: stderr})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	ch := &Channels{ByName: map[string]alert.Notifier{config.ChannelJournal: jw}, Journal: jw}
	add := func(n alert.Notifier, err error) error {
		if err != nil {
			return err
		}
		ch.ByName[n.Name()] = n
		return nil
	}
	var errs []error
	if c.Hooks.Dir != "" {
		errs = append(errs, add(hook.New(hook.Config{Name: config.ChannelHooks, Dir: c.Hooks.Dir, Timeout: c.Hooks.Timeout,
			MaxConcurrent: c.Hooks.MaxConcurrent, Logger: log, User: c.Hooks.User, Group: c.Hooks.Group, Isolation: c.Hooks.Isolation})))
	}
	for _, w := range c.Webhooks {
		errs = append(errs, add(webhook.New(webhook.Config{Name: w.Name, URL: w.URL, Headers: w.Headers, Template: w.Template, Format: w.Format,
			ContentType: w.ContentType, Secret: w.Secret, SigningSecret: w.SigningSecret, SignatureHeader: w.SignatureHeader, Timeout: w.Timeout,
			Version: version})))
	}
	for _, s := range c.SMTP {
		errs = append(errs, add(smtp.New(smtp.Config{Name: s.Name, Host: s.Host, Port: s.Port, From: s.From, To: s.To,
			Username: s.Username, Password: s.Password, TLS: s.TLS, Timeout: s.Timeout, SubjectPrefix: s.SubjectPrefix, Version: version,
			Via: s.Via, Sendmail: s.Sendmail, CAFile: s.CAFile, TLSFingerprints: s.TLSFingerprints,
			AllowUnverifiedAuth: s.AllowUnverifiedAuth, Logger: log})))
	}
	for _, a := range c.Alertmanagers {
		n, err := alertmanager.New(alertmanager.Config{Name: a.Name, URLs: a.URLs, Timeout: a.Timeout, Headers: a.Headers,
			Username: a.Username, Password: a.Password, ResendInterval: a.ResendInterval, ExtraLabels: a.Labels,
			Version: version, Logger: log})
		if err == nil {
			ch.Alertmanagers = append(ch.Alertmanagers, n)
		}
		errs = append(errs, add(n, err))
	}
	if err := errors.Join(errs...); err != nil {
		ch.Close()
		return nil, err
	}
	return ch, nil
}

// Close releases what the channels hold (idle connections, sockets).
func (c *Channels) Close() {
	for _, n := range c.ByName {
		if cl, ok := n.(io.Closer); ok {
			cl.Close()
		}
	}
}
