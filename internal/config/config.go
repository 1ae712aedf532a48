// Package config reads, checks and describes fshealth's configuration file,
// a TOML document (docs/configuration.md documents it key by key).
//
// Load and Parse refuse unknown keys and bad values with errors that name
// the file, the line and the key (and the column, for a file that is not
// TOML), e.g.
//
//	fshealth.toml:12: webhook[1].url: not an absolute http(s) URL: "ftp://x"
//	fshealth.toml:7: unknown key "retension" in [history]
//	fshealth.toml:4:15: syntax error: strings, durations and addresses must be quoted
//
// Secrets (webhook HMAC secrets, SMTP and Alertmanager passwords, header
// values, the user information and query values of URLs) never appear in an
// error, a warning or Redacted's dump.
package config

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
)

// Defaults.
const (
	// DefaultPath is where the daemon looks for its configuration file.
	DefaultPath = "/etc/fshealth/fshealth.toml"
	// DefaultStateDir holds the history database.
	DefaultStateDir = "/var/lib/fshealth"
	// DefaultMetricsListen is where Prometheus metrics are served.
	DefaultMetricsListen = "127.0.0.1:9718"
	// DefaultRetention is how long history is kept.
	DefaultRetention = 90 * Day
	// MinRetention is the shortest retention accepted.
	MinRetention = Day

	// DefaultInitialBackoff is the wait before the first retry of a
	// failed delivery.
	DefaultInitialBackoff = time.Second
	// DefaultMaxBackoff caps the wait between retries.
	DefaultMaxBackoff = time.Minute
	// DefaultMaxAge is how long a delivery is retried before it is given up.
	DefaultMaxAge = 3 * Day

	// DefaultFloodWindow is how long further errors of an incident are
	// folded into a digest after an alert.
	DefaultFloodWindow = time.Minute
	// DefaultReminderInitial is the wait before the first reminder of an
	// open incident.
	DefaultReminderInitial = time.Hour
	// DefaultReminderMax caps the wait between reminders.
	DefaultReminderMax = Day

	// DefaultWebhookTimeout bounds one webhook delivery attempt.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultContentType is the Content-Type of webhook bodies.
	DefaultContentType = "application/json"
	// DefaultSignatureHeader carries a webhook body's HMAC-SHA256
	// signature when a secret is configured.
	DefaultSignatureHeader = "X-Fshealth-Signature"
	// DefaultSMTPTimeout bounds one e-mail delivery attempt.
	DefaultSMTPTimeout = 30 * time.Second
	// DefaultSubjectPrefix starts the subject of every e-mail.
	DefaultSubjectPrefix = "[fshealth]"
	// DefaultAlertmanagerTimeout bounds one Alertmanager request.
	DefaultAlertmanagerTimeout = 10 * time.Second
	// DefaultResendInterval is how often open alerts are re-sent to
	// Alertmanager.
	DefaultResendInterval = time.Minute
	// DefaultHookTimeout bounds one hook program's run.
	DefaultHookTimeout = 30 * time.Second
	// DefaultHookConcurrency caps the hook programs running at once.
	DefaultHookConcurrency = 4
)

// Channel names with a fixed meaning.
const (
	// ChannelJournal is the journal (or stderr) channel, always present.
	ChannelJournal = "journal"
	// ChannelHooks is the hook programs channel, present when a hooks
	// directory is configured.
	ChannelHooks = "hooks"
	// AllChannels in a rule's channels stands for every configured channel.
	AllChannels = "all"
)

// DefaultRuleName is the name of the implicit default rule.
const DefaultRuleName = "default"

// Journal modes.
const (
	// JournalAuto logs to journald when running under systemd with a
	// journal, to stderr otherwise.
	JournalAuto = "auto"
	// JournalJournal always logs native journald fields.
	JournalJournal = "journal"
	// JournalStderr always logs structured lines to stderr.
	JournalStderr = "stderr"
)

// E-mail transports (SMTP.Via).
const (
	// ViaSMTP speaks SMTP to a server.
	ViaSMTP = "smtp"
	// ViaSendmail hands the message to the local sendmail program.
	ViaSendmail = "sendmail"
	// DefaultSendmail is the sendmail program's path.
	DefaultSendmail = "/usr/sbin/sendmail"
)

// SMTP transport security modes.
const (
	// TLSStartTLS requires STARTTLS.
	TLSStartTLS = "starttls"
	// TLSStartTLSOpportunistic uses STARTTLS when the server offers it.
	TLSStartTLSOpportunistic = "starttls-opportunistic"
	// TLSImplicit speaks TLS from the start (SMTPS, port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts.
	TLSNone = "none"
)

