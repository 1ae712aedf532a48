package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.StateDir != "/var/lib/fshealth" || c.Metrics.Listen != "127.0.0.1:9718" ||
		c.History.Retention != 90*Day || c.Journal.Mode != JournalAuto || len(c.Watch.Paths) != 0 {
		t.Errorf("Default() = %+v", c)
	}
	if c.Hooks.Dir != "" || len(c.Webhooks)+len(c.SMTP)+len(c.Alertmanagers) != 0 {
		t.Errorf("Default() has channels: %+v", c)
	}
	want := []Rule{{Name: "default", Severity: "critical", Channels: []string{"all"}, Implicit: true}}
	if !reflect.DeepEqual(c.Rules, want) {
		t.Errorf("Default().Rules = %+v, want %+v", c.Rules, want)
	}
	if got := c.ChannelNames(); !reflect.DeepEqual(got, []string{"journal"}) {
		t.Errorf("ChannelNames() = %q", got)
	}
	if c.Delivery.InitialBackoff <= 0 || c.Delivery.MaxBackoff < c.Delivery.InitialBackoff || c.Delivery.MaxAge <= c.Delivery.MaxBackoff {
		t.Errorf("bad delivery defaults: %+v", c.Delivery)
	}
	if c.Flood.Window <= 0 || c.Flood.ReminderInitial <= 0 || c.Flood.ReminderMax < c.Flood.ReminderInitial {
		t.Errorf("bad flood defaults: %+v", c.Flood)
	}
	// An empty file is the default configuration.
	e, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.File = ""
	if !reflect.DeepEqual(e, c) {
		t.Errorf("Parse(empty) = %+v\nwant %+v", e, c)
	}
}

