package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fshealth/fshealth/internal/notify/hook"
)

// decoder walks the generic TOML tree, filling a Config and collecting
// problems with their lines.
type decoder struct {
	file     string
	info     *fileInfo // nil for Parse: no file is looked at
	locs     locations
	problems []Problem
	warnings []Problem
}

// node is one TOML table of the tree being walked.
type node struct {
	d *decoder
	// path locates the table for the line index (see locate).
	path []string
	// show is the table's name in messages: "" at the top, "history",
	// "webhook[1]", "rule[2].match".
	show string
	m    map[string]any
	used map[string]bool
}

func (d *decoder) root(m map[string]any) *node {
	return &node{d: d, m: m, used: make(map[string]bool)}
}

// keyPath returns the located path and the shown name of key in n.
func (n *node) keyPath(key string) ([]string, string) {
	p := append(append([]string(nil), n.path...), key)
	shown := key
	if !isBareKey(key) {
		shown = strconv.Quote(key)
	}
	if n.show == "" {
		return p, shown
	}
	return p, n.show + "." + shown
}

// isBareKey reports whether key can be written unquoted in TOML.
func isBareKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !isBare(key[i]) {
			return false
		}
	}
	return true
}

// line returns the line of key in n, or of n itself if key is empty.
func (n *node) line(key string) int {
	if key == "" {
		return n.d.locs.lookup(n.path)
	}
	p, _ := n.keyPath(key)
	return n.d.locs.lookup(p)
}

// errorf reports a problem with key of n (n itself if key is empty).
func (n *node) errorf(key, format string, args ...any) {
	n.d.problems = append(n.d.problems, n.problem(key, format, args...))
}

// warnf records a warning about key of n.
func (n *node) warnf(key, format string, args ...any) {
	n.d.warnings = append(n.d.warnings, n.problem(key, format, args...))
}

func (n *node) problem(key, format string, args ...any) Problem {
	show := n.show
	if key != "" {
		_, show = n.keyPath(key)
	}
	return Problem{File: n.d.file, Line: n.line(key), Key: show, Message: fmt.Sprintf(format, args...)}
}

// get returns key's value and marks it known.
func (n *node) get(key string) (any, bool) {
	v, ok := n.m[key]
	if ok {
		n.used[key] = true
	}
	return v, ok
}

// typeName names the TOML type of v, for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// str reads a string key into dst; it reports whether the key was present
// with the right type.
func (n *node) str(key string, dst *string) bool {
	v, ok := n.get(key)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		n.errorf(key, "expected a string, got %s", typeName(v))
		return false
	}
	*dst = s
	return true
}

// strs reads an array of strings (or a single string) into dst.
func (n *node) strs(key string, dst *[]string) bool {
	v, ok := n.get(key)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case string:
		*dst = []string{v}
		return true
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				n.elemErrorf(key, i, "expected a string, got %s", typeName(e))
				return false
			}
			out = append(out, s)
		}
		*dst = out
		return true
	}
	n.errorf(key, "expected an array of strings, got %s", typeName(v))
	return false
}

// elemErrorf reports a problem with element i (0-based) of array key.
func (n *node) elemErrorf(key string, i int, format string, args ...any) {
	n.d.problems = append(n.d.problems, n.elemProblem(key, i, format, args...))
}

// elemWarnf records a warning about element i (0-based) of array key.
func (n *node) elemWarnf(key string, i int, format string, args ...any) {
	n.d.warnings = append(n.d.warnings, n.elemProblem(key, i, format, args...))
}

func (n *node) elemProblem(key string, i int, format string, args ...any) Problem {
	p, show := n.keyPath(key)
	p = append(p, "#"+strconv.Itoa(i))
	return Problem{
		File: n.d.file, Line: n.d.locs.lookup(p),
		Key:     show + "[" + strconv.Itoa(i+1) + "]",
		Message: fmt.Sprintf(format, args...),
	}
}