// Recovery action names.
const (
	// ActionRemountRO remounts the file system read-only.
	ActionRemountRO = "remount-ro"
	// ActionFsckNextBoot marks the file system to be checked at next boot.
	ActionFsckNextBoot = "fsck-next-boot"
	// ActionScrub starts the file system's online check.
	ActionScrub = "scrub"
	// ActionCommand runs a program.
	ActionCommand = "command"
)

// Config is fshealth's configuration. Durations are resolved (never zero
// where a default applies) and every value has been checked.
type Config struct {
	// File is the name the configuration was loaded from; empty for
	// Default.
	File string
	// StateDir holds the history database.
	StateDir string
	// Hostname overrides the machine's host name in alerts; empty means
	// os.Hostname (see Host).
	Hostname string
	// Watch says which file systems to watch.
	Watch Watch
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics
	// History configures the event history.
	History History
	// Delivery configures retries of failed deliveries.
	Delivery Delivery
	// Flood configures anti-flood: digests and reminders.
	Flood Flood
	// Webhooks are the webhook channels.
	Webhooks []Webhook
	// SMTP are the e-mail channels.
	SMTP []SMTP
	// Alertmanagers are the Prometheus Alertmanager channels.
	Alertmanagers []Alertmanager
	// Hooks configures the hook programs channel.
	Hooks Hooks
	// Journal configures the journal channel.
	Journal Journal
	// Actions holds the defaults of recovery actions.
	Actions Actions
	// Rules are the policy rules in order; the last one has no match
	// conditions (it is the implicit default rule unless the file has
	// one).
	Rules []Rule
	// Warnings are things that are allowed but probably deserve a look,
	// formatted like errors ("file:line: key: message").
	Warnings []string
}

// Watch says which file systems to watch.
type Watch struct {
	// Paths are the mount points (or paths inside them) whose file systems
	// are watched; empty means every markable file system.
	Paths []string
	// KernelLog makes the daemon read the kernel log as a second source
	// of errors (default true).
	KernelLog bool
	// KernelLogHold is how long a kernel log message waits for a
	// FAN_FS_ERROR event of its file system before it is reported on its
	// own.
	KernelLogHold time.Duration
}

// DefaultKernelLogHold is the default of [watch] kernel_log_hold.
const DefaultKernelLogHold = 2 * time.Second

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port to serve /metrics on; empty means off.
	Listen string
}

// History configures the event history.
type History struct {
	// Retention is how long events are kept; at least MinRetention.
	Retention time.Duration
}

// Delivery configures retries of failed deliveries: the wait doubles from
// InitialBackoff up to MaxBackoff; a delivery still failing MaxAge after
// its alert was raised is given up (and stays visible as failed).
type Delivery struct {
	// InitialBackoff is the wait before the first retry.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait between retries.
	MaxBackoff time.Duration
	// MaxAge is how long a delivery is retried.
	MaxAge time.Duration
}

// Flood configures anti-flood, per incident (file system and error kind).
type Flood struct {
	// Window is how long further errors are folded after an alert before
	// a digest reports them; zero alerts every event.
	Window time.Duration
	// ReminderInitial is the wait before the first reminder of an open
	// incident; zero sends no reminders.
	ReminderInitial time.Duration
	// ReminderMax caps the wait between reminders, which doubles after
	// each one. It also caps the digest window of a sustained storm.
	ReminderMax time.Duration
}

// Webhook is one webhook channel.
type Webhook struct {
	// Name is the channel's name.
	Name string
	// URL is the http(s) endpoint alerts are POSTed to.
	URL string
	// Headers are extra request headers; their values are secret.
	Headers map[string]string
	// Template is a Go text/template for the body; empty sends the alert's
	// JSON.
	Template string
	// Format names a built-in body template (webhook.Builtins) used
	// instead of Template; ContentType is then the format's.
	Format string
	// ContentType is the body's Content-Type.
	ContentType string
	// Secret is the HMAC-SHA256 key of the signature header; empty sends
	// no signature.
	Secret string
	// SigningSecret is the Standard Webhooks secret ("whsec_" and base64)
	// that signs the alert id, the attempt's time and the body; empty
	// sends no Standard Webhooks headers. It is secret.
	SigningSecret string
	// SignatureHeader is the signature's header.
	SignatureHeader string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// FromFlag says the channel was given with --webhook.
	FromFlag bool
}

