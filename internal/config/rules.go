package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

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
			t.errorf("errno", "expected an array of errno names or numbers, got %s", t.sub("errno").what())
		}
		for i, e := range vals {
			switch e := e.(type) {
			case string:
				n, ok := event.ErrnoNumber(strings.ToUpper(strings.TrimSpace(e)))
				if !ok {
					t.item("errno", i).errorf("", "unknown errno name %q", e)
					continue
				}
				m.Errno = append(m.Errno, n)
			case int64:
				if e < 1 || e > event.MaxErrno {
					t.item("errno", i).errorf("", "errno numbers are between 1 and %d: %d", event.MaxErrno, e)
					continue
				}
				m.Errno = append(m.Errno, int(e))
			default:
				t.item("errno", i).errorf("", "expected an errno name or number, got %s", t.item("errno", i).what())
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
		table := !e.isString()
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
