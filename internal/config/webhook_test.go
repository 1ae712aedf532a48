package config

import (
	"strings"
	"testing"
)

// TestWebhookTemplateChecks checks that a body template is rendered, as the
// channel would with its content type, for a sample and a hostile alert,
// and that every failure is reported at the template's file and line.
func TestWebhookTemplateChecks(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"values are JSON", "[[webhook]]\nurl = \"http://x\"\ntemplate = '''\n{\"text\": {{ .Summary }}, \"n\": {{ .Count }}, \"mp\": {{ .Filesystem.Mountpoints }},\n \"msg\": {{ .Event.KernelMessage }}, \"old\": {{ json .Host }}}'''", ""},
		{"quoted action", "[[webhook]]\nname = \"chat\"\nurl = \"http://x\"\n\ntemplate = '{\"a\": \"{{ .Summary }}\"}'",
			"f.toml:5: webhook[1].template: fails on a sample alert: the body is not valid JSON (content type application/json): invalid character 'E' after object key:value pair at byte 9, near `{\"a\": \"\"EUCLEAN on` (each {{ }} inserts one complete JSON value, quotes included)"},
		{"quoted action as text", "[[webhook]]\nurl = \"http://x\"\ncontent_type = \"text/plain\"\ntemplate = '\"{{ .Summary }}\"'", ""},
		{"plus json type", "[[webhook]]\nurl = \"http://x\"\ncontent_type = \"application/vnd.x+json; charset=utf-8\"\ntemplate = '[{{ .Count }}'",
			"f.toml:4: webhook[1].template: fails on a sample alert: the body is not valid JSON (content type application/vnd.x+json; charset=utf-8): unexpected end of JSON input at byte 2, near `[2` (each {{ }} inserts one complete JSON value, quotes included)"},
		// Only the hostile alert has every optional part: the comma then
		// breaks the body.
		{"hostile only", "[[webhook]]\nurl = \"http://x\"\ntemplate = '{\"a\": 1{{ with .Event.Ext4 }},{{ end }}}'",
			"f.toml:3: webhook[1].template: fails on a hostile sample alert: the body is not valid JSON (content type application/json): invalid character '}' looking for beginning of object key string at byte 9, near `{\"a\": 1,}` (each {{ }} inserts one complete JSON value, quotes included)"},
		{"hostile too big", "[[webhook]]\nurl = \"http://x\"\ncontent_type = \"text/plain\"\ntemplate = '{{ range .Filesystem.Mountpoints }}{{ $.Event.KernelMessage }}{{ $.Event.KernelMessage }}{{ $.Event.Message }}{{ $.Event.Message }}{{ $.Event.Message }}{{ $.Event.Message }}{{ $.Event.Message }}{{ $.Event.Message }}{{ $.Event.Message }}{{ end }}'",
			"f.toml:4: webhook[1].template: fails on a hostile sample alert: the body exceeds 1048576 bytes"},
		{"unknown function", "[[webhook]]\nurl = \"http://x\"\ntemplate = '{{ exec \"id\" }}'", `f.toml:3: webhook[1].template: does not parse: line 1: function "exec" not defined`},
		{"unknown field on line 2", "[[webhook]]\nurl = \"http://x\"\n\n\ntemplate = '''\n{\"a\": {{ .Summary }},\n \"b\": {{ .Nope }}}'''", `f.toml:5: webhook[1].template: fails on a sample alert: 2:9: executing "template" at <.Nope>: can't evaluate field Nope in type *alert.Alert`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestSigningSecretConfig(t *testing.T) {
	const good = "whsec_MDEyMzQ1Njc4OWFiY2RlZi1zaWduaW5nLWtleS0zMmI="
	c, err := Parse("f.toml", []byte("[[webhook]]\nurl = \"https://x\"\nsigning_secret = \""+good+"\""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhooks[0].SigningSecret != good || len(c.Warnings) != 0 {
		t.Errorf("signing secret %q, warnings %q", c.Webhooks[0].SigningSecret, c.Warnings)
	}
	if strings.Contains(c.Redacted(), "MDEyMzQ1Njc4") || strings.Contains(c.Webhooks[0].String(), "MDEyMzQ1Njc4") {
		t.Error("the signing secret is shown")
	}
	for _, tc := range []struct{ in, want string }{
		{"[[webhook]]\nurl = \"https://x\"\nsigning_secret = \"t0ken-t0ken\"", `f.toml:3: webhook[1].signing_secret: a signing secret must start with "whsec_" (value not shown)`},
		{"[[webhook]]\nurl = \"https://x\"\nsigning_secret = \"whsec_dDBrZW4=\"", `f.toml:3: webhook[1].signing_secret: a signing secret's key must be 24 to 64 bytes, not 5: make one with: echo "whsec_$(head -c 32 /dev/urandom | base64)"`},
		{"[[webhook]]\nurl = \"https://x\"\nsigning_secret = \"" + good + "\"\nheaders = { webhook-id = \"1\" }", `f.toml:4: webhook[1].headers: header "webhook-id" is set by fshealth with signing_secret`},
		{"[[webhook]]\nurl = \"https://x\"\n\nheaders = { content-type = \"text/plain\" }", `f.toml:4: webhook[1].headers: set the body's type with content_type, not a "content-type" header`},
	} {
		_, err := Parse("f.toml", []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("error\n got %v\nwant %s", err, tc.want)
		}
	}
	// The older body-only secret alone draws a warning.
	c, err = Parse("f.toml", []byte("[[webhook]]\nurl = \"https://x\"\nsecret = \"t0ken\""))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "f.toml:3: webhook[1].secret: signs the body alone: a captured request can be replayed") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// TestPlainHTTPCredentials checks the warnings about credentials sent over
// http://, from the file and from flags.
func TestPlainHTTPCredentials(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[[webhook]]\nurl = \"http://hooks.example.com/x\"\nheaders = { Authorization = \"Bearer t0ken\" }",
			`f.toml:2: webhook[1].url: credentials (header "Authorization") would be sent unencrypted over http:// to hooks.example.com: use https://`},
		{"[[webhook]]\nurl = \"http://u:pa55@hooks.example.com:8080/x?api_key=t0ken&b=1\"\nheaders = { X-Api-Key = \"t0ken\", X-Team = \"a\" }",
			`f.toml:2: webhook[1].url: credentials (the URL's user information, query parameter "api_key", header "X-Api-Key") would be sent unencrypted over http:// to hooks.example.com:8080: use https://`},
		{"[[webhook]]\nurl = \"https://u:pa55@hooks.example.com/\"\nheaders = { Authorization = \"Bearer t0ken\" }", ""},
		{"[[webhook]]\nurl = \"http://127.0.0.1:8080/\"\nheaders = { Authorization = \"Bearer t0ken\" }", ""},
		{"[[webhook]]\nurl = \"http://localhost/\"\nheaders = { Cookie = \"s=t0ken\" }", ""},
		{"[[webhook]]\nurl = \"http://[::1]/\"\nheaders = { Authorization = \"Bearer t0ken\" }", ""},
		{"[[webhook]]\nurl = \"http://hooks.example.com/\"\nheaders = { X-Team = \"storage\" }", ""},
		{"[[alertmanager]]\nurls = [\n  \"https://am1:9093\",\n  \"http://am2:9093\",\n]\nusername = \"u\"\npassword = \"pa55\"",
			`f.toml:4: alertmanager[1].urls[2]: credentials (username and password) would be sent unencrypted over http:// to am2:9093: use https://`},
		{"[[alertmanager]]\nurls = [\"http://am:9093\"]\nheaders = { Authorization = \"Bearer t0ken\" }",
			`f.toml:2: alertmanager[1].urls[1]: credentials (header "Authorization") would be sent unencrypted over http:// to am:9093: use https://`},
		{"[[alertmanager]]\nurls = [\"http://am:9093\"]", ""},
	} {
		c, err := Parse("f.toml", []byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		got := strings.Join(c.Warnings, "\n")
		if got != tc.want {
			t.Errorf("%q: warnings\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if strings.Contains(got, "pa55") || strings.Contains(got, "t0ken") {
			t.Errorf("a warning shows a secret: %s", got)
		}
	}
	c := Default()
	if err := c.ApplyOverrides(Overrides{Webhooks: []string{"http://u:pa55@hooks.example.com/"}, Alertmanagers: []string{"http://u:pa55@am:9093", "http://localhost:9093"}}); err != nil {
		t.Fatal(err)
	}
	want := "--webhook: credentials (the URL's user information) would be sent unencrypted over http:// to hooks.example.com: use https://\n" +
		"--alertmanager: credentials (the URL's user information) would be sent unencrypted over http:// to am:9093: use https://"
	if got := strings.Join(c.Warnings, "\n"); got != want {
		t.Errorf("flag warnings\n got %s\nwant %s", got, want)
	}
}

// TestWebhookFormat checks the format key: a built-in template by name,
// its content type set with it, and every mistake reported at its line.
func TestWebhookFormat(t *testing.T) {
	c, err := Parse("f.toml", []byte("[[webhook]]\nurl = \"https://x\"\nformat = \"ntfy\""))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Webhooks[0]; w.Format != "ntfy" || w.ContentType != "text/plain; charset=utf-8" || w.Template != "" {
		t.Errorf("webhook %+v", w)
	}
	if !strings.Contains(c.Redacted(), `format = 'ntfy'`) {
		t.Errorf("the format is not shown:\n%s", c.Redacted())
	}
	for _, tc := range []struct{ in, want string }{
		{"[[webhook]]\nurl = \"https://x\"\n\nformat = \"irc\"", `f.toml:4: webhook[1].format: unknown format "irc": want one of discord, mattermost, ntfy, slack, teams`},
		{"[[webhook]]\nurl = \"https://x\"\ntemplate = '{}'\nformat = \"slack\"", `f.toml:4: webhook[1].format: set either format or template, not both`},
		{"[[webhook]]\nurl = \"https://x\"\ncontent_type = \"text/plain\"\nformat = \"slack\"", `f.toml:3: webhook[1].content_type: format slack sets the content type (application/json)`},
	} {
		_, err := Parse("f.toml", []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("error\n got %v\nwant %s", err, tc.want)
		}
	}
}