// SMTP is one e-mail channel.
type SMTP struct {
	// Name is the channel's name.
	Name string
	// Host is the mail server's host name or address.
	Host string
	// Port is the mail server's port.
	Port int
	// From is the sender address.
	From string
	// To are the recipient addresses.
	To []string
	// Username and Password authenticate to the server; both or neither.
	Username string
	// Password is secret.
	Password string
	// TLS is one of the TLS* modes.
	TLS string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// SubjectPrefix starts every subject.
	SubjectPrefix string
	// Via is ViaSMTP (speak SMTP to Host) or ViaSendmail (hand the
	// message to the local mail transfer agent).
	Via string
	// Sendmail is the sendmail program, for ViaSendmail.
	Sendmail string
	// CAFile is a PEM file of the authorities the server's certificate
	// must chain to, instead of the system's.
	CAFile string
	// TLSFingerprints are SHA-256 fingerprints of accepted server
	// certificates (pinned private relays).
	TLSFingerprints []string
	// AllowUnverifiedAuth lets starttls-opportunistic send the
	// credentials over a session whose certificate cannot be verified.
	AllowUnverifiedAuth bool
}

// Alertmanager is one Prometheus Alertmanager channel (a cluster of
// Alertmanagers sharing alerts).
type Alertmanager struct {
	// Name is the channel's name.
	Name string
	// URLs are the base URLs of the Alertmanagers, e.g.
	// "http://alertmanager:9093".
	URLs []string
	// Timeout bounds one request.
	Timeout time.Duration
	// Headers are extra request headers; their values are secret.
	Headers map[string]string
	// Username and Password are HTTP basic auth credentials; both or
	// neither.
	Username string
	// Password is secret.
	Password string
	// ResendInterval is how often alerts are re-sent while their
	// incident is open.
	ResendInterval time.Duration
	// Labels are extra labels added to every alert.
	Labels map[string]string
	// FromFlag says the channel was given with --alertmanager.
	FromFlag bool
}

// Hooks configures the hook programs channel.
type Hooks struct {
	// Dir is the directory whose executables are run for each alert;
	// empty means no hooks channel.
	Dir string
	// Timeout bounds one hook program's run.
	Timeout time.Duration
	// MaxConcurrent caps the hook programs running at once.
	MaxConcurrent int
	// User, if set, is the user (name or id) hooks run as; Group, if set,
	// replaces that user's primary group.
	User, Group string
	// Isolation is how each hook run is contained: one of the
	// HookIsolation* values.
	Isolation string
}

// Hook isolations.
const (
	// HookIsolationAuto runs each hook in a transient systemd unit when
	// PID 1 is systemd and reachable, else in a cgroup of its own.
	HookIsolationAuto = "auto"
	// HookIsolationUnit always runs hooks in transient systemd units.
	HookIsolationUnit = "unit"
	// HookIsolationCgroup runs hooks as the daemon's children, each in a
	// cgroup of its own (with the daemon's sandbox).
	HookIsolationCgroup = "cgroup"
)

// Journal configures the journal channel.
type Journal struct {
	// Mode is one of the Journal* modes.
	Mode string
}

// Actions holds the defaults of recovery actions.
type Actions struct {
	// DryRun makes every action a dry run: recorded, never run.
	DryRun bool
	// Timeout is the timeout of actions that set none; zero means each
	// action's own default (internal/actions: remount-ro and
	// fsck-next-boot 1m, scrub 6h, command 5m).
	Timeout time.Duration
}

// Rule is one policy rule: what it matches and what it decides.
type Rule struct {
	// Name identifies the rule in alerts and history.
	Name string
	// Match holds the conditions; all of those set must hold.
	Match Match
	// Severity is alert.SeverityCritical, SeverityWarning or SeverityInfo.
	Severity string
	// Channels are channel names, or AllChannels; empty sends no alerts
	// (history and the log still get every event).
	Channels []string
	// Actions are the recovery actions to run.
	Actions []Action
	// DryRun makes this rule's actions dry runs.
	DryRun bool
	// ActOnKernelLog lets the rule's actions run on an error that only the
	// kernel log reports without corroboration (act_on_kernel_log).
	ActOnKernelLog bool
	// Implicit marks the default rule fshealth adds.
	Implicit bool
}

// Match holds a rule's conditions. Each list matches if any of its entries
// does; an empty list always matches.
type Match struct {
	// Mountpoint are globs (filepath.Match syntax) matched against every
	// mount point of the file system.
	Mountpoint []string
	// UUID are globs matched against the file system UUID, ignoring case.
	UUID []string
	// Device are globs matched against the device, e.g. "/dev/sd*".
	Device []string
	// FSType are globs matched against the file system type, e.g. "ext*".
	FSType []string
	// Errno are error numbers.
	Errno []int
	// Count, if not zero, requires at least Count errors (counting each
	// event's error_count) matching the other conditions on the file
	// system within the last Within.
	Count uint64
	// Within is Count's sliding window.
	Within time.Duration
}

