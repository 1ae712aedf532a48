package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/fshealth/fshealth/internal/notify/hook"
)

// reader turns a configuration file into a Config, collecting problems and
// warnings with the line of the key each is about.
type reader struct {
	file     string
	info     *fileInfo // nil for Parse: no file is looked at
	doc      *document
	problems []Problem
	warnings []Problem
}

// at is a table of the file (or an element of an array), for the line and
// the name of its keys in messages, and whether the file sets them.
type at struct {
	r    *reader
	path []string
}

// key is the path of key in t.
func (t at) key(k string) []string { return append(t.path[:len(t.path):len(t.path)], k) }

// has reports whether the file sets key, to a value of the right kind.
func (t at) has(key string) bool { return t.r.doc.has(t.key(key)) }

// given reports whether the file sets key, to any value.
func (t at) given(key string) bool { return t.r.doc.given(t.key(key)) }

// sub is the table key.
func (t at) sub(key string) at { return at{t.r, t.key(key)} }

// item is element i (from 0) of the array key.
func (t at) item(key string, i int) at { return at{t.r, append(t.key(key), "#"+strconv.Itoa(i))} }

// kind is the kind of value t is in the file.
func (t at) kind() unstable.Kind { return t.r.doc.spots[strings.Join(t.path, pathSep)].kind }

// problem is about key of t, or t itself when key is empty.
func (t at) problem(key, format string, args ...any) Problem {
	p := t.path
	if key != "" {
		p = t.key(key)
	}
	return Problem{File: t.r.file, Line: t.r.doc.line(p), Key: shown(p), Message: fmt.Sprintf(format, args...)}
}

// errorf reports a problem with key of t (t itself if key is empty).
func (t at) errorf(key, format string, args ...any) {
	t.r.problems = append(t.r.problems, t.problem(key, format, args...))
}

// warnf records a warning about key of t (t itself if key is empty).
func (t at) warnf(key, format string, args ...any) {
	t.r.warnings = append(t.r.warnings, t.problem(key, format, args...))
}

// check reports msg about key unless it is empty.
func (t at) check(key, msg string) {
	if msg != "" {
		t.errorf(key, "%s", msg)
	}
}

// duration sets dst to the duration s that the file gives for key, if it
// does and s is a duration of at least min.
func (t at) duration(key string, s duration, min time.Duration, dst *time.Duration) {
	if !t.has(key) {
		return
	}
	d, err := ParseDuration(string(s))
	switch {
	case err != nil:
		t.errorf(key, "not a duration (%v): %q", err, s)
	case d < min:
		t.errorf(key, "must be at least %s: %q", FormatDuration(min), s)
	default:
		*dst = d
	}
}

// integer reports whether the file gives key, with a value v within
// [lo, hi].
func (t at) integer(key string, v, lo, hi int64) bool {
	if !t.has(key) {
		return false
	}
	if v < lo || v > hi {
		if hi == math.MaxInt64 {
			t.errorf(key, "must be at least %d: %d", lo, v)
		} else {
			t.errorf(key, "must be between %d and %d: %d", lo, hi, v)
		}
		return false
	}
	return true
}

// oneOf reports, for a key the file gives, a value not in values.
func (t at) oneOf(key, v string, values ...string) {
	if !t.has(key) || slices.Contains(values, v) {
		return
	}
	quoted := make([]string, len(values))
	for i, s := range values {
		quoted[i] = strconv.Quote(s)
	}
	list := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	t.errorf(key, "must be %s: %q", list, v)
}

// parse is Load and Parse; info, set by Load, adds the checks that look at
// files.
func parse(name string, data []byte, info *fileInfo) (*Config, error) {
	doc, bad := read(name, data)
	if bad != nil {
		return nil, &Error{Problems: []Problem{*bad}}
	}
	r := &reader{file: name, info: info, doc: doc}
	var c *Config
	f := fileOf(Default())
	f.Rules = nil
	if doc.check(r, reflect.TypeFor[fileConfig]()) && doc.decode(r, f, len(r.problems) == 0) {
		c = r.config(f, info != nil)
	}
	byLine := func(ps []Problem) {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	}
	if len(r.problems) > 0 {
		byLine(r.problems)
		return nil, &Error{Problems: r.problems}
	}
	byLine(r.warnings)
	for _, w := range r.warnings {
		c.Warnings = append(c.Warnings, w.String())
	}
	return c, nil
}

