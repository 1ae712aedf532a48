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

// what names the kind of value t is in the file, for messages: "a
// string", "a table"...
func (t at) what() string { return kindName(t.r.doc.kind(t.path)) }

// isString reports whether t is a string in the file.
func (t at) isString() bool { return t.r.doc.isString(t.path) }

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

// required reports a key the file must give but does not, and whether it
// gives it with a value of the right kind.
func (t at) required(key string) bool {
	if !t.given(key) {
		t.errorf("", "missing required key %q", key)
	}
	return t.has(key)
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
	doc.check(r, reflect.TypeFor[fileConfig]())
	if doc.decode(r, f) {
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
	if t.has("isolation") {
		h.Isolation = f.Isolation
		switch h.Isolation {
		case HookIsolationAuto, HookIsolationUnit, HookIsolationCgroup:
		default:
			t.errorf("isolation", "must be %q, %q or %q: %q", HookIsolationAuto, HookIsolationUnit, HookIsolationCgroup, h.Isolation)
		}
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
