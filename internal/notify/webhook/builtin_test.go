package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
)

// expandingAlert is HostileAlert with every hostile string replaced by
// characters that the escaping functions make longest ("<" becomes "&lt;"
// for Slack, "*" becomes "\*" and "@" gains a word joiner for Markdown),
// 5000 of them: the worst case for a service's length limits.
func expandingAlert() *alert.Alert {
	a := HostileAlert()
	long := strings.Repeat("<*@&", 1250)
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if v.Type().PkgPath() == "time" {
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() && !fixedFields[v.Type().Field(i).Name] {
					walk(v.Field(i))
				}
			}
		case reflect.String:
			if v.CanSet() && v.String() != "" {
				v.SetString(long)
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(a).Elem())
	return a
}

// runes is the length of s in characters, as the services count.
func runes(s string) int { return utf8.RuneCountInString(s) }

// TestBuiltinFormats sends the sample, the hostile and the expanding alert
// through every built-in format, selected by name as the configuration
// does, to a real HTTP server, and checks each body against its service's
// documented message format: the JSON shape and the length limits.
func TestBuiltinFormats(t *testing.T) {
	checks := map[string]func(t *testing.T, body []byte){
		"slack":      checkSlack,
		"mattermost": checkMattermost,
		"teams":      checkTeams,
		"discord":    checkDiscord,
		"ntfy":       checkNtfyLimits,
	}
	for _, name := range Builtins() {
		t.Run(name, func(t *testing.T) {
			check := checks[name]
			if check == nil {
				t.Fatalf("no check for the format %s", name)
			}
			rcv := notifytest.NewReceiver(t, http.StatusOK, "")
			n := newNotifier(t, Config{Name: name, URL: rcv.URL, Format: name})
			for _, a := range []*alert.Alert{SampleAlert(), HostileAlert(), expandingAlert(), noEvent()} {
				if err := n.Send(context.Background(), a); err != nil {
					t.Fatal(err)
				}
			}
			_, ct, _ := Builtin(name)
			for i, r := range rcv.Requests() {
				if got := r.Header.Get("Content-Type"); got != ct {
					t.Errorf("request %d: Content-Type %q, want %q", i, got, ct)
				}
				check(t, r.Body)
			}
		})
	}
}

// decode decodes a JSON body strictly into v: a field the format does not
// have is an error.
func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("body does not have the documented shape: %v\n%s", err, body)
	}
}

// checkSlack checks a Slack incoming webhook message: a fallback text and
// Block Kit blocks; a section's text at most 3000 characters, a section's
// fields at most 10 of at most 2000 characters each.
func checkSlack(t *testing.T, body []byte) {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string `json:"type"`
			Text     *text  `json:"text"`
			Fields   []text `json:"fields"`
			Elements []text `json:"elements"`
		} `json:"blocks"`
	}
	decode(t, body, &m)
	if m.Text == "" || len(m.Blocks) == 0 || len(m.Blocks) > 50 {
		t.Fatalf("text %q, %d blocks", m.Text, len(m.Blocks))
	}
	for i, b := range m.Blocks {
		switch b.Type {
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("block %d: a section with neither text nor fields", i)
			}
			if b.Text != nil && (b.Text.Type != "mrkdwn" || runes(b.Text.Text) > 3000) {
				t.Errorf("block %d: text of type %q, %d characters", i, b.Text.Type, runes(b.Text.Text))
			}
			if len(b.Fields) > 10 {
				t.Errorf("block %d: %d fields", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				if f.Type != "mrkdwn" || f.Text == "" || runes(f.Text) > 2000 {
					t.Errorf("block %d: field of type %q, %d characters", i, f.Type, runes(f.Text))
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				t.Errorf("block %d: %d context elements", i, len(b.Elements))
			}
			for _, e := range b.Elements {
				if e.Type != "mrkdwn" || runes(e.Text) > 3000 {
					t.Errorf("block %d: element of type %q, %d characters", i, e.Type, runes(e.Text))
				}
			}
		default:
			t.Errorf("block %d of type %q", i, b.Type)
		}
	}
}

// checkMattermost checks a Mattermost incoming webhook post: text,
// username and message attachments with title/value/short fields.
func checkMattermost(t *testing.T, body []byte) {
	var m struct {
		Username    string `json:"username"`
		Text        string `json:"text"`
		Attachments []struct {
			Fallback string `json:"fallback"`
			Color    string `json:"color"`
			Fields   []struct {
				Short bool   `json:"short"`
				Title string `json:"title"`
				Value string `json:"value"`
			} `json:"fields"`
		} `json:"attachments"`
	}
	decode(t, body, &m)
	if m.Text == "" || m.Username == "" || len(m.Attachments) != 1 {
		t.Fatalf("text %q, username %q, %d attachments", m.Text, m.Username, len(m.Attachments))
	}
	a := m.Attachments[0]
	if a.Fallback == "" || !strings.HasPrefix(a.Color, "#") || len(a.Fields) == 0 {
		t.Errorf("attachment: %+v", a)
	}
	for _, f := range a.Fields {
		if f.Title == "" || f.Value == "" {
			t.Errorf("field %+v", f)
		}
	}
}