// config checks what f means and returns it as a Config.
func (r *reader) config(f *fileConfig, checkFS bool) *Config {
	root := at{r: r}
	c := Default()
	c.File = r.file
	c.StateDir, c.Hostname = f.StateDir, f.Hostname
	root.check("state_dir", checkAbsPath(c.StateDir))
	if root.has("hostname") {
		root.check("hostname", checkHostname(c.Hostname))
	}

	w := root.sub("watch")
	c.Watch.Paths, c.Watch.KernelLog = nil, f.Watch.KernelLog
	for i, p := range f.Watch.Paths {
		w.item("paths", i).check("", checkAbsPath(p))
		c.Watch.Paths = append(c.Watch.Paths, p)
	}
	w.duration("kernel_log_hold", f.Watch.KernelLogHold, 10*time.Millisecond, &c.Watch.KernelLogHold)

	c.Metrics.Listen = f.Metrics.Listen
	if msg, warn := checkListen(c.Metrics.Listen); msg != "" {
		root.sub("metrics").errorf("listen", "%s", msg)
	} else if warn != "" {
		root.sub("metrics").warnf("listen", "%s", warn)
	}

	root.sub("history").duration("retention", f.History.Retention, MinRetention, &c.History.Retention)

	t := root.sub("delivery")
	t.duration("initial_backoff", f.Delivery.InitialBackoff, 100*time.Millisecond, &c.Delivery.InitialBackoff)
	t.duration("max_backoff", f.Delivery.MaxBackoff, 100*time.Millisecond, &c.Delivery.MaxBackoff)
	t.duration("max_age", f.Delivery.MaxAge, time.Minute, &c.Delivery.MaxAge)
	if d := c.Delivery; d.MaxBackoff < d.InitialBackoff {
		t.errorf("max_backoff", "must be at least initial_backoff (%s): %s", FormatDuration(d.InitialBackoff), FormatDuration(d.MaxBackoff))
	}

	t = root.sub("flood")
	t.duration("window", f.Flood.Window, 0, &c.Flood.Window)
	t.duration("reminder_initial", f.Flood.ReminderInitial, 0, &c.Flood.ReminderInitial)
	t.duration("reminder_max", f.Flood.ReminderMax, 0, &c.Flood.ReminderMax)
	if fl := c.Flood; fl.ReminderMax < fl.ReminderInitial {
		t.errorf("reminder_max", "must be at least reminder_initial (%s): %s", FormatDuration(fl.ReminderInitial), FormatDuration(fl.ReminderMax))
	}
	if fl := c.Flood; fl.ReminderMax < fl.Window {
		t.errorf("reminder_max", "must be at least window (%s): %s", FormatDuration(fl.Window), FormatDuration(fl.ReminderMax))
	}
	if c.Flood.Window == 0 {
		t.warnf("window", "0 turns anti-flood off: every event is alerted")
	}

	c.Journal.Mode = f.Journal.Mode
	root.sub("journal").oneOf("mode", c.Journal.Mode, JournalAuto, JournalJournal, JournalStderr)

	r.hooks(root.sub("hooks"), f.Hooks, &c.Hooks, checkFS)

	t = root.sub("actions")
	c.Actions.DryRun = f.Actions.DryRun
	t.duration("timeout", f.Actions.Timeout, time.Second, &c.Actions.Timeout)

	names := make(map[string]string) // channel name → who uses it
	for i := range f.Webhooks {
		c.Webhooks = append(c.Webhooks, r.webhook(root.item("webhook", i), &f.Webhooks[i], names))
	}
	for i := range f.SMTP {
		c.SMTP = append(c.SMTP, r.smtp(root.item("smtp", i), &f.SMTP[i], names, checkFS))
	}
	for i := range f.Mail {
		c.SMTP = append(c.SMTP, r.smtp(root.item("mail", i), &f.Mail[i], names, checkFS))
	}
	for i := range f.Alertmanagers {
		c.Alertmanagers = append(c.Alertmanagers, r.alertmanager(root.item("alertmanager", i), &f.Alertmanagers[i], names))
	}
	c.Rules = r.rules(root, f.Rules, c)
	return c
}