// IsEmpty says whether m has no conditions and so matches every event.
func (m *Match) IsEmpty() bool {
	return len(m.Mountpoint) == 0 && len(m.UUID) == 0 && len(m.Device) == 0 &&
		len(m.FSType) == 0 && len(m.Errno) == 0 && m.Count == 0
}

// Action is one recovery action of a rule.
type Action struct {
	// Name is one of the Action* names.
	Name string
	// Argv is the program and its arguments, for ActionCommand.
	Argv []string
	// Timeout bounds the action.
	Timeout time.Duration
	// Repeat lets the action run again in the same incident (at most
	// once per flood window); otherwise it runs once per incident.
	Repeat bool
	// DryRun says the action is only recorded, not run: it is set when
	// the action, its rule or [actions] says dry_run.
	DryRun bool
}

// Key identifies the action within an incident, for running it only once:
// its name, plus for a command its quoted argv, e.g.
// `command "/usr/bin/logger" "fs error"`.
func (a *Action) Key() string {
	if a.Name != ActionCommand {
		return a.Name
	}
	var b strings.Builder
	b.WriteString(a.Name)
	for _, arg := range a.Argv {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(arg))
	}
	return b.String()
}

// Default returns the configuration used when there is no configuration
// file: watch every markable file system, history under DefaultStateDir,
// the journal, metrics on DefaultMetricsListen, and the implicit default
// rule (critical, every channel, no actions).
func Default() *Config {
	c := &Config{
		StateDir: DefaultStateDir,
		Watch:    Watch{KernelLog: true, KernelLogHold: DefaultKernelLogHold},
		Metrics:  Metrics{Listen: DefaultMetricsListen},
		History:  History{Retention: DefaultRetention},
		Delivery: Delivery{
			InitialBackoff: DefaultInitialBackoff,
			MaxBackoff:     DefaultMaxBackoff,
			MaxAge:         DefaultMaxAge,
		},
		Flood: Flood{
			Window:          DefaultFloodWindow,
			ReminderInitial: DefaultReminderInitial,
			ReminderMax:     DefaultReminderMax,
		},
		Hooks:   Hooks{Timeout: DefaultHookTimeout, MaxConcurrent: DefaultHookConcurrency, Isolation: HookIsolationAuto},
		Journal: Journal{Mode: JournalAuto},
	}
	c.Rules = []Rule{defaultRule()}
	return c
}

// defaultRule returns the implicit default rule.
func defaultRule() Rule {
	return Rule{
		Name:     DefaultRuleName,
		Severity: alert.SeverityCritical,
		Channels: []string{AllChannels},
		Implicit: true,
	}
}

// Load reads and checks the configuration file at path. Besides what Parse
// checks, it looks at files: run as root, it refuses a configuration file
// that others than root can change (the file or a directory above it); it
// refuses a hooks directory, hook or command action program that others
// than root (or fshealth's user) can change; it reads the secrets given by
// file (password_file...) or systemd credential (password_credential...);
// and it warns about inline secrets in a file every user can read. A
// missing file is an error that errors.Is(err, fs.ErrNotExist) recognises.
func Load(path string) (*Config, error) {
	data, info, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, info)
}

// Parse checks the configuration data read from the file called name (used
// in error messages only). It touches no file: secrets given by file or
// systemd credential are left empty.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

// ChannelNames returns the names of every configured channel: the journal,
// the hooks (if configured), then the webhooks, e-mail and Alertmanager
// channels in file order. AllChannels stands for these.
func (c *Config) ChannelNames() []string {
	names := []string{ChannelJournal}
	if c.Hooks.Dir != "" {
		names = append(names, ChannelHooks)
	}
	for i := range c.Webhooks {
		names = append(names, c.Webhooks[i].Name)
	}
	for i := range c.SMTP {
		names = append(names, c.SMTP[i].Name)
	}
	for i := range c.Alertmanagers {
		names = append(names, c.Alertmanagers[i].Name)
	}
	return names
}

// RuleChannels returns the channels of r with AllChannels expanded, in the
// order of ChannelNames, without duplicates.
func (c *Config) RuleChannels(r *Rule) []string {
	all := c.ChannelNames()
	if slices.Contains(r.Channels, AllChannels) {
		return all
	}
	var out []string
	for _, n := range r.Channels {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Host returns the host name alerts carry: Hostname if set, else the
// machine's host name, else "localhost".
func (c *Config) Host() string {
	if c.Hostname != "" {
		return c.Hostname
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