// integer reads an integer key within [lo, hi].
func (n *node) integer(key string, dst *int64, lo, hi int64) bool {
	v, ok := n.get(key)
	if !ok {
		return false
	}
	i, ok := v.(int64)
	if !ok {
		n.errorf(key, "expected an integer, got %s", typeName(v))
		return false
	}
	if i < lo || i > hi {
		if hi == math.MaxInt64 {
			n.errorf(key, "must be at least %d: %d", lo, i)
		} else {
			n.errorf(key, "must be between %d and %d: %d", lo, hi, i)
		}
		return false
	}
	*dst = i
	return true
}

// boolean reads a boolean key.
func (n *node) boolean(key string, dst *bool) bool {
	v, ok := n.get(key)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		n.errorf(key, "expected true or false, got %s", typeName(v))
		return false
	}
	*dst = b
	return true
}

// duration reads a duration string of at least min.
func (n *node) duration(key string, dst *time.Duration, min time.Duration) bool {
	var s string
	if !n.str(key, &s) {
		if v, ok := n.m[key]; ok {
			if _, isInt := v.(int64); isInt {
				// Replace the generic type error with a hint.
				n.d.problems[len(n.d.problems)-1].Message = `expected a duration string such as "30s", "5m", "1h" or "7d", got an integer`
			}
		}
		return false
	}
	d, err := ParseDuration(s)
	if err != nil {
		n.errorf(key, "not a duration (%v): %q", err, s)
		return false
	}
	if d < min {
		if min == 0 {
			n.errorf(key, "must not be negative: %q", s)
		} else {
			n.errorf(key, "must be at least %s: %q", FormatDuration(min), s)
		}
		return false
	}
	*dst = d
	return true
}

// stringMap reads a table of strings.
func (n *node) stringMap(key string, dst *map[string]string) (*node, bool) {
	t := n.table(key)
	if t == nil {
		return nil, false
	}
	out := make(map[string]string, len(t.m))
	ok := true
	for _, k := range sortedKeys(t.m) {
		t.used[k] = true
		s, isStr := t.m[k].(string)
		if !isStr {
			t.errorf(k, "expected a string, got %s", typeName(t.m[k]))
			ok = false
			continue
		}
		out[k] = s
	}
	if ok {
		*dst = out
	}
	return t, ok
}

// table returns the sub-table key, or nil if it is absent (or not a table,
// which is reported).
func (n *node) table(key string) *node {
	v, ok := n.get(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		n.errorf(key, "expected a table, got %s", typeName(v))
		return nil
	}
	p, show := n.keyPath(key)
	return &node{d: n.d, path: p, show: show, m: m, used: make(map[string]bool)}
}

// element is one element of an array value, as a table node when it is
// one.
type element struct {
	index int
	value any
	node  *node // nil unless value is a table
}

// elements returns the elements of the array key ([[key]] tables or an
// inline array), or nil if it is absent or not an array (reported).
func (n *node) elements(key string) ([]element, bool) {
	v, ok := n.get(key)
	if !ok {
		return nil, false
	}
	var vals []any
	switch v := v.(type) {
	case []map[string]any:
		for _, m := range v {
			vals = append(vals, m)
		}
	case []any:
		vals = v
	case map[string]any:
		if n.show == "" {
			n.errorf(key, "expected an array of tables, got a table: write [[%s]], not [%s]", key, key)
		} else {
			n.errorf(key, "expected an array of tables, got a table")
		}
		return nil, false
	default:
		n.errorf(key, "expected an array of tables, got %s", typeName(v))
		return nil, false
	}
	p, show := n.keyPath(key)
	out := make([]element, len(vals))
	for i, val := range vals {
		out[i] = element{index: i, value: val}
		if m, ok := val.(map[string]any); ok {
			out[i].node = &node{
				d:    n.d,
				path: append(append([]string(nil), p...), "#"+strconv.Itoa(i)),
				show: show + "[" + strconv.Itoa(i+1) + "]",
				m:    m, used: make(map[string]bool),
			}
		}
	}
	return out, true
}

// tables returns the array of tables key; elements that are not tables are
// reported.
func (n *node) tables(key string) []*node {
	elems, _ := n.elements(key)
	var out []*node
	for _, e := range elems {
		if e.node == nil {
			n.elemErrorf(key, e.index, "expected a table, got %s", typeName(e.value))
			continue
		}
		out = append(out, e.node)
	}
	return out
}