// hooks checks the [hooks] table.
func (r *reader) hooks(t at, f fileHooks, h *Hooks, checkFS bool) {
	h.Dir, h.User, h.Group = f.Dir, f.User, f.Group
	if h.Dir != "" {
		if msg := checkAbsPath(h.Dir); msg != "" {
			t.errorf("dir", "%s", msg)
		} else if checkFS {
			for _, msg := range checkHooks(h.Dir) {
				t.errorf("dir", "%s", msg)
			}
		}
	}
	if checkFS && (h.User != "" || h.Group != "") {
		if _, err := hook.Credential(h.User, h.Group); err != nil {
			key := "user"
			if !t.has("user") || strings.Contains(err.Error(), "group") {
				key = "group"
			}
			t.errorf(key, "%v", err)
		}
	}
	t.duration("timeout", f.Timeout, time.Second, &h.Timeout)
	if t.integer("max_concurrent", f.MaxConcurrent, 1, 1024) {
		h.MaxConcurrent = int(f.MaxConcurrent)
	}
}

// channelName checks a channel's name, by default kind-index (the kind
// is the last key of t's path).
func (r *reader) channelName(t at, given string, names map[string]string) string {
	kind, index := t.path[len(t.path)-2], t.path[len(t.path)-1][1:]
	i, _ := strconv.Atoi(index)
	name := kind + "-" + strconv.Itoa(i+1)
	if t.has("name") {
		name = given
		if msg := checkName(name); msg != "" {
			t.errorf("name", "%s", msg)
			return name
		}
		switch name {
		case AllChannels, ChannelJournal, ChannelHooks:
			t.errorf("name", "%q is reserved", name)
			return name
		}
	}
	if other, dup := names[name]; dup {
		t.errorf("name", "channel name %q is already used by %s", name, other)
	} else {
		names[name] = shown(t.path)
	}
	return name
}

// required reports a key the file must give but does not, and whether it
// gives it with a value of the right kind.
func (t at) required(key string) bool {
	if !t.given(key) {
		t.errorf("", "missing required key %q", key)
	}
	return t.has(key)
}

// webhook checks a [[webhook]] table.
func (r *reader) webhook(t at, f *fileWebhook, names map[string]string) Webhook {
	w := Webhook{
		Name:            r.channelName(t, f.Name, names),
		URL:             f.URL,
		Template:        f.Template,
		ContentType:     DefaultContentType,
		SignatureHeader: DefaultSignatureHeader,
		Timeout:         DefaultWebhookTimeout,
	}
	if t.required("url") {
		if msg := checkHTTPURL(w.URL); msg != "" {
			t.errorf("url", "%s", msg)
		} else if warn := r.readableURL(w.URL); warn != "" {
			t.warnf("url", "%s", warn)
		}
	}
	w.Headers = r.headers(t, f.Headers)
	goodType := true
	if t.has("content_type") {
		w.ContentType = f.ContentType
		if msg := checkMediaType(w.ContentType); msg != "" {
			t.errorf("content_type", "%s", msg)
			goodType = false
		}
	}
	if w.Template != "" && goodType {
		t.check("template", checkTemplate(w.Template, w.ContentType))
	}
	hasSecret := r.secret(t, "secret", f.Secret, f.SecretFile, f.SecretCredential, &w.Secret)
	hasSigning := r.secret(t, "signing_secret", f.SigningSecret, f.SigningSecretFile, f.SigningSecretCredential, &w.SigningSecret)
	if w.SigningSecret != "" {
		signingKey := "signing_secret"
		for _, k := range []string{"signing_secret_file", "signing_secret_credential"} {
			if t.has(k) {
				signingKey = k
			}
		}
		t.check(signingKey, checkSigningSecret(w.SigningSecret))
	}
	if hasSecret && !hasSigning {
		t.warnf("secret", "signs the body alone: a captured request can be replayed; set signing_secret (Standard Webhooks) for signatures that cover the alert id and the time")
	}
	r.secretHeaders(t, f.fileHeaders, &w.Headers)
	if t.has("signature_header") {
		w.SignatureHeader = f.SignatureHeader
		t.check("signature_header", checkHeaderName(w.SignatureHeader))
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &w.Timeout)
	for _, k := range sortedKeys(w.Headers) {
		if strings.EqualFold(k, w.SignatureHeader) && hasSecret {
			t.errorf("headers", "header %q is the signature header", k)
		}
		if hasSigning && isStandardWebhooksHeader(k) {
			t.errorf("headers", "header %q is set by fshealth with signing_secret", k)
		}
		if strings.EqualFold(k, "Content-Type") {
			t.errorf("headers", "set the body's type with content_type, not a %q header", k)
		}
	}
	if warn := plainHTTPCredentials(w.URL, w.Headers, false); warn != "" {
		t.warnf("url", "%s", warn)
	}
	return w
}

