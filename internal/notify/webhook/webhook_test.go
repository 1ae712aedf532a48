package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
)

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// hostilePath is a file name an attacker could create.
const hostilePath = "/srv/a b/evil\n2026-01-01 EIO forged \"q\" '$(touch /tmp/pwned-webhook)' `id` {{.ID}} </script><script>alert(1)</script> <!channel> @all [x](http://evil.example) \\ \x1b[31m"

func hostileAlert() *alert.Alert {
	a := SampleAlert()
	a.ID = "01JH0000000000000000000042"
	a.Test = false
	a.Event.Path = hostilePath
	return a
}

func TestDefaultBody(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusNoContent, "")
	n := newNotifier(t, Config{
		Name:    "hq",
		URL:     rcv.URL + "/hook?x=1",
		Headers: map[string]string{"X-Team": "storage", "authorization": "Bearer tok-123456"},
		Version: "1.2.3",
	})
	if n.Name() != "hq" {
		t.Errorf("Name = %q", n.Name())
	}
	a := hostileAlert()
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rcv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	want, _ := json.Marshal(a)
	if string(r.Body) != string(want) {
		t.Errorf("body:\n%s\nwant:\n%s", r.Body, want)
	}
	var back alert.Alert
	if err := json.Unmarshal(r.Body, &back); err != nil {
		t.Fatal(err)
	}
	if back.Event == nil || back.Event.Path != hostilePath || back.Event.ID != a.Event.ID || back.ID != a.ID {
		t.Errorf("decoded body lost data: %+v", back)
	}
	for k, v := range map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "fshealth/1.2.3",
		"X-Fshealth-Alert-Id": a.ID,
		"X-Team":              "storage",
		"Authorization":       "Bearer tok-123456",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if got := r.Header.Get(DefaultSignatureHeader); got != "" {
		t.Errorf("signature without a secret: %q", got)
	}
	if r.Method != http.MethodPost || r.Path != "/hook?x=1" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
}