// finish reports the keys of n that nothing read.
func (n *node) finish() {
	for _, k := range sortedKeys(n.m) {
		if n.used[k] {
			continue
		}
		p, _ := n.keyPath(k)
		msg := "unknown key " + strconv.Quote(k)
		switch {
		case n.show == "":
		case strings.Contains(n.show, "["):
			msg += " in " + n.show
		default:
			msg += " in [" + n.show + "]"
		}
		n.d.problems = append(n.d.problems, Problem{File: n.d.file, Line: n.d.locs.lookup(p), Message: msg})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// secretKeyLine matches a line assigning a key that holds a secret, to keep
// syntax error messages from quoting it.
var secretKeyLine = regexp.MustCompile(`(?i)^\s*["']?(secret|signing_secret|password|headers|[a-z0-9_-]*(token|auth|key|cookie)[a-z0-9_-]*)["']?\s*[.=]`)

// syntaxProblem turns a TOML parse error into a problem. The parser's
// message may quote the offending text; it is withheld when the line holds
// a secret.
func syntaxProblem(file string, data []byte, err error) Problem {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return Problem{File: file, Message: "syntax error: " + err.Error()}
	}
	line := pe.Position.Line
	msg := pe.Message
	for _, hint := range []string{"expected value but found", "Invalid float value", "to end with a newline, comment, or EOF"} {
		if strings.Contains(msg, hint) {
			msg += " (strings, durations and addresses must be quoted)"
			break
		}
	}
	lines := strings.Split(string(data), "\n")
	if line >= 1 && line <= len(lines) {
		text := lines[line-1]
		if secretKeyLine.MatchString(text) || strings.Contains(text, "{") && secretKeyLine.MatchString(text[strings.Index(text, "{")+1:]) {
			msg = "invalid value (details withheld: the line may hold a secret)"
		}
	}
	if strings.HasSuffix(pe.LastKey, "secret") || strings.HasSuffix(pe.LastKey, "password") {
		msg = "invalid value (details withheld: the line may hold a secret)"
	}
	return Problem{File: file, Line: line, Message: "syntax error: " + msg}
}

// parse is Load and Parse; info, set by Load, adds the checks that look at
// files.
func parse(name string, data []byte, info *fileInfo) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, &Error{Problems: []Problem{syntaxProblem(name, data, err)}}
	}
	d := &decoder{file: name, info: info, locs: locate(string(data))}
	c := Default()
	c.File = name
	c.Rules = nil
	d.decode(d.root(raw), c, info != nil)
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
		return nil, &Error{Problems: d.problems}
	}
	sort.SliceStable(d.warnings, func(i, j int) bool { return d.warnings[i].Line < d.warnings[j].Line })
	for _, w := range d.warnings {
		c.Warnings = append(c.Warnings, w.String())
	}
	return c, nil
}