// checkTeams checks a Teams workflow message: a "message" with one
// Adaptive Card attachment whose body has text blocks and a fact set, in
// at most 28 KB, Teams' message size limit.
func checkTeams(t *testing.T, body []byte) {
	var m struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			ContentURL  *string         `json:"contentUrl"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	decode(t, body, &m)
	if m.Type != "message" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("message %+v", m)
	}
	var card struct {
		Schema  string `json:"$schema"`
		Type    string `json:"type"`
		Version string `json:"version"`
		Body    []struct {
			Type   string `json:"type"`
			Text   string `json:"text"`
			Size   string `json:"size"`
			Weight string `json:"weight"`
			Wrap   bool   `json:"wrap"`
			Color  string `json:"color"`
			Facts  []struct {
				Title string `json:"title"`
				Value string `json:"value"`
			} `json:"facts"`
		} `json:"body"`
	}
	decode(t, m.Attachments[0].Content, &card)
	if card.Type != "AdaptiveCard" || card.Version == "" || len(card.Body) == 0 {
		t.Fatalf("card %+v", card)
	}
	for i, b := range card.Body {
		switch b.Type {
		case "TextBlock":
			if b.Text == "" {
				t.Errorf("element %d: empty text", i)
			}
		case "FactSet":
			if len(b.Facts) == 0 {
				t.Errorf("element %d: no facts", i)
			}
		default:
			t.Errorf("element %d of type %q", i, b.Type)
		}
	}
	if len(body) > 28<<10 {
		t.Errorf("message of %d bytes, over 28 KB", len(body))
	}
}

// checkDiscord checks a Discord execute-webhook message: content of at
// most 2000 characters, mentions disabled, at most 10 embeds within the
// embed limits (title 256, at most 25 fields, field name 256 and value
// 1024, footer 2048, 6000 in all).
func checkDiscord(t *testing.T, body []byte) {
	var m struct {
		Username        string `json:"username"`
		Content         string `json:"content"`
		AllowedMentions struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
		Embeds []struct {
			Title     string `json:"title"`
			Color     int    `json:"color"`
			Timestamp string `json:"timestamp"`
			Fields    []struct {
				Name   string `json:"name"`
				Value  string `json:"value"`
				Inline bool   `json:"inline"`
			} `json:"fields"`
			Footer struct {
				Text string `json:"text"`
			} `json:"footer"`
		} `json:"embeds"`
	}
	decode(t, body, &m)
	if m.Content == "" || runes(m.Content) > 2000 || m.AllowedMentions.Parse == nil || len(m.AllowedMentions.Parse) != 0 {
		t.Errorf("content of %d characters, allowed_mentions %+v", runes(m.Content), m.AllowedMentions)
	}
	if len(m.Embeds) == 0 || len(m.Embeds) > 10 {
		t.Fatalf("%d embeds", len(m.Embeds))
	}
	total := 0
	for _, e := range m.Embeds {
		total += runes(e.Title) + runes(e.Footer.Text)
		if e.Title == "" || runes(e.Title) > 256 || runes(e.Footer.Text) > 2048 || len(e.Fields) > 25 {
			t.Errorf("embed: title %d, footer %d characters, %d fields", runes(e.Title), runes(e.Footer.Text), len(e.Fields))
		}
		if e.Color < 0 || e.Color > 0xffffff || !strings.HasSuffix(e.Timestamp, "Z") {
			t.Errorf("embed: color %d, timestamp %q", e.Color, e.Timestamp)
		}
		for _, f := range e.Fields {
			total += runes(f.Name) + runes(f.Value)
			if f.Name == "" || f.Value == "" || runes(f.Name) > 256 || runes(f.Value) > 1024 {
				t.Errorf("field %q: %d characters", f.Name, runes(f.Value))
			}
		}
	}
	if total > 6000 {
		t.Errorf("embeds of %d characters in all", total)
	}
}

// checkNtfyLimits checks an ntfy message body: UTF-8 text of at most 4096
// bytes (ntfy turns a larger body into an attachment).
func checkNtfyLimits(t *testing.T, body []byte) {
	if !utf8.Valid(body) || len(body) == 0 || len(body) > 4096 {
		t.Errorf("body of %d bytes (valid UTF-8: %v)", len(body), utf8.Valid(body))
	}
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "http://h", Format: "irc"}, `unknown format "irc": want one of discord, mattermost, ntfy, slack, teams`},
		{Config{URL: "http://h", Format: "slack", Template: "{}"}, "both a format and a template"},
		{Config{URL: "http://h", Format: "ntfy", ContentType: "application/json"}, "format ntfy is sent as text/plain; charset=utf-8, not application/json"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