func TestSignature(t *testing.T) {
	const secret = "hmac-key-s3cr3t"
	for _, hdr := range []string{"", "X-Hub-Signature-256"} {
		rcv := notifytest.NewReceiver(t, http.StatusOK, "ok")
		n := newNotifier(t, Config{URL: rcv.URL, Secret: secret, SignatureHeader: hdr})
		if err := n.Send(context.Background(), hostileAlert()); err != nil {
			t.Fatal(err)
		}
		r := rcv.Requests()[0]
		name := hdr
		if name == "" {
			name = DefaultSignatureHeader
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(r.Body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if Sign([]byte(secret), r.Body) != want {
			t.Error("Sign disagrees")
		}
	}
}

func TestTemplateBody(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	tmpl := `{"text": {{ json .Event.Path }}, "id": {{ json .ID }}, "mp": {{ json (join "|" .Filesystem.Mountpoints) }},` +
		` "label": {{ .Filesystem.Label | clean | default "none" | json }}, "q": {{ json (quote .Event.Path) }},` +
		` "sev": {{ json (upper .Severity) }}, "ino": {{ json (clean .Event.Inode) }}, "ev": {{ json .Event }}}`
	n := newNotifier(t, Config{Name: "custom", URL: rcv.URL, Template: tmpl})
	a := hostileAlert()
	a.Filesystem.Label = ""
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	body := rcv.Requests()[0].Body
	if !json.Valid(body) {
		t.Fatalf("invalid JSON: %s", body)
	}
	for _, bad := range []string{"</script>", "<script>", "\n2026"} {
		if strings.Contains(string(body), bad) {
			t.Errorf("body holds %q raw: %s", bad, body)
		}
	}
	var got struct {
		Text, ID, MP, Label, Q, Sev, Ino string
		Ev                               struct{ Path string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := strings.ToValidUTF8(hostilePath, "\uFFFD")
	if got.Text != want || got.Ev.Path != want {
		t.Errorf("path came out as %q", got.Text)
	}
	if got.ID != a.ID || got.MP != "/srv/a b|/mnt/x\ny" || got.Label != "none" || got.Sev != "CRITICAL" || got.Ino != "12" {
		t.Errorf("fields: %+v", got)
	}
	if !strings.HasPrefix(got.Q, `"/srv/a b/evil\n2026`) {
		t.Errorf("quote: %q", got.Q)
	}
}

func TestBuiltinTemplates(t *testing.T) {
	names := Builtins()
	if !slices.Equal(names, []string{"discord", "mattermost", "ntfy", "slack", "teams"}) {
		t.Fatalf("ExampleTemplates = %v", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tmpl, ct, ok := Builtin(name)
			if !ok {
				t.Fatal("missing")
			}
			rcv := notifytest.NewReceiver(t, http.StatusOK, "")
			n := newNotifier(t, Config{Name: name, URL: rcv.URL, Template: tmpl, ContentType: ct})
			for _, a := range []*alert.Alert{hostileAlert(), SampleAlert(), noEvent()} {
				if err := n.Send(context.Background(), a); err != nil {
					t.Fatal(err)
				}
			}
			for i, r := range rcv.Requests() {
				if got := r.Header.Get("Content-Type"); got != ct {
					t.Errorf("Content-Type %q, want %q", got, ct)
				}
				body := string(r.Body)
				if !utf8.ValidString(body) {
					t.Errorf("body %d is not UTF-8", i)
				}
				if strings.Contains(body, "pwned") != (i < 2) {
					t.Errorf("body %d: path present=%v", i, strings.Contains(body, "pwned"))
				}
				if name == "ntfy" {
					checkNtfy(t, body, i < 2)
					continue
				}
				var v any
				if err := json.Unmarshal(r.Body, &v); err != nil {
					t.Fatalf("body %d is not valid JSON: %v\n%s", i, err, body)
				}
				for _, s := range jsonStrings(v) {
					if strings.ContainsAny(s, "\x00\x1b\r\u202e") {
						t.Errorf("%q has control characters", s)
					}
					if strings.Contains(s, "2026-01-01 EIO") && strings.Contains(s, "\n2026") {
						t.Errorf("a file name split a line: %q", s)
					}
					if strings.Contains(s, "<!channel>") || strings.Contains(s, "<script>") {
						t.Errorf("unescaped markup: %q", s)
					}
					if name != "slack" && (strings.Contains(s, "@all") || strings.Contains(s, "[x](")) {
						t.Errorf("mention or link survived: %q", s)
					}
				}
			}
		})
	}
}

// noEvent is an alert without an event (a resolved alert, say).
func noEvent() *alert.Alert {
	a := SampleAlert()
	a.Event, a.Type, a.Severity, a.Test = nil, alert.TypeResolved, alert.SeverityInfo, false
	a.Summary = "EUCLEAN on /dev/loop0 resolved"
	return a
}

// checkNtfy checks an ntfy text body: every line is one of the template's,
// so a file name added none.
func checkNtfy(t *testing.T, body string, withPath bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	prefixes := []string{"", "Device: ", "Mount points: ", "Error: ", "Path: ", "Rule: ", "Alert: "}
	if !withPath {
		prefixes = slices.Delete(prefixes, 4, 5)
	}
	if len(lines) != len(prefixes) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(prefixes), body)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, prefixes[i]) {
			t.Errorf("line %d %q lacks %q", i, l, prefixes[i])
		}
		if strings.ContainsAny(l, "\x00\x1b\r\u202e") {
			t.Errorf("line %d has control characters: %q", i, l)
		}
	}
}

// jsonStrings returns every string in a decoded JSON value.
func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, jsonStrings(e)...)
		}
		return s
	case map[string]any:
		var s []string
		for _, e := range v {
			s = append(s, jsonStrings(e)...)
		}
		return s
	}
	return nil
}

// secrets are planted in the configuration and echoed by receivers; no
// error may show them.
var secrets = []string{"urlpass-s3cr3t", "urluser-s3cr3t", "qtoken-s3cr3t", "hmac-s3cr3t", "bearer-s3cr3t", "apikey-s3cr3t", secretSigningKey}

// secretSigningKey is the base64 part of secretConfig's signing secret.
const secretSigningKey = "c2lnbmluZy1zM2NyM3Qtc2lnbmluZy1zM2NyM3Qtc2lnbmluZw=="