// headers checks a channel's inline headers.
func (r *reader) headers(t at, h map[string]string) map[string]string {
	if !t.has("headers") {
		return nil
	}
	ht := t.sub("headers")
	for _, k := range sortedKeys(h) {
		if msg := checkSetHeader(k); msg != "" {
			ht.errorf(k, "%s", msg)
			continue
		}
		ht.check(k, checkHeaderValue(h[k]))
	}
	if r.info != nil && r.info.mode&0o004 != 0 && len(h) > 0 {
		t.warnf("headers", "the configuration file is readable by every user (mode %04o), and so are these header values: chmod o-r the file, or give them with header_files or header_credentials",
			r.info.mode)
	}
	return h
}

// smtp checks an [[smtp]] or [[mail]] table.
func (r *reader) smtp(t at, f *fileSMTP, names map[string]string, checkFS bool) SMTP {
	s := SMTP{
		Name: r.channelName(t, f.Name, names),
		TLS:  TLSStartTLS, Timeout: DefaultSMTPTimeout, SubjectPrefix: DefaultSubjectPrefix,
	}
	mailVia(t, f, &s)
	if s.Via != ViaSendmail && t.required("host") {
		s.Host = f.Host
		t.check("host", checkMailHost(s.Host))
	}
	if t.has("tls") {
		s.TLS = f.TLS
		t.oneOf("tls", s.TLS, TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone)
	}
	if t.integer("port", f.Port, 1, 65535) {
		s.Port = int(f.Port)
	} else if !t.has("port") {
		switch s.TLS {
		case TLSImplicit:
			s.Port = 465
		case TLSStartTLS:
			s.Port = 587
		default:
			s.Port = 25
		}
	}
	if t.required("from") {
		s.From = f.From
		t.check("from", checkMailAddress(s.From, s.Via))
	}
	if t.required("to") {
		s.To = f.To
		if len(s.To) == 0 {
			t.errorf("to", "needs at least one address")
		}
		for i, a := range s.To {
			t.item("to", i).check("", checkMailAddress(a, s.Via))
		}
	}
	mailTLS(t, f, &s, checkFS)
	s.Username = f.Username
	hasPassword := r.secret(t, "password", f.Password, f.PasswordFile, f.PasswordCredential, &s.Password)
	r.credentials(t, s.Username, hasPassword)
	if hasPassword {
		switch s.TLS {
		case TLSNone:
			t.errorf("password", "would be sent unencrypted: set tls to %q or %q", TLSStartTLS, TLSImplicit)
		case TLSStartTLSOpportunistic:
			if !s.AllowUnverifiedAuth && s.CAFile == "" && len(s.TLSFingerprints) == 0 {
				t.warnf("password", "may be sent unencrypted if the server does not offer STARTTLS, and is not sent (the delivery fails) "+
					"if its certificate cannot be verified: consider tls = %q, or ca_file or tls_fingerprint for a private relay", TLSStartTLS)
			} else {
				t.warnf("password", "may be sent unencrypted if the server does not offer STARTTLS: consider tls = %q", TLSStartTLS)
			}
		}
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &s.Timeout)
	if t.has("subject_prefix") {
		s.SubjectPrefix = f.SubjectPrefix
		t.check("subject_prefix", checkOneLine(s.SubjectPrefix))
	}
	return s
}

// credentials checks that username and password come together.
func (r *reader) credentials(t at, user string, hasPassword bool) {
	switch {
	case user != "" && !hasPassword:
		t.errorf("username", "needs a password")
	case user == "" && hasPassword:
		t.errorf("password", "needs a username")
	}
	if user != "" {
		t.check("username", checkOneLine(user))
	}
}

