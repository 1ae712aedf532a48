package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
)

// jsonModeTemplate inserts values in every way a template can: fields,
// pipelines, printf, numbers, lists, pointers, variables, an action that
// already ends in json, conditionals, a range and a sub-template.
const jsonModeTemplate = `{{ define "where" }}{{ printf "%s on %s" .Summary .Host }}{{ end -}}
{{- $fs := .Filesystem -}}
{
  "summary": {{ .Summary }},
  "path": {{ .Event.Path }},
  "kmsg": {{ .Event.KernelMessage | clean | trunc 100 }},
  "label": {{ $fs.Label }},
  "count": {{ .Count }},
  "inode": {{ .Event.Inode }},
  "mountpoints": {{ $fs.Mountpoints }},
  "joined": {{ join ", " $fs.Mountpoints }},
  "already": {{ json .Host }},
  "piped": {{ .Event.Device | json }},
  "where": {{ template "where" . }},
  "critical": {{ if eq .Severity "critical" }}true{{ else }}false{{ end }},
  "each": [{{ range $i, $m := $fs.Mountpoints }}{{ if $i }}, {{ end }}{{ $m }}{{ end }}],
  "with": {{ with .Event }}{{ .FSType }}{{ else }}null{{ end }}
}`

// TestJSONModeBody renders a template inserting hostile text in every way
// and sends it to a real HTTP server: the body must parse, have exactly
// the template's keys, and give back each value unchanged (invalid UTF-8
// aside, which becomes U+FFFD).
func TestJSONModeBody(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, Config{Name: "json", URL: rcv.URL, Template: jsonModeTemplate})
	a := HostileAlert()
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	body := rcv.Requests()[0].Body
	if !utf8.Valid(body) {
		t.Error("the body is not UTF-8")
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("the body is not JSON: %v\n%.2000s", err, body)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"already", "count", "critical", "each", "inode", "joined", "kmsg", "label", "mountpoints", "path", "piped", "summary", "where", "with"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	valid := asJSON
	mps := []any{valid(a.Filesystem.Mountpoints[0]), valid(a.Filesystem.Mountpoints[1])}
	for k, v := range map[string]any{
		"summary":     valid(a.Summary),
		"path":        valid(a.Event.Path),
		"kmsg":        trunc(100, clean(a.Event.KernelMessage)),
		"label":       valid(a.Filesystem.Label),
		"count":       float64(a.Count),
		"inode":       float64(*a.Event.Inode),
		"mountpoints": mps,
		"joined":      valid(strings.Join(a.Filesystem.Mountpoints, ", ")),
		"already":     valid(a.Host),
		"piped":       valid(a.Event.Device),
		"where":       valid(a.Summary + " on " + a.Host),
		"critical":    a.Severity == alert.SeverityCritical,
		"each":        mps,
		"with":        valid(a.Event.FSType),
	} {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if !strings.Contains(a.Event.Path, "\"") || !strings.Contains(a.Event.Path, "}}") || !strings.Contains(a.Event.Path, "\n") {
		t.Fatalf("the hostile alert is not hostile: %q", a.Event.Path)
	}

	// Without an event, the with's else branch and a nil pointer's null.
	n = newNotifier(t, Config{Name: "noev", URL: rcv.URL, Template: `{"with": {{ with .Event }}{{ .FSType }}{{ else }}null{{ end }}, "ev": {{ .Event }}}`})
	if err := n.Send(context.Background(), noEvent()); err != nil {
		t.Fatal(err)
	}
	if got := string(rcv.Requests()[1].Body); got != `{"with": null, "ev": null}` {
		t.Errorf("body without an event: %s", got)
	}
}

// asJSON is s as it comes back from JSON: each byte that is not UTF-8
// replaced by U+FFFD.
func asJSON(s string) string { return string([]rune(s)) }

// TestTextModeUnchanged checks that a template for another content type
// inserts values as text, as before.
func TestTextModeUnchanged(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	n := newNotifier(t, Config{URL: rcv.URL, ContentType: "text/plain", Template: `{{ .Host }} {{ .Count }} {{ json .Host }}`})
	if err := n.Send(context.Background(), SampleAlert()); err != nil {
		t.Fatal(err)
	}
	if got := string(rcv.Requests()[0].Body); got != `host.example 2 "host.example"` {
		t.Errorf("body %q", got)
	}
}

// TestHostileAlertEverywhere sends the hostile alert through the default
// body and every example template to a real HTTP server: each body is
// valid (JSON bodies parse, as UTF-8; the ntfy body keeps its lines) and
// no header the server received holds a control character.
func TestHostileAlertEverywhere(t *testing.T) {
	cfgs := []Config{{Name: "default", SigningSecret: testSigningSecret, Secret: "hmac-key"}}
	for _, name := range Builtins() {
		tmpl, ct, _ := Builtin(name)
		cfgs = append(cfgs, Config{Name: name, Template: tmpl, ContentType: ct, SigningSecret: testSigningSecret})
	}
	for _, cfg := range cfgs {
		t.Run(cfg.Name, func(t *testing.T) {
			rcv := notifytest.NewReceiver(t, http.StatusOK, "")
			cfg.URL = rcv.URL
			n := newNotifier(t, cfg)
			a := HostileAlert()
			if err := n.Send(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			r := rcv.Requests()[0]
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
						t.Errorf("header %s has a control character: %q", k, v)
					}
				}
			}
			if r.Header.Get("X-Injected") != "" {
				t.Error("a header was injected")
			}
			if err := verifyV1(testSigningSecret, r.Header, r.Body, n.now(), 300e9); err != nil {
				t.Errorf("signature: %v", err)
			}
			if cfg.Name == "ntfy" {
				checkNtfy(t, string(r.Body), true)
				return
			}
			if err := checkJSON(r.Body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if cfg.Name == "default" {
				var back alert.Alert
				if err := json.Unmarshal(r.Body, &back); err != nil {
					t.Fatal(err)
				}
				if back.Event.KernelMessage != asJSON(a.Event.KernelMessage) {
					t.Error("the kernel message changed on the way")
				}
			}
		})
	}
}