func secretConfig(base string) Config {
	u, _ := url.Parse(base)
	u.User = url.UserPassword("urluser-s3cr3t", "urlpass-s3cr3t")
	u.Path = "/post"
	u.RawQuery = "token=qtoken-s3cr3t"
	return Config{
		Name:   "sec",
		URL:    u.String(),
		Secret: "hmac-s3cr3t",
		// SigningSecret's key, once decoded, is not itself sent: its
		// base64 form is what a receiver could echo.
		SigningSecret: SigningSecretPrefix + secretSigningKey,
		Headers:       map[string]string{"Authorization": "Bearer bearer-s3cr3t", "X-Api-Key": "apikey-s3cr3t"},
	}
}

func checkNoSecrets(t *testing.T, msg string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error shows secret %q: %s", s, msg)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		reply  string
		want   []string
	}{
		{500, "internal trouble", []string{`HTTP 500 Internal Server Error`, `"internal trouble"`}},
		{404, "no such hook", []string{`HTTP 404 Not Found`, `"no such hook"`}},
		{400, "bad: Bearer bearer-s3cr3t apikey-s3cr3t hmac-s3cr3t urlpass-s3cr3t qtoken-s3cr3t whsec_" + secretSigningKey + " " + secretSigningKey + " line\nbreak\x1b[2J", []string{`HTTP 400 Bad Request`, `xxxxx`, `line\nbreak\x1b[2J`}},
		{503, strings.Repeat("x", 5000), []string{`HTTP 503`, "…"}},
		// A secret straddling the excerpt's end is scrubbed before the cut.
		{401, strings.Repeat("y", 195) + "apikey-s3cr3t", []string{`HTTP 401 Unauthorized`, "yyyyyxxxxx"}},
	} {
		rcv := notifytest.NewReceiver(t, tc.status, tc.reply)
		n := newNotifier(t, secretConfig(rcv.URL))
		err := n.Send(context.Background(), hostileAlert())
		if err == nil {
			t.Fatalf("status %d: no error", tc.status)
		}
		msg := err.Error()
		t.Logf("%d: %s", tc.status, msg)
		checkNoSecrets(t, msg)
		if strings.Contains(msg, "apik") {
			t.Errorf("error shows part of a secret: %s", msg)
		}
		if !strings.Contains(msg, `webhook "sec": POST http://xxxxx@`) || !strings.Contains(msg, "/post?token=xxxxx") {
			t.Errorf("error does not name the channel and redacted URL: %s", msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("error lacks %q: %s", w, msg)
			}
		}
		if len(msg) > 600 {
			t.Errorf("error is %d bytes long", len(msg))
		}
		var se *notify.StatusError
		if !errors.As(err, &se) || se.StatusCode != tc.status {
			t.Errorf("not a *notify.StatusError with status %d: %#v", tc.status, err)
		}
		if strings.ContainsAny(msg, "\n\x1b") {
			t.Errorf("error has control characters: %q", msg)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusTooManyRequests, "slow down")
	rcv.Answer(http.StatusTooManyRequests, "slow down", map[string]string{"Retry-After": "120"})
	n := newNotifier(t, Config{URL: rcv.URL})
	var se *notify.StatusError
	err := n.Send(context.Background(), hostileAlert())
	if !errors.As(err, &se) || se.RetryAfter != 2*time.Minute || !strings.Contains(err.Error(), "retry after 2m0s") {
		t.Errorf("err = %v", err)
	}
}