// parseExample parses the documented example. It is parsed rather than
// loaded: it is not installed, and Load would warn about its inline
// secrets and its program that does not exist here.
func parseExample() (*Config, error) {
	const file = "../../docs/fshealth.example.toml"
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

func TestExampleLoads(t *testing.T) {
	c, err := parseExample()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if got, want := c.ChannelNames(), []string{"journal", "chat", "ops", "slack", "mail", "am"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ChannelNames() = %q, want %q", got, want)
	}
	var names []string
	for _, r := range c.Rules {
		names = append(names, r.Name)
	}
	if want := []string{"root-storm", "srv-corruption", "scratch", "default"}; !reflect.DeepEqual(names, want) {
		t.Errorf("rules %q, want %q", names, want)
	}
	if c.Rules[3].Implicit {
		t.Error("the file's catch-all rule is marked implicit")
	}
	root := c.Rules[0]
	if root.Match.Count != 10 || root.Match.Within != time.Minute || len(root.Actions) != 2 ||
		root.Actions[0].Name != ActionRemountRO || root.Actions[0].Timeout != 30*time.Second ||
		root.Actions[1].Timeout != 0 {
		t.Errorf("rule root-storm = %+v", root)
	}
	srv := c.Rules[1]
	if !reflect.DeepEqual(srv.Match.Errno, []int{117, 74}) || !reflect.DeepEqual(srv.Match.Mountpoint, []string{"/srv", "/srv/*"}) {
		t.Errorf("rule srv-corruption match = %+v", srv.Match)
	}
	if srv.Actions[1].Name != ActionCommand || srv.Actions[1].Argv[0] != "/usr/local/sbin/page-oncall" || srv.Actions[0].Timeout != 6*time.Hour {
		t.Errorf("rule srv-corruption actions = %+v", srv.Actions)
	}
	if c.SMTP[0].Port != 587 || c.SMTP[0].Password != "change-me" || c.Alertmanagers[0].Labels["team"] != "storage" {
		t.Errorf("channels = %+v %+v", c.SMTP, c.Alertmanagers)
	}
	if !strings.Contains(c.Webhooks[0].Template, "printf") || c.Webhooks[1].Headers["Authorization"] != "Bearer change-me" ||
		!strings.HasPrefix(c.Webhooks[1].SigningSecret, "whsec_") {
		t.Errorf("webhooks = %+v", c.Webhooks)
	}
	if s := c.Redacted(); strings.Contains(s, "change-me") {
		t.Errorf("Redacted() shows a secret:\n%s", s)
	}
}

// TestErrors checks the exact message of each kind of bad input.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "[history]\nretention = \"90d\n", `f.toml:2:17: syntax error: basic strings cannot have new lines`},
		{"unquoted value", "[history]\nretention = 90d", `f.toml:2:15: syntax error: strings, durations and addresses must be quoted`},
		{"unknown top-level key", "state_dir = \"/x\"\nstatedir = \"/y\"", `f.toml:2: unknown key "statedir"`},
		{"unknown key in table", "[metrics]\nlisten = \"127.0.0.1:1\"\n\n[history]\nretension = \"90d\"", `f.toml:5: unknown key "retension" in [history]`},
		{"unknown table", "[histroy]\nretention = \"90d\"", `f.toml:1: unknown key "histroy"`},
		{"unknown key in array element", "[[webhook]]\nurl = \"http://a\"\n[[webhook]]\nurl = \"http://b\"\nuri = \"http://c\"", `f.toml:5: unknown key "uri" in webhook[2]`},
		{"unknown key in match", "[[rule]]\n[rule.match]\nmountpoints = [\"/\"]", `f.toml:3: unknown key "mountpoints" in rule[1].match`},
		{"unknown key in inline action", "[[rule]]\nmatch = {fstype = \"ext4\"}\nactions = [\n  {name = \"scrub\"},\n  {name = \"remount-ro\", retry = true},\n]", `f.toml:5: unknown key "retry" in rule[1].actions[2]`},
		{"unknown key in action table", "[[rule]]\n[[rule.actions]]\nname = \"scrub\"\n[[rule.actions]]\nname = \"remount-ro\"\nargs = []", `f.toml:6: unknown key "args" in rule[1].actions[2]`},
		{"wrong type", "[metrics]\nlisten = 9718", `f.toml:2: metrics.listen: expected a string, got an integer`},
		{"table instead of array", "[webhook]\nurl = \"http://x\"", `f.toml:1: webhook: expected an array of tables, got a table: write [[webhook]], not [webhook]`},
		{"relative state dir", "state_dir = \"var/lib\"", `f.toml:1: state_dir: not an absolute path: "var/lib"`},
		{"bad hostname", "hostname = \"a b\"", `f.toml:1: hostname: not a host name: "a b"`},
		{"relative watch path", "[watch]\npaths = [\"/\",\n  \"srv\"]", `f.toml:3: watch.paths[2]: not an absolute path: "srv"`},
		{"listen without port", "[metrics]\nlisten = \"localhost\"", `f.toml:2: metrics.listen: not a host:port address: "localhost"`},
		{"listen bad port", "[metrics]\nlisten = \"127.0.0.1:99999\"", `f.toml:2: metrics.listen: port must be a number between 1 and 65535: "127.0.0.1:99999"`},
		{"retention too short", "[history]\nretention = \"12h\"", `f.toml:2: history.retention: must be at least 1d: "12h"`},
		{"kernel log not a boolean", "[watch]\nkernel_log = \"no\"", `f.toml:2: watch.kernel_log: expected true or false, got a string`},
		{"kernel log hold too short", "[watch]\nkernel_log_hold = \"1ms\"", `f.toml:2: watch.kernel_log_hold: must be at least 10ms: "1ms"`},
		{"duration as integer", "[history]\nretention = 90", `f.toml:2: history.retention: expected a duration string such as "30s", "5m", "1h" or "7d", got an integer`},
		{"bad duration unit", "[flood]\nwindow = \"5x\"", `f.toml:2: flood.window: not a duration (unknown unit (use ns, us, ms, s, m, h or d)): "5x"`},
		{"duration without unit", "[flood]\nwindow = \"5\"", `f.toml:2: flood.window: not a duration (missing unit (use ns, us, ms, s, m, h or d)): "5"`},
		{"negative duration", "[flood]\nwindow = \"-1m\"", `f.toml:2: flood.window: not a duration (negative duration): "-1m"`},
		{"reminder max below initial", "[flood]\nreminder_initial = \"2h\"\nreminder_max = \"1h\"", `f.toml:3: flood.reminder_max: must be at least reminder_initial (2h): 1h`},
		{"backoff order", "[delivery]\ninitial_backoff = \"1m\"\nmax_backoff = \"10s\"", `f.toml:3: delivery.max_backoff: must be at least initial_backoff (1m): 10s`},
		{"journal mode", "[journal]\nmode = \"syslog\"", `f.toml:2: journal.mode: must be "auto", "journal" or "stderr": "syslog"`},
		{"relative hooks dir", "[hooks]\ndir = \"hooks.d\"", `f.toml:2: hooks.dir: not an absolute path: "hooks.d"`},
		{"hooks concurrency", "[hooks]\nmax_concurrent = 0", `f.toml:2: hooks.max_concurrent: must be between 1 and 1024: 0`},
		{"hooks isolation", "[hooks]\nisolation = \"scope\"", `f.toml:2: hooks.isolation: must be "auto", "unit" or "cgroup": "scope"`},
		{"webhook url", "[[webhook]]\nname = \"a\"\nurl = \"https://a.example\"\n\n[[webhook]]\nname = \"b\"\n\n\n\n\n\nurl = \"ftp://x\"", `f.toml:12: webhook[2].url: not an absolute http(s) URL: "ftp://x"`},
		{"webhook url missing", "[[webhook]]\nname = \"a\"", `f.toml:1: webhook[1]: missing required key "url"`},
		{"webhook url userinfo hidden", "[[webhook]]\nurl = \"gopher://user:pa55@host/p?token=t0ken\"", `f.toml:2: webhook[1].url: not an absolute http(s) URL: "gopher://<redacted>@host/p?token=<redacted>"`},
		{"webhook unparsable url hidden", "[[webhook]]\nurl = \"http://user:pa55@[::1/x?k=t0ken\"", `f.toml:2: webhook[1].url: not an absolute http(s) URL: "http://<redacted>@[::1/x?<redacted>"`},
		{"webhook secret type", "[[webhook]]\nurl = \"http://x\"\nsecret = 12345", `f.toml:3: webhook[1].secret: expected a string, got an integer`},
		{"webhook template", "[[webhook]]\nurl = \"http://x\"\ntemplate = \"\"\"\n{{ .Summary }}\n{{ if }}\n\"\"\"", `f.toml:3: webhook[1].template: does not parse: line 2: missing value for if`},
		{"webhook template field", "[[webhook]]\nurl = \"http://x\"\ntemplate = \"{{ .Nope }}\"", `f.toml:3: webhook[1].template: fails on a sample alert: 1:3: executing "template" at <.Nope>: can't evaluate field Nope in type *alert.Alert`},
		{"webhook header name", "[[webhook]]\nurl = \"http://x\"\n[webhook.headers]\n\"Bad Name\" = \"v\"", `f.toml:4: webhook[1].headers."Bad Name": not a header name: "Bad Name"`},
		{"webhook header value", "[[webhook]]\nurl = \"http://x\"\nheaders = { Authorization = \"Bearer t0ken\\r\\nX: y\" }", `f.toml:3: webhook[1].headers.Authorization: header values cannot contain control characters (value not shown)`},
		{"webhook content type", "[[webhook]]\nurl = \"http://x\"\ncontent_type = \"json\"", `f.toml:3: webhook[1].content_type: not a media type: "json"`},
		{"channel name", "[[webhook]]\nname = \"my hook\"\nurl = \"http://x\"", `f.toml:2: webhook[1].name: names are 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit: "my hook"`},
		{"reserved channel name", "[[webhook]]\nname = \"all\"\nurl = \"http://x\"", `f.toml:2: webhook[1].name: "all" is reserved`},
		{"duplicate channel name", "[[webhook]]\nname = \"ops\"\nurl = \"http://x\"\n[[smtp]]\nname = \"ops\"\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]", `f.toml:5: smtp[1].name: channel name "ops" is already used by webhook[1]`},
		{"smtp from", "[[smtp]]\nhost = \"mail\"\nfrom = \"root@\"\nto = [\"a@b.c\"]", `f.toml:3: smtp[1].from: not an e-mail address: "root@"`},
		{"smtp to", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\", \"nope\"]", `f.toml:4: smtp[1].to[2]: not an e-mail address: "nope" (a bare local name is only for via = "sendmail")`},
		{"smtp host with port", "[[smtp]]\nhost = \"mail:25\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]", `f.toml:2: smtp[1].host: a host name or address without a port (set port): "mail:25"`},
		{"smtp tls", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\ntls = \"ssl\"", `f.toml:5: smtp[1].tls: must be "starttls", "starttls-opportunistic", "tls" or "none": "ssl"`},
		{"smtp port", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nport = 0", `f.toml:5: smtp[1].port: must be between 1 and 65535: 0`},
		{"smtp password in clear", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\ntls = \"none\"\nusername = \"u\"\npassword = \"pa55\"", `f.toml:7: smtp[1].password: would be sent unencrypted: set tls to "starttls" or "tls"`},
		{"smtp password without user", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\npassword = \"pa55\"", `f.toml:5: smtp[1].password: needs a username`},
		{"smtp missing to", "[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"", `f.toml:1: smtp[1]: missing required key "to"`},
		{"alertmanager urls", "[[alertmanager]]\nurls = [\"http://am:9093\", \"am:9093\"]", `f.toml:2: alertmanager[1].urls[2]: not an absolute http(s) URL: "am:9093"`},
		{"alertmanager label", "[[alertmanager]]\nurls = [\"http://am:9093\"]\n[alertmanager.labels]\nteam = \"x\"\ninstance = \"y\"", `f.toml:5: alertmanager[1].labels.instance: label "instance" is set by fshealth`},
		{"alertmanager resend", "[[alertmanager]]\nurls = [\"http://am:9093\"]\nresend_interval = \"10ms\"", `f.toml:3: alertmanager[1].resend_interval: must be at least 1s: "10ms"`},
		{"rule channel", "[[webhook]]\nname = \"ops\"\nurl = \"http://x\"\n[[rule]]\nchannels = [\"ops\", \"pager\"]", `f.toml:5: rule[1].channels[2]: unknown channel "pager" (configured: journal, ops)`},
		{"rule severity", "[[rule]]\nseverity = \"fatal\"", `f.toml:2: rule[1].severity: must be "critical", "warning" or "info": "fatal"`},
		{"duplicate rule name", "[[rule]]\nname = \"a\"\nmatch = {fstype = \"ext4\"}\n[[rule]]\nname = \"a\"", `f.toml:5: rule[2].name: rule name "a" is already used by rule[1]`},
		{"reserved rule name", "[[rule]]\nname = \"default\"\nmatch = {fstype = \"ext4\"}", `f.toml:2: rule[1].name: "default" is the implicit default rule's name; only a rule without match conditions may take it`},
		{"unreachable rule", "[[rule]]\nname = \"everything\"\n[[rule]]\nname = \"late\"\nmatch = {fstype = \"xfs\"}", `f.toml:3: rule[2]: unreachable: rule[1] ("everything") has no match conditions and matches every event first`},
		{"relative mountpoint glob", "[[rule]]\n[rule.match]\nmountpoint = [\"/\", \"srv/*\"]", `f.toml:3: rule[1].match.mountpoint[2]: mount points are absolute: the pattern must start with "/": "srv/*"`},
		{"bad glob", "[[rule]]\n[rule.match]\ndevice = [\n  \"/dev/sd[a\",\n]", `f.toml:4: rule[1].match.device[1]: bad pattern (syntax error in pattern): "/dev/sd[a"`},
		{"unknown errno name", "[[rule]]\nmatch = { errno = [\"EIO\", \"EFOO\"] }", `f.toml:2: rule[1].match.errno[2]: unknown errno name "EFOO"`},
		{"errno number range", "[[rule]]\nmatch = { errno = [5, 9999] }", `f.toml:2: rule[1].match.errno[2]: errno numbers are between 1 and 4095: 9999`},
		{"errno type", "[[rule]]\nmatch = { errno = [true] }", `f.toml:2: rule[1].match.errno[1]: expected an errno name or number, got a boolean`},
		{"count without within", "[[rule]]\n[rule.match]\ncount = 3", `f.toml:3: rule[1].match.count: needs within, the window to count errors in`},
		{"within without count", "[[rule]]\n[rule.match]\nwithin = \"1m\"", `f.toml:3: rule[1].match.within: needs count, the number of errors to reach`},
		{"count zero", "[[rule]]\n[rule.match]\ncount = 0\nwithin = \"1m\"", `f.toml:3: rule[1].match.count: must be at least 1: 0`},
		{"unknown action", "[[rule]]\nactions = [\"remount-ro\", \"explode\"]", `f.toml:2: rule[1].actions[2]: unknown action "explode" (known: remount-ro, fsck-next-boot, scrub, command)`},
		{"unknown action in table", "[[rule]]\n[[rule.actions]]\nname = \"reboot\"", `f.toml:3: rule[1].actions[1].name: unknown action "reboot" (known: remount-ro, fsck-next-boot, scrub, command)`},
		{"action missing name", "[[rule]]\n[[rule.actions]]\ntimeout = \"1m\"", `f.toml:2: rule[1].actions[1]: missing required key "name"`},
		{"command without argv", "[[rule]]\nactions = [{name = \"command\"}]", `f.toml:2: rule[1].actions[1]: the "command" action needs argv, the program and its arguments`},
		{"command relative program", "[[rule]]\n[[rule.actions]]\nname = \"command\"\nargv = [\"logger\", \"x\"]", `f.toml:4: rule[1].actions[1].argv: the program must be an absolute path (it is run directly, without a shell or PATH): "logger"`},
		{"argv on builtin", "[[rule]]\n[[rule.actions]]\nname = \"scrub\"\nargv = [\"/bin/x\"]", `f.toml:4: rule[1].actions[1].argv: only the "command" action takes argv`},
		{"duplicate action", "[[rule]]\nactions = [\"scrub\", \"scrub\"]", `f.toml:2: rule[1].actions[2]: same action as rule[1].actions[1]`},
		{"action timeout", "[[rule]]\nactions = [{name = \"scrub\", timeout = \"0s\"}]", `f.toml:2: rule[1].actions[1].timeout: must be at least 1s: "0s"`},
		{"duration as date", "[history]\nretention = 2026-01-01", `f.toml:2: history.retention: expected a duration string such as "30s", "5m", "1h" or "7d", got a date-time`},
		{"inline table instead of array", "webhook = { url = \"http://x\" }", `f.toml:1: webhook: expected an array of tables, got a table`},
		{"action of the wrong kind", "[[rule]]\nactions = [\"scrub\", 5]", `f.toml:2: rule[1].actions[2]: expected a table or an action name, got an integer`},
		{"errno table", "[[rule]]\nmatch = { errno = { a = 1 } }", `f.toml:2: rule[1].match.errno: expected an array of errno names or numbers, got a table`},
		{"table of the wrong kind", "[[webhook]]\nurl = \"http://x\"\n[[webhook.headers]]\na = \"b\"", `f.toml:3: webhook[1].headers: expected a table, got an array of tables`},
		{"duplicate key", "[history]\nretention = \"90d\"\nretention = \"91d\"", `f.toml:3:1: syntax error: key retention is already defined`},
		{"unquoted address", "[metrics]\nlisten = 127.0.0.1:9718", `f.toml:2:15: syntax error: expected newline but got U+002E '.' (strings, durations and addresses must be quoted)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.toml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Errorf("error %T is not a *Error with problems", err)
			}
			for _, secret := range []string{"pa55", "t0ken"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the secret %q: %s", secret, err)
				}
			}
		})
	}
}

// TestManyProblems checks that every problem is reported, in line order.
func TestManyProblems(t *testing.T) {
	in := `
[history]
retention = "1h"

[[webhook]]
url = "ftp://x"

[flood]
window = "soon"
`
	_, err := Parse("f.toml", []byte(in))
	want := `f.toml:3: history.retention: must be at least 1d: "1h"
f.toml:6: webhook[1].url: not an absolute http(s) URL: "ftp://x"
f.toml:9: flood.window: not a duration (expected a number): "soon"`
	if err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}

// TestProblemsOfEveryKind checks that unknown keys, values of the wrong
// kind and values that mean nothing are all reported at once, in line
// order; that a value of the wrong kind draws no second problem (it is
// not taken for missing or empty); and that a rule whose conditions are of
// the wrong kind is not taken for a catch-all.
func TestProblemsOfEveryKind(t *testing.T) {
	in := `statedir = "/y"
[metrics]
listen = 9718
[history]
retention = "1h"

[[smtp]]
host = "mail"
from = "a@b.c"
to = ["a@b.c", 5]
username = "u"
password = 1234
tls = "ssl"

[[rule]]
match = { fstype = 5 }
[[rule.actions]]
name = "command"
argv = [5]
[[rule]]
name = "late"
match = { fstype = "xfs" }
severity = "fatal"
`
	_, err := Parse("f.toml", []byte(in))
	want := `f.toml:1: unknown key "statedir"
f.toml:3: metrics.listen: expected a string, got an integer
f.toml:5: history.retention: must be at least 1d: "1h"
f.toml:10: smtp[1].to[2]: expected a string, got an integer
f.toml:12: smtp[1].password: expected a string, got an integer
f.toml:13: smtp[1].tls: must be "starttls", "starttls-opportunistic", "tls" or "none": "ssl"
f.toml:16: rule[1].match.fstype: expected an array of strings, got an integer
f.toml:19: rule[1].actions[1].argv[1]: expected a string, got an integer
f.toml:23: rule[2].severity: must be "critical", "warning" or "info": "fatal"`
	if err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}

// TestSecretsNeverShown puts secrets into every place that can fail and
// checks no error, warning or dump shows them.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "Sup3rS3cret"
	// signingKey is the base64 part of signingSecret.
	const signingKey = "U3VwM3JTM2NyZXQtU3VwM3JTM2NyZXQtU3VwM3JTM2NyZXQ="
	const signingSecret = "whsec_" + signingKey
	inputs := []string{
		"[[webhook]]\nurl = \"http://x\"\nsecret = " + secret,
		"[[webhook]]\nurl = \"http://x\"\nsecret = \"" + secret,
		"[[webhook]]\nurl = \"http://x\"\nsecret = [\"" + secret + "\"]",
		"[[webhook]]\nurl = \"http://x\"\nheaders = { Authorization = " + secret + " }",
		"[[webhook]]\nurl = \"http://x\"\nheaders = { Authorization = \"" + secret + "\n\" }",
		"[[webhook]]\nurl = \"http://x\"\nheaders = { Authorization = \"" + secret + "\\n\" }",
		"[[webhook]]\nurl = \"ftp://u:" + secret + "@x/?k=" + secret + "\"",
		"[[webhook]]\nurl = \"http://u:" + secret + "@[x/?k=" + secret + "\"",
		"[[smtp]]\nhost = \"m\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\npassword = " + secret,
		"[[smtp]]\nhost = \"m\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\npassword = \"" + secret + "\"\ntls = \"none\"",
		"[[smtp]]\nhost = \"m\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\npassword = \"" + secret + "\"",
		"[[alertmanager]]\nurls = [\"http://x\"]\npassword = \"" + secret + "\"",
		"[[webhook]]\nurl = \"http://x\"\nsigning_secret = \"whsec_" + secret + "\"",
		"[[webhook]]\nurl = \"http://x\"\nsigning_secret = \"" + secret + "\"",
		"[[webhook]]\nurl = \"http://x\"\nsigning_secret = " + secret,
		"[[webhook]]\nurl = \"http://x\"\n  signing_secret = \"whsec_" + secret + "\n\"",
		"[[alertmanager]]\nurls = [\"http://x\"]\npassword = 1\nusername = \"" + "u\"\n[alertmanager.headers]\nX-Token = \"" + secret + "\\u0000\"",
	}
	for _, in := range inputs {
		c, err := Parse("f.toml", []byte(in))
		if err == nil {
			t.Errorf("no error for %q", in)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error for %q shows the secret: %s", in, err)
		}
		_ = c
	}
	// A valid file full of secrets: warnings and the dump hide them.
	in := `
[[webhook]]
name = "w"
url = "https://user:` + secret + `@hooks.example.com/x?token=` + secret + `"
secret = "` + secret + `"
signing_secret = "` + signingSecret + `"
headers = { Authorization = "Bearer ` + secret + `" }
[[smtp]]
name = "m"
host = "mail.example.com"
tls = "starttls-opportunistic"
from = "a@example.com"
to = ["b@example.com"]
username = "u"
password = "` + secret + `"
[[alertmanager]]
name = "am"
urls = ["http://u:` + secret + `@am:9093"]
username = "u"
password = "` + secret + `"
headers = { X-Scope-OrgID = "` + secret + `" }
`
	c, err := Parse("f.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "smtp[1].password") || !strings.Contains(c.Warnings[1], "alertmanager[1].urls[1]: credentials") {
		t.Errorf("warnings %q, want one about smtp[1].password and one about alertmanager[1].urls[1]", c.Warnings)
	}
	for _, w := range c.Warnings {
		if strings.Contains(w, secret) || strings.Contains(w, signingKey) {
			t.Errorf("warning shows the secret: %s", w)
		}
	}
	dump := c.Redacted()
	if strings.Contains(dump, secret) || strings.Contains(dump, signingKey) {
		t.Errorf("Redacted() shows the secret:\n%s", dump)
	}
	// Printing the configuration or a channel hides secrets too.
	for _, v := range []any{c, *c, c.Webhooks, c.SMTP, c.Alertmanagers, c.Webhooks[0], &c.SMTP[0]} {
		for _, format := range []string{"%v", "%+v", "%s"} {
			if s := fmt.Sprintf(format, v); strings.Contains(s, secret) || strings.Contains(s, signingKey) {
				t.Errorf("Sprintf(%q, %T) shows the secret: %s", format, v, s)
			}
		}
	}
	for _, want := range []string{
		`url = 'https://<redacted>@hooks.example.com/x?token=<redacted>'`,
		`secret = '<redacted>'`,
		`signing_secret = '<redacted>'`,
		`Authorization = '<redacted>'`,
		`password = '<redacted>'`,
		`urls = ['http://<redacted>@am:9093']`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("Redacted() lacks %s:\n%s", want, dump)
		}
	}
}

// TestRedactedRoundTrip checks that Redacted's dump is itself a valid
// configuration with the same meaning (secrets aside).
func TestRedactedRoundTrip(t *testing.T) {
	c, err := parseExample()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse("dump.toml", []byte(c.Redacted()))
	if err != nil {
		t.Fatalf("dump does not parse: %v\n%s", err, c.Redacted())
	}
	// Undo the redaction and compare.
	d.File = c.File
	for i := range d.Webhooks {
		d.Webhooks[i].Secret = c.Webhooks[i].Secret
		d.Webhooks[i].SigningSecret = c.Webhooks[i].SigningSecret
		d.Webhooks[i].Headers = c.Webhooks[i].Headers
	}
	for i := range d.SMTP {
		d.SMTP[i].Password = c.SMTP[i].Password
	}
	if !reflect.DeepEqual(c, d) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", d, c)
	}
	// The defaults round-trip too.
	def := Default()
	d, err = Parse("dump.toml", []byte(def.Redacted()))
	if err != nil {
		t.Fatal(err)
	}
	d.File = ""
	d.Rules[0].Implicit = true
	if !reflect.DeepEqual(def, d) {
		t.Errorf("default round trip differs:\n got %+v\nwant %+v", d, def)
	}
}

func TestImplicitDefaultRule(t *testing.T) {
	c, err := Parse("f.toml", []byte(`
[[rule]]
name = "ext4"
severity = "warning"
channels = []
match = { fstype = "ext4" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) != 2 || !c.Rules[1].Implicit || c.Rules[1].Name != "default" || !c.Rules[1].Match.IsEmpty() {
		t.Fatalf("rules = %+v", c.Rules)
	}
	if len(c.Rules[0].Channels) != 0 || c.Rules[0].Channels == nil {
		t.Errorf("channels = [] became %#v", c.Rules[0].Channels)
	}
	// A file rule without conditions replaces the implicit one.
	c, err = Parse("f.toml", []byte("[[rule]]\nname = \"catch-all\"\nseverity = \"info\"\nchannels = [\"journal\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) != 1 || c.Rules[0].Implicit || c.Rules[0].Severity != "info" {
		t.Errorf("rules = %+v", c.Rules)
	}
	// Unnamed rules are numbered.
	c, err = Parse("f.toml", []byte("[[rule]]\nmatch = {fstype = \"xfs\"}\n[[rule]]\nmatch = {fstype = \"ext4\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rules[0].Name != "rule-1" || c.Rules[1].Name != "rule-2" {
		t.Errorf("rules = %+v", c.Rules)
	}
}

func TestRuleDetails(t *testing.T) {
	c, err := Parse("f.toml", []byte(`
[actions]
dry_run = false
timeout = "2m"

[[rule]]
name = "r"
dry_run = true
[rule.match]
mountpoint = "/srv/"
uuid = ["0A1B*"]
errno = ["EFSCORRUPTED", "eio", 28, "ENOTSUP"]
count = 5
within = "1.5d"
[[rule.actions]]
name = "command"
argv = ["/bin/true"]
repeat = true
[[rule.actions]]
name = "command"
argv = ["/bin/false"]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rules[0]
	want := Match{Mountpoint: []string{"/srv"}, UUID: []string{"0A1B*"}, Errno: []int{117, 5, 28, 95}, Count: 5, Within: 36 * time.Hour}
	if !reflect.DeepEqual(r.Match, want) {
		t.Errorf("match = %+v, want %+v", r.Match, want)
	}
	wantActions := []Action{
		{Name: "command", Argv: []string{"/bin/true"}, Timeout: 2 * time.Minute, Repeat: true, DryRun: true},
		{Name: "command", Argv: []string{"/bin/false"}, Timeout: 2 * time.Minute, DryRun: true},
	}
	if !reflect.DeepEqual(r.Actions, wantActions) {
		t.Errorf("actions = %+v, want %+v", r.Actions, wantActions)
	}
	if r.Actions[0].Key() == r.Actions[1].Key() {
		t.Error("two commands share a key")
	}
}

func TestSMTPPortDefaults(t *testing.T) {
	for tls, port := range map[string]int{"starttls": 587, "tls": 465, "none": 25, "starttls-opportunistic": 25} {
		c, err := Parse("f.toml", []byte("[[smtp]]\nhost = \"mail\"\nfrom = \"a@b.c\"\nto = \"b@c.d\"\ntls = \""+tls+"\""))
		if err != nil {
			t.Fatal(err)
		}
		if c.SMTP[0].Port != port || c.SMTP[0].Name != "smtp-1" {
			t.Errorf("tls %s: %+v", tls, c.SMTP[0])
		}
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[metrics]\nlisten = \"0.0.0.0:9718\"", `f.toml:2: metrics.listen: "0.0.0.0:9718" listens on every interface: metrics are readable from other hosts`},
		{"[metrics]\nlisten = \":9718\"", `f.toml:2: metrics.listen: ":9718" listens on every interface: metrics are readable from other hosts`},
		{"[metrics]\nlisten = \"192.0.2.1:9718\"", `f.toml:2: metrics.listen: "192.0.2.1:9718" is not a loopback address: metrics are readable from other hosts`},
		{"[flood]\nwindow = \"0s\"", `f.toml:2: flood.window: 0 turns anti-flood off: every event is alerted`},
	}
	for _, tt := range tests {
		c, err := Parse("f.toml", []byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Warnings, []string{tt.want}) {
			t.Errorf("warnings %q, want %q", c.Warnings, tt.want)
		}
	}
	for _, ok := range []string{"127.0.0.1:1", "[::1]:9718", "localhost:9718", ""} {
		c, err := Parse("f.toml", []byte("[metrics]\nlisten = \""+ok+"\""))
		if err != nil || len(c.Warnings) != 0 {
			t.Errorf("listen %q: %v %q", ok, err, c.Warnings)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	hooks := filepath.Join(dir, "hooks.d")
	if err := os.Mkdir(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fshealth.toml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[hooks]\ndir = \"" + hooks + "\"\n")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ChannelNames(); !reflect.DeepEqual(got, []string{"journal", "hooks"}) || c.File != file {
		t.Errorf("ChannelNames() = %q, File %q", got, c.File)
	}
	// Parse does not look at the directory; Load does.
	write("[hooks]\ndir = \"" + hooks + "/nope\"\n")
	if _, err := Load(file); err == nil || err.Error() != file+`:2: hooks.dir: no such directory: "`+hooks+`/nope"` {
		t.Errorf("missing hooks dir: %v", err)
	}
	if _, err := Parse(file, []byte("[hooks]\ndir = \""+hooks+"/nope\"\n")); err != nil {
		t.Errorf("Parse looked at the hooks dir: %v", err)
	}
	if err := os.Chmod(hooks, 0o777); err != nil {
		t.Fatal(err)
	}
	write("\n[hooks]\ndir = \"" + hooks + "\"\n")
	if _, err := Load(file); err == nil || !strings.HasPrefix(err.Error(), file+`:3: hooks.dir: hooks directory "`+hooks+`" is a directory writable by its group or by every user`) {
		t.Errorf("world-writable hooks dir: %v", err)
	}
}

func TestApplyOverrides(t *testing.T) {
	str := func(s string) *string { return &s }
	hooks := t.TempDir()

	c := Default()
	err := c.ApplyOverrides(Overrides{
		StateDir:      str("/srv/fshealth"),
		Webhooks:      []string{"http://127.0.0.1:8080/a", "https://h.example/b"},
		Alertmanagers: []string{"http://am:9093"},
		HooksDir:      str(hooks),
		MetricsListen: str(""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/srv/fshealth" || c.Metrics.Listen != "" || c.Hooks.Dir != hooks {
		t.Errorf("config = %+v", c)
	}
	want := []string{"journal", "hooks", "webhook-flag-1", "webhook-flag-2", "alertmanager-flag-1"}
	if got := c.ChannelNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("ChannelNames() = %q, want %q", got, want)
	}
	if got := c.RuleChannels(&c.Rules[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("default rule channels = %q, want %q", got, want)
	}
	if w := c.Webhooks[1]; w.URL != "https://h.example/b" || !w.FromFlag || w.Timeout != DefaultWebhookTimeout || w.ContentType != DefaultContentType {
		t.Errorf("flag webhook = %+v", w)
	}
	if a := c.Alertmanagers[0]; !reflect.DeepEqual(a.URLs, []string{"http://am:9093"}) || a.ResendInterval != DefaultResendInterval {
		t.Errorf("flag alertmanager = %+v", a)
	}

	// A file whose catch-all rule names its channels gets the flag
	// channels added to it; other rules are left alone.
	c, err = Parse("f.toml", []byte(`
[[webhook]]
name = "ops"
url = "http://ops"
[[rule]]
name = "xfs"
channels = ["ops"]
match = { fstype = "xfs" }
[[rule]]
name = "rest"
channels = ["journal"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyOverrides(Overrides{Webhooks: []string{"http://x"}, HooksDir: str(hooks)}); err != nil {
		t.Fatal(err)
	}
	if got := c.Rules[1].Channels; !reflect.DeepEqual(got, []string{"journal", "hooks", "webhook-flag-1"}) {
		t.Errorf("catch-all channels = %q", got)
	}
	if got := c.Rules[0].Channels; !reflect.DeepEqual(got, []string{"ops"}) {
		t.Errorf("xfs rule channels = %q", got)
	}

	// Bad flags: exact errors, and c is unchanged.
	tests := []struct {
		o    Overrides
		want string
	}{
		{Overrides{StateDir: str("rel")}, `--state-dir: not an absolute path: "rel"`},
		{Overrides{Webhooks: []string{"http://ok", "ftp://u:pa55@x"}}, `--webhook: not an absolute http(s) URL: "ftp://<redacted>@x"`},
		{Overrides{Alertmanagers: []string{"am:9093"}}, `--alertmanager: not an absolute http(s) URL: "am:9093"`},
		{Overrides{HooksDir: str(hooks + "/missing")}, `--hooks-dir: no such directory: "` + hooks + `/missing"`},
		{Overrides{MetricsListen: str("9718")}, `--metrics-listen: not a host:port address: "9718"`},
	}
	for _, tt := range tests {
		c := Default()
		err := c.ApplyOverrides(tt.o)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ApplyOverrides(%+v) = %v, want %s", tt.o, err, tt.want)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("ApplyOverrides(%+v) changed the config on error", tt.o)
		}
	}

	// A name collision with the file.
	c, err = Parse("f.toml", []byte("[[webhook]]\nname = \"webhook-flag-1\"\nurl = \"http://x\""))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyOverrides(Overrides{Webhooks: []string{"http://y"}}); err == nil ||
		err.Error() != `--webhook: channel name "webhook-flag-1" is already used in the configuration file` {
		t.Errorf("collision: %v", err)
	}
	// Turning hooks off while a rule uses them.
	c, err = Parse("f.toml", []byte("[hooks]\ndir = \"/h\"\n[[rule]]\nchannels = [\"hooks\"]"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyOverrides(Overrides{HooksDir: str("")}); err == nil ||
		err.Error() != `--hooks-dir: cannot turn hooks off: rule "rule-1" sends to the "hooks" channel` {
		t.Errorf("hooks off: %v", err)
	}
	// A warning for a non-loopback listen address.
	c = Default()
	if err := c.ApplyOverrides(Overrides{MetricsListen: str("0.0.0.0:9718")}); err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "--metrics-listen: ") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestRuleChannels(t *testing.T) {
	c, err := Parse("f.toml", []byte(`
[[webhook]]
name = "a"
url = "http://a"
[[smtp]]
name = "b"
host = "mail"
from = "x@y.z"
to = ["x@y.z"]
[[rule]]
channels = ["b", "a", "b"]
match = { fstype = "ext4" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RuleChannels(&c.Rules[0]); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("RuleChannels = %q", got)
	}
	if got := c.RuleChannels(&c.Rules[1]); !reflect.DeepEqual(got, []string{"journal", "a", "b"}) {
		t.Errorf("RuleChannels(default) = %q", got)
	}
}

func TestDurations(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"90d", 90 * Day, "90d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"1.5d", 36 * time.Hour, "1d12h"},
		{"36h", 36 * time.Hour, "1d12h"},
		{"90s", 90 * time.Second, "1m30s"},
		{"1h", time.Hour, "1h"},
		{"2h30m", 150 * time.Minute, "2h30m"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"0", 0, "0s"},
		{"0s", 0, "0s"},
		{" 5m ", 5 * time.Minute, "5m"},
		{"1d1s", Day + time.Second, "1d1s"},
	}
	for _, tt := range good {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := FormatDuration(tt.want); s != tt.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.want, s, tt.out)
		}
	}
	for _, in := range []string{"", "d", "5", "-1s", "1x", "1..5d", "1e3s", "99999999999d", "h1"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
}

// TestLines checks key lines in tricky documents: strings holding brackets,
// quotes and fake keys, multi-line arrays, quoted and dotted keys.
func TestLines(t *testing.T) {
	src := `# comment [not] a = 1
top = "a # not a comment"          # 2
"quoted key" = 'x'                 # 3
ml = """
[fake]
fake = 1 """                       # 4-6
lit = '''
[[fake]] '''                       # 7-8
dotted.inner.leaf = 1              # 9
arr = [                            # 10
  "a", # c
  [1, 2],                          # 12
  { k = "}" },                     # 13
]
[[t]]                              # 15
x = 1
[t.sub]                            # 17
y = 2
[[t]]                              # 19
x = 2                              # 20
[[t.list]]                         # 21
z = 3                              # 22
[[t.list]]                         # 23
z = 4
[ "spaced" . key ]                 # 25
v = { a.b = 1, c = [              # 26
  2 ] }
w = "\"[x]\""                      # 28
`
	if _, err := Parse("f.toml", []byte(src)); err == nil {
		t.Fatal("want unknown keys")
	}
	doc, bad := read("f.toml", []byte(src))
	if bad != nil {
		t.Fatal(bad)
	}
	p := func(parts ...string) []string { return parts }
	tests := []struct {
		path []string
		line int
	}{
		{p("top"), 2},
		{p("quoted key"), 3},
		{p("ml"), 4},
		{p("lit"), 7},
		{p("dotted"), 9},
		{p("dotted", "inner", "leaf"), 9},
		{p("arr"), 10},
		{p("arr", "#0"), 11},
		{p("arr", "#1"), 12},
		{p("arr", "#1", "#1"), 12},
		{p("arr", "#2", "k"), 13},
		{p("t", "#0"), 15},
		{p("t", "#0", "x"), 16},
		{p("t", "#0", "sub"), 17},
		{p("t", "#0", "sub", "y"), 18},
		{p("t", "#1"), 19},
		{p("t", "#1", "x"), 20},
		{p("t", "#1", "list", "#0"), 21},
		{p("t", "#1", "list", "#0", "z"), 22},
		{p("t", "#1", "list", "#1"), 23},
		{p("t", "#1", "list", "#1", "z"), 24},
		{p("spaced", "key"), 25},
		{p("spaced", "key", "v", "a", "b"), 26},
		{p("spaced", "key", "v", "c", "#0"), 27},
		{p("spaced", "key", "w"), 28},
		{p("fake"), 0},
		{p("t", "#1", "nothere"), 19},
	}
	for _, tt := range tests {
		if got := doc.line(tt.path); got != tt.line {
			t.Errorf("line of %q = %d, want %d", tt.path, got, tt.line)
		}
	}
}

// FuzzParse checks that Parse never panics, and that every problem it
// finds in a file is at a line of that file.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("../../docs/fshealth.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("a = [\n1,\n{b = 2}]\n[c]\nd = '''\n'''")
	f.Add("watch = [\"/\", 5]\n[[rule]]\nactions = [\"scrub\", {name = \"command\", argv = []}, 3]\nmatch = {errno = [\"EIO\", 1.5]}")
	f.Add("[webhook]\nurl = 1\n[[smtp]]\nto = [[\"a\"]]\n[smtp.x]")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("f.toml", []byte(src))
		if err == nil {
			if len(c.Rules) == 0 {
				t.Fatal("no rules")
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error %T is not a *Error with problems: %v", err, err)
		}
		lines := strings.Count(src, "\n") + 1
		for _, p := range ce.Problems {
			if p.File != "f.toml" || p.Line < 1 || p.Line > lines || p.Message == "" {
				t.Fatalf("problem %+v is not at a line of the %d-line file", p, lines)
			}
		}
	})
}

// TestByteOrderMark checks that a file starting with a UTF-8 byte order
// mark reads as without it.
func TestByteOrderMark(t *testing.T) {
	c, err := Parse("f.toml", []byte("\ufeffstate_dir = \"/x\"\n"))
	if err != nil || c.StateDir != "/x" {
		t.Errorf("Parse = %v, %v", c, err)
	}
	_, err = Parse("f.toml", []byte("\ufeffstate_dir = /x\n"))
	if want := "f.toml:1:13: syntax error: unexpected character U+002F '/' at start of value (strings, durations and addresses must be quoted)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestWatchShorthand(t *testing.T) {
	c, err := Parse("f.toml", []byte("watch = [\"/\", \"/srv\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Watch.Paths, []string{"/", "/srv"}) {
		t.Errorf("paths %q", c.Watch.Paths)
	}
	_, err = Parse("f.toml", []byte("\nwatch = [\"/\",\n  \"srv\"]\n"))
	if want := `f.toml:3: watch.paths[2]: not an absolute path: "srv"`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// TestDocExamples checks that every TOML example in docs/configuration.md
// is a valid configuration.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```toml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d TOML examples", len(blocks))
	}
	for i, b := range blocks {
		src, _, ok := strings.Cut(b, "```")
		if !ok {
			t.Fatalf("example %d is not closed", i+1)
		}
		if _, err := Parse("example.toml", []byte(src)); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}
