package config_test

import (
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/config"
)

// TestSyntaxErrorsWithholdSecrets: go-toml's syntax errors quote the
// character at the error ("unexpected character U+0053 'S'"), so a syntax
// error that may be in a secret has its message withheld: a secret-bearing
// key anywhere in the expression (an inline table's second key, a dotted
// key, a URL's query), a value spanning lines (a multi-line string, an
// inline table) and a [headers] table, whose every value is secret. Errors
// elsewhere keep go-toml's message, also right after a secret or a table
// of headers.
func TestSyntaxErrorsWithholdSecrets(t *testing.T) {
	const withheld = "syntax error: invalid value (details withheld: the line may hold a secret)"
	for _, c := range []struct{ in, want string }{
		{"signing_secret = Sup3r", "f.toml:1:18: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example\"\nsecret = Sup3r", "f.toml:3:10: " + withheld},
		{"webhook = [{url = \"https://x.example\", secret = Sup3r}]", "f.toml:1:49: " + withheld},
		{"webhook = [{secret = Sup3r, url = \"https://x.example\"}]", "f.toml:1:22: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example\"\n\n\nsecret = Sup3r\n", "f.toml:5:10: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example\"\nheaders.X-Org = Sup3r\n", "f.toml:3:17: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example\"\n[webhook.headers]\nX-Scope-OrgID = Sup3r\n", "f.toml:4:17: " + withheld},
		{"[[smtp]]\nhost = \"m\"\npassword = \"\"\"\nSup3r\\q\"\"\"\n", "f.toml:4:6: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example/?k=\\qSup3r\"\n", "f.toml:2:29: " + withheld},
		{"[[alertmanager]]\nurls = [\"https://am.example\"]\nheaders = {\n  X-Org = Sup3r }\n", "f.toml:4:11: " + withheld},
		{"[[webhook]]\nurl = \"https://x.example\"\n[webhook.headers]\nA = \"b\"\n[history]\nretention = 90d\n",
			"f.toml:6:15: syntax error: strings, durations and addresses must be quoted"},
		{"[[webhook]]\nurl = \"https://x.example\"\nsecret = \"s\"\ntimeout = 10s\n",
			"f.toml:4:13: syntax error: strings, durations and addresses must be quoted"},
		{"[[webhook]]\nurl = \"https://x.example\"\ntemplate = \"\"\"\n{{ .Summary }}\\q\"\"\"\n",
			"f.toml:4:15: syntax error: invalid escape character U+0071 'q'"},
		{"[[webhook]]\nurl = \"https://x.example\"\nsecret = \"s\"\n[[webhook]]\nname = bad\n",
			"f.toml:5:8: syntax error: unexpected character U+0062 'b' at start of value (strings, durations and addresses must be quoted)"},
		{"[history]\nretention = 90d\nsecret = \"x\"\n", "f.toml:2:15: syntax error: strings, durations and addresses must be quoted"},
		{"[history]\nretention = \"90d\"\nretention = \"91d\"\n[metrics]\nlisten = \"x\"\n", "f.toml:3:1: syntax error: key retention is already defined"},
	} {
		_, err := config.Parse("f.toml", []byte(c.in))
		if err == nil {
			t.Errorf("%q: no error", c.in)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%q: error\n got %s\nwant %s", c.in, err, c.want)
		}
		if strings.Contains(err.Error(), "'S'") || strings.Contains(err.Error(), "Sup3r") {
			t.Errorf("%q: the error quotes the secret: %s", c.in, err)
		}
	}
}