func TestRedirectIsFailure(t *testing.T) {
	target := notifytest.NewReceiver(t, http.StatusOK, "")
	rcv := notifytest.NewReceiver(t, http.StatusFound, "moved")
	rcv.Answer(http.StatusFound, "moved", map[string]string{"Location": strings.Replace(target.URL, "http://", "http://user:loc-s3cr3t@", 1) + "/elsewhere?sig=abcdef"})
	n := newNotifier(t, Config{URL: rcv.URL})
	err := n.Send(context.Background(), hostileAlert())
	if err == nil {
		t.Fatal("a redirect was accepted")
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "HTTP 302 Found") || !strings.Contains(msg, "redirects are not followed") || !strings.Contains(msg, "/elsewhere?sig=xxxxx") {
		t.Errorf("error: %s", msg)
	}
	if strings.Contains(msg, "loc-s3cr3t") || strings.Contains(msg, "abcdef") {
		t.Errorf("error shows the Location's secrets: %s", msg)
	}
	if len(target.Requests()) != 0 {
		t.Error("the redirect was followed")
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := secretConfig(srv.URL)
	cfg.Timeout = 200 * time.Millisecond
	n := newNotifier(t, cfg)
	start := time.Now()
	err := n.Send(context.Background(), hostileAlert())
	if err == nil {
		t.Fatal("no error")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Send took %v", time.Since(start))
	}
	msg := err.Error()
	t.Log(msg)
	checkNoSecrets(t, msg)
	if !strings.Contains(msg, "timed out") || !strings.Contains(msg, "timeout 200ms") {
		t.Errorf("error: %s", msg)
	}
	// The caller's context bounds Send too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	n2 := newNotifier(t, Config{URL: srv.URL, Timeout: time.Hour})
	if err := n2.Send(ctx, hostileAlert()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("with a context deadline: %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	n := newNotifier(t, secretConfig("http://"+addr))
	err = n.Send(context.Background(), hostileAlert())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	checkNoSecrets(t, msg)
	if !strings.Contains(msg, "connection refused") || !strings.Contains(msg, `webhook "sec"`) {
		t.Errorf("error: %s", msg)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "a"}, `webhook "a": no URL`},
		{Config{Name: "b", URL: "ftp://x/"}, `webhook "b": URL ftp://x/: scheme must be http or https`},
		{Config{Name: "c", URL: "http://u:pw-s3cr3t@/x"}, `webhook "c": URL http://xxxxx@/x: no host`},
		{Config{Name: "d", URL: "http://x/%zz"}, `webhook "d": the URL does not parse`},
		{Config{Name: "e", URL: "http://x/", Headers: map[string]string{"Bad Name": "v"}}, `webhook "e": header "Bad Name" is not a valid header name`},
		{Config{Name: "f", URL: "http://x/", Headers: map[string]string{"X-A": "v\r\nInjected: 1"}}, `webhook "f": header X-A: the value has a control character`},
		{Config{Name: "g", URL: "http://x/", Headers: map[string]string{"x-fshealth-alert-id": "1"}}, `webhook "g": header X-Fshealth-Alert-Id is set by fshealth`},
		{Config{Name: "h", URL: "http://x/", Template: `{"a": {{ json .Summary }`}, `webhook "h": template: template: h:1: unexpected "}" in operand`},
		{Config{Name: "i", URL: "http://x/", Template: `{"a": {{ json .Sumary }}}`}, `webhook "i": template: template: i:1:`},
		{Config{Name: "j", URL: "http://x/", Template: `{"a": "{{ .Summary }}"}`}, "webhook \"j\": template: the body is not valid JSON (content type application/json): invalid character 'E' after object key:value pair at byte 9, near `{\"a\": \"\"EUCLEAN on` (each {{ }} inserts one complete JSON value, quotes included) (with a sample alert)"},
		{Config{Name: "k", URL: "http://x/", Template: `{{ exec "id" }}`}, `webhook "k": template: template: k:1: function "exec" not defined`},
		{Config{Name: "l", URL: "http://x/", Template: `{{ readFile "/etc/shadow" }}`}, `function "readFile" not defined`},
		{Config{Name: "m", URL: "http://x/", ContentType: "json"}, `webhook "m": content type "json" is invalid`},
		{Config{Name: "n", URL: "http://x/", Timeout: -1}, `webhook "n": timeout must not be negative`},
		{Config{Name: "o", URL: "http://x/", SignatureHeader: "a:b"}, `webhook "o": signature header "a:b" is not a valid header name`},
		{Config{Name: "p", URL: "http://x/", ContentType: "text/plain", Headers: map[string]string{"content-type": "text/plain"}}, `webhook "p": both a content type and a Content-Type header`},
		{Config{Name: "q", URL: "http://x/", Headers: map[string]string{"Content-Type": "text/plain"}, Template: "{{ .Summary }}"}, ``},
	} {
		_, err := New(tc.cfg)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.cfg.Name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.cfg.Name)
			continue
		}
		want := tc.want
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want %q", tc.cfg.Name, err, want)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error shows a secret: %v", tc.cfg.Name, err)
		}
	}
	// A plain-text template needs no JSON.
	if _, err := New(Config{URL: "http://x/", Template: `{{ .Summary }}`, ContentType: "text/plain"}); err != nil {
		t.Errorf("text template: %v", err)
	}
}

