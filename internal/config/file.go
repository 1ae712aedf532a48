package config

// The file* types are the configuration file's form, key by key: go-toml
// decodes the file into them, and Redacted encodes them back. Durations
// stay strings here; what they mean is checked by parse.go and the files
// of each part.

type fileConfig struct {
	StateDir      string             `toml:"state_dir"`
	Hostname      string             `toml:"hostname,omitempty"`
	Watch         fileWatch          `toml:"watch"`
	Metrics       fileMetrics        `toml:"metrics"`
	History       fileHistory        `toml:"history"`
	Delivery      fileDelivery       `toml:"delivery"`
	Flood         fileFlood          `toml:"flood"`
	Journal       fileJournal        `toml:"journal"`
	Hooks         fileHooks          `toml:"hooks"`
	Actions       fileActions        `toml:"actions"`
	Webhooks      []fileWebhook      `toml:"webhook,omitempty"`
	SMTP          []fileSMTP         `toml:"smtp,omitempty"`
	Mail          []fileSMTP         `toml:"mail,omitempty"`
	Alertmanagers []fileAlertmanager `toml:"alertmanager,omitempty"`
	Rules         []fileRule         `toml:"rule"`
}

// duration is a duration as the file writes it, e.g. "90d".
type duration string

// stringList is an array of strings; a single string stands for an array
// of one.
type stringList []string

// UnmarshalText reads the single-string form.
func (l *stringList) UnmarshalText(b []byte) error {
	*l = stringList{string(b)}
	return nil
}

type fileWatch struct {
	Paths         stringList `toml:"paths"`
	KernelLog     bool       `toml:"kernel_log"`
	KernelLogHold duration   `toml:"kernel_log_hold"`
}

type fileMetrics struct {
	Listen string `toml:"listen"`
}

type fileHistory struct {
	Retention duration `toml:"retention"`
}

type fileDelivery struct {
	InitialBackoff duration `toml:"initial_backoff"`
	MaxBackoff     duration `toml:"max_backoff"`
	MaxAge         duration `toml:"max_age"`
}

type fileFlood struct {
	Window          duration `toml:"window"`
	ReminderInitial duration `toml:"reminder_initial"`
	ReminderMax     duration `toml:"reminder_max"`
}

type fileJournal struct {
	Mode string `toml:"mode"`
}

type fileHooks struct {
	Dir           string   `toml:"dir,omitempty"`
	Timeout       duration `toml:"timeout"`
	MaxConcurrent int64    `toml:"max_concurrent"`
	User          string   `toml:"user,omitempty"`
	Group         string   `toml:"group,omitempty"`
	Isolation     string   `toml:"isolation,omitempty"`
}

type fileActions struct {
	DryRun  bool     `toml:"dry_run"`
	Timeout duration `toml:"timeout,omitempty"`
}

// fileHeaders are a channel's extra request headers: inline, or by file or
// systemd credential (header names to file or credential names).
type fileHeaders struct {
	Headers           map[string]string `toml:"headers,omitempty"`
	HeaderFiles       map[string]string `toml:"header_files,omitempty"`
	HeaderCredentials map[string]string `toml:"header_credentials,omitempty"`
}

type fileWebhook struct {
	Name                    string   `toml:"name"`
	URL                     string   `toml:"url"`
	Template                string   `toml:"template,omitempty"`
	Format                  string   `toml:"format,omitempty"`
	ContentType             string   `toml:"content_type"`
	Secret                  string   `toml:"secret,omitempty"`
	SecretFile              string   `toml:"secret_file,omitempty"`
	SecretCredential        string   `toml:"secret_credential,omitempty"`
	SigningSecret           string   `toml:"signing_secret,omitempty"`
	SigningSecretFile       string   `toml:"signing_secret_file,omitempty"`
	SigningSecretCredential string   `toml:"signing_secret_credential,omitempty"`
	SignatureHeader         string   `toml:"signature_header"`
	Timeout                 duration `toml:"timeout"`
	fileHeaders
}

type fileSMTP struct {
	Name                string     `toml:"name"`
	Via                 string     `toml:"via"`
	Sendmail            string     `toml:"sendmail,omitempty"`
	Host                string     `toml:"host,omitempty"`
	Port                int64      `toml:"port,omitempty"`
	From                string     `toml:"from"`
	To                  stringList `toml:"to"`
	Username            string     `toml:"username,omitempty"`
	Password            string     `toml:"password,omitempty"`
	PasswordFile        string     `toml:"password_file,omitempty"`
	PasswordCredential  string     `toml:"password_credential,omitempty"`
	TLS                 string     `toml:"tls,omitempty"`
	CAFile              string     `toml:"ca_file,omitempty"`
	TLSFingerprints     stringList `toml:"tls_fingerprint,omitempty"`
	AllowUnverifiedAuth bool       `toml:"allow_unverified_auth,omitempty"`
	Timeout             duration   `toml:"timeout"`
	SubjectPrefix       string     `toml:"subject_prefix"`
}

type fileAlertmanager struct {
	Name               string            `toml:"name"`
	URLs               stringList        `toml:"urls"`
	Timeout            duration          `toml:"timeout"`
	Username           string            `toml:"username,omitempty"`
	Password           string            `toml:"password,omitempty"`
	PasswordFile       string            `toml:"password_file,omitempty"`
	PasswordCredential string            `toml:"password_credential,omitempty"`
	ResendInterval     duration          `toml:"resend_interval"`
	Labels             map[string]string `toml:"labels,omitempty"`
	fileHeaders
}

type fileRule struct {
	Name           string       `toml:"name"`
	Severity       string       `toml:"severity"`
	Channels       stringList   `toml:"channels"`
	DryRun         bool         `toml:"dry_run"`
	ActOnKernelLog bool         `toml:"act_on_kernel_log,omitempty"`
	Match          *fileMatch   `toml:"match,omitempty"`
	Actions        []fileAction `toml:"actions,omitempty"`
}

type fileMatch struct {
	Mountpoint stringList `toml:"mountpoint,omitempty"`
	UUID       stringList `toml:"uuid,omitempty"`
	Device     stringList `toml:"device,omitempty"`
	FSType     stringList `toml:"fstype,omitempty"`
	// Errno is an errno name or number, or an array of them.
	Errno  any      `toml:"errno,omitempty"`
	Count  int64    `toml:"count,omitempty"`
	Within duration `toml:"within,omitempty"`
}

type fileAction struct {
	Name    string     `toml:"name"`
	Argv    stringList `toml:"argv,omitempty"`
	Timeout duration   `toml:"timeout,omitempty"`
	Repeat  bool       `toml:"repeat"`
	DryRun  bool       `toml:"dry_run"`
}

// UnmarshalText reads the short form of an action, its name.
func (a *fileAction) UnmarshalText(b []byte) error {
	*a = fileAction{Name: string(b)}
	return nil
}