// decode fills c from the document's root table.
func (d *decoder) decode(root *node, c *Config, checkFS bool) {
	if root.str("state_dir", &c.StateDir) {
		if msg := checkAbsPath(c.StateDir); msg != "" {
			root.errorf("state_dir", "%s", msg)
		}
	}
	if root.str("hostname", &c.Hostname) {
		if msg := checkHostname(c.Hostname); msg != "" {
			root.errorf("hostname", "%s", msg)
		}
	}
	if v, ok := root.m["watch"].([]any); ok {
		// Shorthand: watch = ["/", "/srv"] is [watch] paths = [...].
		root.m["watch"] = map[string]any{"paths": v}
		d.locs[strings.Join([]string{"watch", "paths"}, pathSep)] = root.line("watch")
		for i := range v {
			if l, ok := d.locs[strings.Join([]string{"watch", "#" + strconv.Itoa(i)}, pathSep)]; ok {
				d.locs[strings.Join([]string{"watch", "paths", "#" + strconv.Itoa(i)}, pathSep)] = l
			}
		}
	}
	if t := root.table("watch"); t != nil {
		if t.strs("paths", &c.Watch.Paths) {
			for i, p := range c.Watch.Paths {
				if msg := checkAbsPath(p); msg != "" {
					t.elemErrorf("paths", i, "%s", msg)
				}
			}
		}
		if len(c.Watch.Paths) == 0 {
			c.Watch.Paths = nil
		}
		t.boolean("kernel_log", &c.Watch.KernelLog)
		t.duration("kernel_log_hold", &c.Watch.KernelLogHold, 10*time.Millisecond)
		t.finish()
	}
	if t := root.table("metrics"); t != nil {
		if t.str("listen", &c.Metrics.Listen) {
			msg, warn := checkListen(c.Metrics.Listen)
			if msg != "" {
				t.errorf("listen", "%s", msg)
			} else if warn != "" {
				t.warnf("listen", "%s", warn)
			}
		}
		t.finish()
	}
	if t := root.table("history"); t != nil {
		t.duration("retention", &c.History.Retention, MinRetention)
		t.finish()
	}
	if t := root.table("delivery"); t != nil {
		t.duration("initial_backoff", &c.Delivery.InitialBackoff, 100*time.Millisecond)
		t.duration("max_backoff", &c.Delivery.MaxBackoff, 100*time.Millisecond)
		t.duration("max_age", &c.Delivery.MaxAge, time.Minute)
		if c.Delivery.MaxBackoff < c.Delivery.InitialBackoff {
			t.errorf("max_backoff", "must be at least initial_backoff (%s): %s",
				FormatDuration(c.Delivery.InitialBackoff), FormatDuration(c.Delivery.MaxBackoff))
		}
		t.finish()
	}
	if t := root.table("flood"); t != nil {
		t.duration("window", &c.Flood.Window, 0)
		t.duration("reminder_initial", &c.Flood.ReminderInitial, 0)
		t.duration("reminder_max", &c.Flood.ReminderMax, 0)
		if c.Flood.ReminderMax < c.Flood.ReminderInitial {
			t.errorf("reminder_max", "must be at least reminder_initial (%s): %s",
				FormatDuration(c.Flood.ReminderInitial), FormatDuration(c.Flood.ReminderMax))
		}
		if c.Flood.ReminderMax < c.Flood.Window {
			t.errorf("reminder_max", "must be at least window (%s): %s",
				FormatDuration(c.Flood.Window), FormatDuration(c.Flood.ReminderMax))
		}
		if c.Flood.Window == 0 {
			t.warnf("window", "0 turns anti-flood off: every event is alerted")
		}
		t.finish()
	}
	if t := root.table("journal"); t != nil {
		if t.str("mode", &c.Journal.Mode) && !slices.Contains([]string{JournalAuto, JournalJournal, JournalStderr}, c.Journal.Mode) {
			t.errorf("mode", "must be %q, %q or %q: %q", JournalAuto, JournalJournal, JournalStderr, c.Journal.Mode)
		}
		t.finish()
	}
	if t := root.table("hooks"); t != nil {
		if t.str("dir", &c.Hooks.Dir) && c.Hooks.Dir != "" {
			if msg := checkAbsPath(c.Hooks.Dir); msg != "" {
				t.errorf("dir", "%s", msg)
			} else if checkFS {
				for _, msg := range checkHooks(c.Hooks.Dir) {
					t.errorf("dir", "%s", msg)
				}
			}
		}
		t.str("user", &c.Hooks.User)
		t.str("group", &c.Hooks.Group)
		if checkFS && (c.Hooks.User != "" || c.Hooks.Group != "") {
			if _, err := hook.Credential(c.Hooks.User, c.Hooks.Group); err != nil {
				key := "user"
				if _, ok := t.m["user"]; !ok || strings.Contains(err.Error(), "group") {
					key = "group"
				}
				t.errorf(key, "%v", err)
			}
		}
		t.duration("timeout", &c.Hooks.Timeout, time.Second)
		var n int64
		if t.integer("max_concurrent", &n, 1, 1024) {
			c.Hooks.MaxConcurrent = int(n)
		}
		if t.str("isolation", &c.Hooks.Isolation) {
			switch c.Hooks.Isolation {
			case HookIsolationAuto, HookIsolationUnit, HookIsolationCgroup:
			default:
				t.errorf("isolation", "must be %q, %q or %q: %q", HookIsolationAuto, HookIsolationUnit, HookIsolationCgroup, c.Hooks.Isolation)
			}
		}
		t.finish()
	}
	if t := root.table("actions"); t != nil {
		t.boolean("dry_run", &c.Actions.DryRun)
		t.duration("timeout", &c.Actions.Timeout, time.Second)
		t.finish()
	}

	names := make(map[string]string) // channel name → who uses it
	for _, t := range root.tables("webhook") {
		c.Webhooks = append(c.Webhooks, d.webhook(t, len(c.Webhooks)+1, names))
	}
	for _, t := range root.tables("smtp") {
		c.SMTP = append(c.SMTP, d.smtp(t, "smtp", len(c.SMTP)+1, names, checkFS))
	}
	nmail := 0
	for _, t := range root.tables("mail") {
		nmail++
		c.SMTP = append(c.SMTP, d.smtp(t, "mail", nmail, names, checkFS))
	}
	for _, t := range root.tables("alertmanager") {
		c.Alertmanagers = append(c.Alertmanagers, d.alertmanager(t, len(c.Alertmanagers)+1, names))
	}
	channels := c.ChannelNames()
	d.rules(root, c, channels)
	root.finish()
}