// alertmanager checks an [[alertmanager]] table.
func (r *reader) alertmanager(t at, f *fileAlertmanager, names map[string]string) Alertmanager {
	a := Alertmanager{
		Name:    r.channelName(t, f.Name, names),
		Timeout: DefaultAlertmanagerTimeout, ResendInterval: DefaultResendInterval,
	}
	if t.required("urls") {
		a.URLs = f.URLs
		if len(a.URLs) == 0 {
			t.errorf("urls", "needs at least one URL")
		}
		for i, u := range a.URLs {
			if msg := checkHTTPURL(u); msg != "" {
				t.item("urls", i).errorf("", "%s", msg)
			} else if warn := r.readableURL(u); warn != "" {
				t.item("urls", i).warnf("", "%s", warn)
			}
		}
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &a.Timeout)
	a.Headers = r.headers(t, f.Headers)
	r.secretHeaders(t, f.fileHeaders, &a.Headers)
	a.Username = f.Username
	r.credentials(t, a.Username, r.secret(t, "password", f.Password, f.PasswordFile, f.PasswordCredential, &a.Password))
	for i, u := range a.URLs {
		if warn := plainHTTPCredentials(u, a.Headers, a.Username != ""); warn != "" {
			t.item("urls", i).warnf("", "%s", warn)
		}
	}
	t.duration("resend_interval", f.ResendInterval, time.Second, &a.ResendInterval)
	if t.has("labels") {
		a.Labels = f.Labels
		for _, k := range sortedKeys(a.Labels) {
			t.sub("labels").check(k, checkLabelName(k))
		}
	}
	return a
}

// rules checks the [[rule]] tables and adds the implicit default rule.
func (r *reader) rules(root at, frs []fileRule, c *Config) []Rule {
	channels := c.ChannelNames()
	var rules []Rule
	byName := make(map[string]string)
	catchAll := "" // shown name of the first rule without conditions
	for i := range frs {
		f, t := &frs[i], root.item("rule", i)
		rl := Rule{Name: "rule-" + strconv.Itoa(i+1), Severity: "critical", Channels: []string{AllChannels}}
		if t.has("name") {
			rl.Name = f.Name
			t.check("name", checkName(rl.Name))
		}
		if other, dup := byName[rl.Name]; dup {
			t.errorf("name", "rule name %q is already used by %s", rl.Name, other)
		} else {
			byName[rl.Name] = shown(t.path)
		}
		if t.has("severity") {
			rl.Severity = f.Severity
			t.oneOf("severity", rl.Severity, "critical", "warning", "info")
		}
		if t.has("channels") {
			rl.Channels = append([]string{}, f.Channels...)
			for j, ch := range rl.Channels {
				if ch != AllChannels && !slices.Contains(channels, ch) {
					t.item("channels", j).errorf("", "unknown channel %q (configured: %s)", ch, strings.Join(channels, ", "))
				}
			}
		}
		rl.DryRun, rl.ActOnKernelLog = f.DryRun, f.ActOnKernelLog
		if f.Match != nil {
			rl.Match = r.match(t.sub("match"), f.Match)
		} else if t.given("match") { // of the wrong kind, or with such a value
			r.match(t.sub("match"), &fileMatch{})
		}
		rl.Actions = r.actions(t, f.Actions, rl.DryRun, c.Actions)
		if catchAll != "" {
			t.errorf("", "unreachable: %s has no match conditions and matches every event first", catchAll)
		}
		if rl.Match.IsEmpty() && catchAll == "" && !r.doc.troubled(t.key("match")) {
			catchAll = shown(t.path)
			if rl.Name != DefaultRuleName {
				catchAll += " (" + strconv.Quote(rl.Name) + ")"
			}
		}
		rules = append(rules, rl)
	}
	if catchAll == "" {
		for i := range rules {
			if rules[i].Name == DefaultRuleName {
				root.item("rule", i).errorf("name", "%q is the implicit default rule's name; only a rule without match conditions may take it", DefaultRuleName)
			}
		}
		rules = append(rules, defaultRule())
	}
	return rules
}

