package config

import (
	"fmt"
	"slices"
	"strconv"
)

// Overrides are the daemon's command line flags that override the file.
// A nil pointer or an empty list leaves the file's setting alone.
type Overrides struct {
	// StateDir is --state-dir.
	StateDir *string
	// Webhooks are the --webhook URLs; each becomes a channel named
	// "webhook-flag-1", "webhook-flag-2"... with default settings.
	Webhooks []string
	// Alertmanagers are the --alertmanager URLs; each becomes a channel
	// named "alertmanager-flag-1"...
	Alertmanagers []string
	// HooksDir is --hooks-dir; an empty string turns hooks off.
	HooksDir *string
	// MetricsListen is --metrics-listen; an empty string turns metrics
	// off.
	MetricsListen *string
	// Hostname is --hostname: the host name alerts carry (in a container,
	// the node's name rather than the pod's).
	Hostname *string
}

// ApplyOverrides applies the command line flags o to c. Channels added by
// flags (and the hooks channel, when --hooks-dir sets one) are used by the
// last rule, the one without match conditions, as well as by every rule
// whose channels say "all". On error c is left unchanged; the error is an
// *Error whose problems name the flag, e.g. `--webhook: not an absolute
// http(s) URL: "ftp://x"`.
func (c *Config) ApplyOverrides(o Overrides) error {
	var problems, warnings []Problem
	bad := func(list *[]Problem, flag, format string, args ...any) {
		*list = append(*list, Problem{Key: flag, Message: fmt.Sprintf(format, args...)})
	}
	if o.StateDir != nil {
		if msg := checkAbsPath(*o.StateDir); msg != "" {
			bad(&problems, "--state-dir", "%s", msg)
		}
	}
	if o.HooksDir != nil && *o.HooksDir != "" {
		if msg := checkAbsPath(*o.HooksDir); msg != "" {
			bad(&problems, "--hooks-dir", "%s", msg)
		} else {
			for _, msg := range checkHooks(*o.HooksDir) {
				bad(&problems, "--hooks-dir", "%s", msg)
			}
		}
	}
	if o.MetricsListen != nil {
		if msg, warn := checkListen(*o.MetricsListen); msg != "" {
			bad(&problems, "--metrics-listen", "%s", msg)
		} else if warn != "" {
			bad(&warnings, "--metrics-listen", "%s", warn)
		}
	}
	if o.Hostname != nil {
		if msg := checkHostname(*o.Hostname); msg != "" {
			bad(&problems, "--hostname", "%s", msg)
		}
	}
	if o.HooksDir != nil && *o.HooksDir == "" {
		for i := range c.Rules {
			if slices.Contains(c.Rules[i].Channels, ChannelHooks) {
				bad(&problems, "--hooks-dir", "cannot turn hooks off: rule %q sends to the %q channel", c.Rules[i].Name, ChannelHooks)
			}
		}
	}
	existing := c.ChannelNames()
	var added []string
	var webhooks []Webhook
	for i, u := range o.Webhooks {
		name := "webhook-flag-" + strconv.Itoa(i+1)
		if msg := checkHTTPURL(u); msg != "" {
			bad(&problems, "--webhook", "%s", msg)
		} else if slices.Contains(existing, name) {
			bad(&problems, "--webhook", "channel name %q is already used in the configuration file", name)
		} else if warn := plainHTTPCredentials(u, nil, false); warn != "" {
			bad(&warnings, "--webhook", "%s", warn)
		}
		webhooks = append(webhooks, Webhook{
			Name: name, URL: u, ContentType: DefaultContentType,
			SignatureHeader: DefaultSignatureHeader, Timeout: DefaultWebhookTimeout, FromFlag: true,
		})
		added = append(added, name)
	}
	var ams []Alertmanager
	for i, u := range o.Alertmanagers {
		name := "alertmanager-flag-" + strconv.Itoa(i+1)
		if msg := checkHTTPURL(u); msg != "" {
			bad(&problems, "--alertmanager", "%s", msg)
		} else if slices.Contains(existing, name) {
			bad(&problems, "--alertmanager", "channel name %q is already used in the configuration file", name)
		} else if warn := plainHTTPCredentials(u, nil, false); warn != "" {
			bad(&warnings, "--alertmanager", "%s", warn)
		}
		ams = append(ams, Alertmanager{
			Name: name, URLs: []string{u}, Timeout: DefaultAlertmanagerTimeout,
			ResendInterval: DefaultResendInterval, FromFlag: true,
		})
		added = append(added, name)
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}

	if o.StateDir != nil {
		c.StateDir = *o.StateDir
	}
	if o.HooksDir != nil {
		if c.Hooks.Dir == "" && *o.HooksDir != "" {
			added = append([]string{ChannelHooks}, added...)
		}
		c.Hooks.Dir = *o.HooksDir
	}
	if o.MetricsListen != nil {
		c.Metrics.Listen = *o.MetricsListen
	}
	if o.Hostname != nil {
		c.Hostname = *o.Hostname
	}
	c.Webhooks = append(c.Webhooks, webhooks...)
	c.Alertmanagers = append(c.Alertmanagers, ams...)
	if len(c.Rules) == 0 {
		c.Rules = []Rule{defaultRule()}
	}
	last := &c.Rules[len(c.Rules)-1]
	if !slices.Contains(last.Channels, AllChannels) {
		for _, n := range added {
			if !slices.Contains(last.Channels, n) {
				last.Channels = append(slices.Clip(last.Channels), n)
			}
		}
	}
	for _, w := range warnings {
		c.Warnings = append(c.Warnings, w.String())
	}
	return nil
}