func TestSendTemplateError(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	// Fine for the sample alert, which has an event; fails without one.
	n := newNotifier(t, Config{Name: "ev", URL: rcv.URL, Template: `{"p": {{ json .Event.Path }}}`})
	err := n.Send(context.Background(), noEvent())
	if err == nil || !strings.Contains(err.Error(), `webhook "ev": template: template: ev:1:`) || !strings.Contains(err.Error(), "nil pointer") {
		t.Errorf("err = %v", err)
	}
	if len(rcv.Requests()) != 0 {
		t.Error("a request was sent")
	}
	n = newNotifier(t, Config{Name: "big", URL: rcv.URL, ContentType: "text/plain",
		Template: `{{ if .Test }}x{{ else }}{{ range .Filesystem.Mountpoints }}{{ printf "%01000000d" 0 }}{{ end }}{{ end }}`})
	if err := n.Send(context.Background(), hostileAlert()); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("big body: %v", err)
	}
	// Execution errors can quote data: they come out on one line.
	n = newNotifier(t, Config{Name: "quoting", URL: rcv.URL, ContentType: "text/plain",
		Template: `{{ if .Test }}x{{ else }}{{ range .Event.Path }}{{ end }}{{ end }}`})
	err = n.Send(context.Background(), hostileAlert())
	if err == nil || strings.ContainsAny(err.Error(), "\n\x1b") || !strings.Contains(err.Error(), `evil\n2026`) {
		t.Errorf("quoting error: %q", err)
	}
	if err := n.Send(context.Background(), nil); err == nil {
		t.Error("nil alert accepted")
	}
}

func TestFuncs(t *testing.T) {
	got := make([]string, 0)
	for k := range Funcs() {
		got = append(got, k)
	}
	slices.Sort(got)
	// A new function must be reviewed: none may run programs or read files.
	want := []string{"clean", "default", "join", "json", "lower", "markdown", "quote", "slack", "trunc", "upper"}
	if !slices.Equal(got, want) {
		t.Errorf("Funcs = %v, want %v", got, want)
	}
	if s := clean("a\nb\x1b\u202ec\xff"); s != "a b  c\uFFFD" {
		t.Errorf("clean = %q", s)
	}
	if s := trunc(3, "abcdef"); s != "ab…" {
		t.Errorf("trunc = %q", s)
	}
	if s := trunc(10, "abc"); s != "abc" {
		t.Errorf("trunc = %q", s)
	}
	if s := slackEscape("<!channel> & <http://x|y>"); s != "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" {
		t.Errorf("slack = %q", s)
	}
	if s := markdownEscape("*b* [x](y) @all"); s != "\\*b\\* \\[x\\](y) @\u2060all" {
		t.Errorf("markdown = %q", s)
	}
	if v := defaultFunc("d", ""); v != "d" {
		t.Errorf("default = %v", v)
	}
	if v := defaultFunc("d", 0); v != "d" {
		t.Errorf("default = %v", v)
	}
	if v := defaultFunc("d", "x"); v != "x" {
		t.Errorf("default = %v", v)
	}
	var nilp *uint64
	if s := toString(nilp); s != "" {
		t.Errorf("toString(nil) = %q", s)
	}
}

func TestHostHeader(t *testing.T) {
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host = r.Host }))
	defer srv.Close()
	n := newNotifier(t, Config{URL: srv.URL, Headers: map[string]string{"Host": "hooks.example"}})
	if err := n.Send(context.Background(), hostileAlert()); err != nil {
		t.Fatal(err)
	}
	if host != "hooks.example" {
		t.Errorf("Host = %q", host)
	}
}