// channelName reads and checks a channel's name, defaulting to
// kind-index.
func (d *decoder) channelName(t *node, kind string, index int, names map[string]string) string {
	name := kind + "-" + strconv.Itoa(index)
	if t.str("name", &name) {
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
		names[name] = t.show
	}
	return name
}

func (d *decoder) webhook(t *node, index int, names map[string]string) Webhook {
	w := Webhook{
		ContentType:     DefaultContentType,
		SignatureHeader: DefaultSignatureHeader,
		Timeout:         DefaultWebhookTimeout,
	}
	w.Name = d.channelName(t, "webhook", index, names)
	if t.str("url", &w.URL) {
		if msg := checkHTTPURL(w.URL); msg != "" {
			t.errorf("url", "%s", msg)
		} else if warn := d.readableURL(w.URL); warn != "" {
			t.warnf("url", "%s", warn)
		}
	} else if _, present := t.m["url"]; !present {
		t.errorf("", "missing required key \"url\"")
	}
	d.headers(t, &w.Headers)
	t.str("template", &w.Template)
	goodType := true
	if t.str("content_type", &w.ContentType) {
		if msg := checkMediaType(w.ContentType); msg != "" {
			t.errorf("content_type", "%s", msg)
			goodType = false
		}
	}
	if w.Template != "" && goodType {
		if msg := checkTemplate(w.Template, w.ContentType); msg != "" {
			t.errorf("template", "%s", msg)
		}
	}
	hasSecret := d.secret(t, "secret", &w.Secret)
	signingKey := "signing_secret"
	for _, k := range []string{"signing_secret_file", "signing_secret_credential"} {
		if _, ok := t.m[k]; ok {
			signingKey = k
		}
	}
	hasSigning := d.secret(t, "signing_secret", &w.SigningSecret)
	if w.SigningSecret != "" {
		if msg := checkSigningSecret(w.SigningSecret); msg != "" {
			t.errorf(signingKey, "%s", msg)
		}
	}
	if hasSecret && !hasSigning {
		t.warnf("secret", "signs the body alone: a captured request can be replayed; set signing_secret (Standard Webhooks) for signatures that cover the alert id and the time")
	}
	d.secretHeaders(t, &w.Headers)
	if t.str("signature_header", &w.SignatureHeader) {
		if msg := checkHeaderName(w.SignatureHeader); msg != "" {
			t.errorf("signature_header", "%s", msg)
		}
	}
	t.duration("timeout", &w.Timeout, 100*time.Millisecond)
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
	t.finish()
	return w
}