// match checks a rule's [rule.match] table.
func (r *reader) match(t at, f *fileMatch) Match {
	var m Match
	globs := func(key string, list stringList, mountpoint bool) []string {
		out := slices.Clone([]string(list))
		for i, g := range out {
			if msg := checkGlob(g); msg != "" {
				t.item(key, i).errorf("", "%s", msg)
				continue
			}
			if mountpoint {
				if !strings.HasPrefix(g, "/") {
					t.item(key, i).errorf("", "mount points are absolute: the pattern must start with \"/\": %q", g)
					continue
				}
				if len(g) > 1 {
					out[i] = strings.TrimRight(g, "/")
				}
			}
		}
		return out
	}
	m.Mountpoint = globs("mountpoint", f.Mountpoint, true)
	m.UUID = globs("uuid", f.UUID, false)
	m.Device = globs("device", f.Device, false)
	m.FSType = globs("fstype", f.FSType, false)
	if t.has("errno") {
		var vals []any
		switch v := f.Errno.(type) {
		case []any:
			vals = v
			if len(v) == 0 {
				t.errorf("errno", "empty list: leave errno out to match every errno")
			}
		case string, int64:
			vals = []any{v}
		default:
			t.errorf("errno", "expected an array of errno names or numbers, got %s", kindName(t.sub("errno").kind()))
		}
		for i, e := range vals {
			switch e := e.(type) {
			case string:
				n, ok := ErrnoNumber(strings.ToUpper(strings.TrimSpace(e)))
				if !ok {
					t.item("errno", i).errorf("", "unknown errno name %q", e)
					continue
				}
				m.Errno = append(m.Errno, n)
			case int64:
				if e < 1 || e > maxErrno {
					t.item("errno", i).errorf("", "errno numbers are between 1 and %d: %d", maxErrno, e)
					continue
				}
				m.Errno = append(m.Errno, int(e))
			default:
				t.item("errno", i).errorf("", "expected an errno name or number, got %s", kindName(t.item("errno", i).kind()))
			}
		}
	}
	if t.integer("count", f.Count, 1, math.MaxInt64) {
		m.Count = uint64(f.Count)
	}
	t.duration("within", f.Within, time.Millisecond, &m.Within)
	switch {
	case t.given("count") && !t.given("within"):
		t.errorf("count", "needs within, the window to count errors in")
	case t.given("within") && !t.given("count"):
		t.errorf("within", "needs count, the number of errors to reach")
	}
	return m
}

// actions checks a rule's actions.
func (r *reader) actions(t at, fas []fileAction, ruleDryRun bool, defaults Actions) []Action {
	var out []Action
	seen := make(map[string]string)
	for i, f := range fas {
		a := Action{Name: f.Name, Argv: f.Argv, Repeat: f.Repeat, DryRun: f.DryRun, Timeout: defaults.Timeout}
		e := t.item("actions", i)
		table := e.kind() != unstable.String
		// fail reports a problem with key of a table, or with the
		// action named by a string.
		fail := func(key, format string, args ...any) {
			if !table {
				key = ""
			}
			e.errorf(key, format, args...)
		}
		if table {
			e.required("name")
			if e.has("argv") && a.Name != ActionCommand && a.Name != "" {
				e.errorf("argv", "only the %q action takes argv", ActionCommand)
			}
			e.duration("timeout", f.Timeout, time.Second, &a.Timeout)
			if a.Name == "" {
				continue
			}
		}
		switch a.Name {
		case ActionRemountRO, ActionFsckNextBoot, ActionScrub, ActionCommand:
		default:
			fail("name", "unknown action %q (known: %s, %s, %s, %s)", a.Name, ActionRemountRO, ActionFsckNextBoot, ActionScrub, ActionCommand)
			continue
		}
		if a.Name == ActionCommand {
			r.command(e, table, a.Argv)
		}
		a.DryRun = a.DryRun || ruleDryRun || defaults.DryRun
		key := a.Key()
		if other, dup := seen[key]; dup {
			fail("", "same action as %s", other)
		} else {
			seen[key] = shown(e.path)
		}
		out = append(out, a)
	}
	return out
}

// command checks the argv of a command action e.
func (r *reader) command(e at, table bool, argv []string) {
	switch {
	case len(argv) == 0:
		if table && e.given("argv") {
			if e.has("argv") {
				e.errorf("argv", "must not be empty")
			}
		} else {
			e.errorf("", "the %q action needs argv, the program and its arguments", ActionCommand)
		}
	case !strings.HasPrefix(argv[0], "/"):
		e.errorf("argv", "the program must be an absolute path (it is run directly, without a shell or PATH): %q", argv[0])
	case r.info != nil:
		if msg, warn := checkProgram(argv[0]); msg != "" {
			e.errorf("argv", "%s", msg)
		} else if warn != "" {
			e.warnf("argv", "%s", warn)
		}
	}
	if i, used := shellScriptPlaceholders(argv); i > 0 {
		e.warnf("argv", "argv[%d] puts %s into a shell script: a file system's name or mount point can hold shell syntax (\"$(...)\", \";\"), which the shell would run; pass each as an argument of its own and use it quoted (\"$1\")",
			i+1, strings.Join(used, ", "))
	}
	if slices.ContainsFunc(argv, func(arg string) bool { return strings.ContainsRune(arg, 0) }) {
		e.errorf("argv", "arguments cannot contain NUL characters")
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