// TestHostileAlertCoversEveryString checks that HostileAlert leaves no
// string an event sets as it was, so a field added later is checked too.
func TestHostileAlertCoversEveryString(t *testing.T) {
	a := HostileAlert()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	hostile := asJSON(hostileText)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		case string:
			switch {
			case strings.HasSuffix(path, ".id"), strings.HasSuffix(path, "time"), path == ".since",
				path == ".type", path == ".severity", path == ".rule", path == ".event.kind", path == ".event.source":
			case strings.Contains(v, hostile):
			default:
				t.Errorf("%s = %q is not hostile", path, v)
			}
		}
	}
	walk("", v)
	for _, s := range []string{a.Event.KernelMessage, a.Event.Message} {
		if len(s) != hostileMessageSize {
			t.Errorf("message of %d bytes, want %d", len(s), hostileMessageSize)
		}
	}
	if a.Event.Ext4 == nil || a.Event.Ext4.LastError == nil || a.Event.Btrfs == nil || a.Event.Handle == nil {
		t.Errorf("optional parts missing: %+v", a.Event)
	}
	if !validMessageID(a.ID) {
		t.Errorf("the alert id %q changed", a.ID)
	}
}

// TestJSONEscapeLeavesDeclarations checks that actions printing nothing
// are not rewritten: a variable keeps its value, not its JSON text.
func TestJSONEscapeLeavesDeclarations(t *testing.T) {
	tmpl, err := parseTemplate("t", `{{ $n := .Count }}{{ $s := "x" }}{{ $s = printf "%s%d" $s $n }}{"s": {{ $s }}, "n": {{ $n }}, "sum": {{ len $s }}}`, true)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, SampleAlert()); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != `{"s": "x2", "n": 2, "sum": 2}` {
		t.Errorf("body %s", got)
	}
}