// headers reads and checks a channel's headers table.
func (d *decoder) headers(t *node, dst *map[string]string) {
	h, ok := t.stringMap("headers", dst)
	if !ok {
		return
	}
	for _, k := range sortedKeys(h.m) {
		if msg := checkSetHeader(k); msg != "" {
			h.errorf(k, "%s", msg)
			continue
		}
		if v, ok := h.m[k].(string); ok {
			if msg := checkHeaderValue(v); msg != "" {
				h.errorf(k, "%s", msg)
			}
		}
	}
	if d.info != nil && d.info.mode&0o004 != 0 && len(h.m) > 0 {
		t.warnf("headers", "the configuration file is readable by every user (mode %04o), and so are these header values: chmod o-r the file, or give them with header_files or header_credentials",
			d.info.mode)
	}
}

func (d *decoder) smtp(t *node, kind string, index int, names map[string]string, checkFS bool) SMTP {
	s := SMTP{TLS: TLSStartTLS, Timeout: DefaultSMTPTimeout, SubjectPrefix: DefaultSubjectPrefix}
	s.Name = d.channelName(t, kind, index, names)
	mailVia(t, &s)
	if s.Via == ViaSendmail {
		// No host, port or TLS.
	} else if t.str("host", &s.Host) {
		if msg := checkMailHost(s.Host); msg != "" {
			t.errorf("host", "%s", msg)
		}
	} else if _, present := t.m["host"]; !present {
		t.errorf("", "missing required key \"host\"")
	}
	if t.str("tls", &s.TLS) && !slices.Contains([]string{TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone}, s.TLS) {
		t.errorf("tls", "must be %q, %q, %q or %q: %q", TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone, s.TLS)
	}
	var port int64
	if t.integer("port", &port, 1, 65535) {
		s.Port = int(port)
	} else if _, present := t.m["port"]; !present {
		switch s.TLS {
		case TLSImplicit:
			s.Port = 465
		case TLSStartTLS:
			s.Port = 587
		default:
			s.Port = 25
		}
	}
	if t.str("from", &s.From) {
		if msg := checkMailAddress(s.From, s.Via); msg != "" {
			t.errorf("from", "%s", msg)
		}
	} else if _, present := t.m["from"]; !present {
		t.errorf("", "missing required key \"from\"")
	}
	if t.strs("to", &s.To) {
		if len(s.To) == 0 {
			t.errorf("to", "needs at least one address")
		}
		for i, a := range s.To {
			if msg := checkMailAddress(a, s.Via); msg != "" {
				t.elemErrorf("to", i, "%s", msg)
			}
		}
	} else if _, present := t.m["to"]; !present {
		t.errorf("", "missing required key \"to\"")
	}
	mailTLS(t, &s, checkFS)
	t.str("username", &s.Username)
	hasPassword := d.secret(t, "password", &s.Password)
	d.credentials(t, s.Username, hasPassword)
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
	t.duration("timeout", &s.Timeout, 100*time.Millisecond)
	if t.str("subject_prefix", &s.SubjectPrefix) {
		if msg := checkOneLine(s.SubjectPrefix); msg != "" {
			t.errorf("subject_prefix", "%s", msg)
		}
	}
	t.finish()
	return s
}

// credentials checks that username and password come together.
func (d *decoder) credentials(t *node, user string, hasPassword bool) {
	switch {
	case user != "" && !hasPassword:
		t.errorf("username", "needs a password")
	case user == "" && hasPassword:
		t.errorf("password", "needs a username")
	}
	if user != "" {
		if msg := checkOneLine(user); msg != "" {
			t.errorf("username", "%s", msg)
		}
	}
}

func (d *decoder) alertmanager(t *node, index int, names map[string]string) Alertmanager {
	a := Alertmanager{Timeout: DefaultAlertmanagerTimeout, ResendInterval: DefaultResendInterval}
	a.Name = d.channelName(t, "alertmanager", index, names)
	if t.strs("urls", &a.URLs) {
		if len(a.URLs) == 0 {
			t.errorf("urls", "needs at least one URL")
		}
		for i, u := range a.URLs {
			if msg := checkHTTPURL(u); msg != "" {
				t.elemErrorf("urls", i, "%s", msg)
			} else if warn := d.readableURL(u); warn != "" {
				t.elemWarnf("urls", i, "%s", warn)
			}
		}
	} else if _, present := t.m["urls"]; !present {
		t.errorf("", "missing required key \"urls\"")
	}
	t.duration("timeout", &a.Timeout, 100*time.Millisecond)
	d.headers(t, &a.Headers)
	d.secretHeaders(t, &a.Headers)
	t.str("username", &a.Username)
	d.credentials(t, a.Username, d.secret(t, "password", &a.Password))
	for i, u := range a.URLs {
		if warn := plainHTTPCredentials(u, a.Headers, a.Username != ""); warn != "" {
			t.elemWarnf("urls", i, "%s", warn)
		}
	}
	t.duration("resend_interval", &a.ResendInterval, time.Second)
	if l, ok := t.stringMap("labels", &a.Labels); ok {
		for _, k := range sortedKeys(l.m) {
			if msg := checkLabelName(k); msg != "" {
				l.errorf(k, "%s", msg)
			}
		}
	}
	t.finish()
	return a
}

// rules reads the [[rule]] tables and adds the implicit default rule.
func (d *decoder) rules(root *node, c *Config, channels []string) {
	byName := make(map[string]string)
	catchAll := "" // shown name of the first rule without conditions
	tables := root.tables("rule")
	for i, t := range tables {
		r := Rule{Name: "rule-" + strconv.Itoa(i+1), Severity: "critical", Channels: []string{AllChannels}}
		if t.str("name", &r.Name) {
			if msg := checkName(r.Name); msg != "" {
				t.errorf("name", "%s", msg)
			}
		}
		if other, dup := byName[r.Name]; dup {
			t.errorf("name", "rule name %q is already used by %s", r.Name, other)
		} else {
			byName[r.Name] = t.show
		}
		if t.str("severity", &r.Severity) && !slices.Contains([]string{"critical", "warning", "info"}, r.Severity) {
			t.errorf("severity", "must be \"critical\", \"warning\" or \"info\": %q", r.Severity)
		}
		if t.strs("channels", &r.Channels) {
			for j, ch := range r.Channels {
				if ch != AllChannels && !slices.Contains(channels, ch) {
					t.elemErrorf("channels", j, "unknown channel %q (configured: %s)", ch, strings.Join(channels, ", "))
				}
			}
		}
		t.boolean("dry_run", &r.DryRun)
		t.boolean("act_on_kernel_log", &r.ActOnKernelLog)
		if m := t.table("match"); m != nil {
			d.match(m, &r.Match)
			m.finish()
		}
		d.actions(t, &r, c.Actions)
		if catchAll != "" {
			t.errorf("", "unreachable: %s has no match conditions and matches every event first", catchAll)
		}
		if r.Match.IsEmpty() && catchAll == "" {
			catchAll = t.show
			if r.Name != DefaultRuleName {
				catchAll += " (" + strconv.Quote(r.Name) + ")"
			}
		}
		t.finish()
		c.Rules = append(c.Rules, r)
	}
	if catchAll == "" {
		for i, t := range tables {
			if c.Rules[i].Name == DefaultRuleName {
				t.errorf("name", "%q is the implicit default rule's name; only a rule without match conditions may take it", DefaultRuleName)
			}
		}
		c.Rules = append(c.Rules, defaultRule())
	}
}

// match reads a rule's [rule.match] table.
func (d *decoder) match(t *node, m *Match) {
	globs := func(key string, dst *[]string, mountpoint bool) {
		if !t.strs(key, dst) {
			return
		}
		for i, g := range *dst {
			if msg := checkGlob(g); msg != "" {
				t.elemErrorf(key, i, "%s", msg)
				continue
			}
			if mountpoint {
				if !strings.HasPrefix(g, "/") {
					t.elemErrorf(key, i, "mount points are absolute: the pattern must start with \"/\": %q", g)
					continue
				}
				if len(g) > 1 {
					(*dst)[i] = strings.TrimRight(g, "/")
				}
			}
		}
	}
	globs("mountpoint", &m.Mountpoint, true)
	globs("uuid", &m.UUID, false)
	globs("device", &m.Device, false)
	globs("fstype", &m.FSType, false)
	if v, ok := t.get("errno"); ok {
		var vals []any
		switch v := v.(type) {
		case []any:
			vals = v
		case string, int64:
			vals = []any{v}
		default:
			t.errorf("errno", "expected an array of errno names or numbers, got %s", typeName(v))
		}
		for i, e := range vals {
			switch e := e.(type) {
			case string:
				n, ok := ErrnoNumber(strings.ToUpper(strings.TrimSpace(e)))
				if !ok {
					t.elemErrorf("errno", i, "unknown errno name %q", e)
					continue
				}
				m.Errno = append(m.Errno, n)
			case int64:
				if e < 1 || e > maxErrno {
					t.elemErrorf("errno", i, "errno numbers are between 1 and %d: %d", maxErrno, e)
					continue
				}
				m.Errno = append(m.Errno, int(e))
			default:
				t.elemErrorf("errno", i, "expected an errno name or number, got %s", typeName(e))
			}
		}
		if _, isArray := v.([]any); isArray && len(vals) == 0 {
			t.errorf("errno", "empty list: leave errno out to match every errno")
		}
	}
	var count int64
	if t.integer("count", &count, 1, math.MaxInt64) {
		m.Count = uint64(count)
	}
	t.duration("within", &m.Within, time.Millisecond)
	_, hasCount := t.m["count"]
	_, hasWithin := t.m["within"]
	switch {
	case hasCount && !hasWithin:
		t.errorf("count", "needs within, the window to count errors in")
	case hasWithin && !hasCount:
		t.errorf("within", "needs count, the number of errors to reach")
	}
}

// actions reads a rule's actions.
func (d *decoder) actions(t *node, r *Rule, defaults Actions) {
	elems, _ := t.elements("actions")
	seen := make(map[string]string)
	for _, e := range elems {
		a := Action{Timeout: defaults.Timeout}
		var at *node
		switch v := e.value.(type) {
		case string:
			a.Name = v
		case map[string]any:
			at = e.node
			if !at.str("name", &a.Name) {
				if _, present := at.m["name"]; !present {
					at.errorf("", "missing required key \"name\"")
				}
			}
		default:
			t.elemErrorf("actions", e.index, "expected a table or an action name, got %s", typeName(v))
			continue
		}
		fail := func(key, format string, args ...any) {
			if at != nil {
				at.errorf(key, format, args...)
			} else {
				t.elemErrorf("actions", e.index, format, args...)
			}
		}
		if at != nil {
			if at.strs("argv", &a.Argv) && a.Name != ActionCommand && a.Name != "" {
				at.errorf("argv", "only the %q action takes argv", ActionCommand)
			}
			at.duration("timeout", &a.Timeout, time.Second)
			at.boolean("repeat", &a.Repeat)
			at.boolean("dry_run", &a.DryRun)
			at.finish()
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
			switch {
			case len(a.Argv) == 0:
				if at != nil && at.m["argv"] != nil {
					at.errorf("argv", "must not be empty")
				} else {
					fail("", "the %q action needs argv, the program and its arguments", ActionCommand)
				}
			case !strings.HasPrefix(a.Argv[0], "/"):
				at.errorf("argv", "the program must be an absolute path (it is run directly, without a shell or PATH): %q", a.Argv[0])
			case d.info != nil:
				if msg, warn := checkProgram(a.Argv[0]); msg != "" {
					at.errorf("argv", "%s", msg)
				} else if warn != "" {
					at.warnf("argv", "%s", warn)
				}
			}
			if i, used := shellScriptPlaceholders(a.Argv); i > 0 {
				at.warnf("argv", "argv[%d] puts %s into a shell script: a file system's name or mount point can hold shell syntax (\"$(...)\", \";\"), which the shell would run; pass each as an argument of its own and use it quoted (\"$1\")",
					i+1, strings.Join(used, ", "))
			}
			for _, arg := range a.Argv {
				if strings.ContainsRune(arg, 0) {
					at.errorf("argv", "arguments cannot contain NUL characters")
					break
				}
			}
		}
		a.DryRun = a.DryRun || r.DryRun || defaults.DryRun
		key := a.Key()
		where := t.show + ".actions[" + strconv.Itoa(e.index+1) + "]"
		if other, dup := seen[key]; dup {
			fail("", "same action as %s", other)
		} else {
			seen[key] = where
		}
		r.Actions = append(r.Actions, a)
	}
}
