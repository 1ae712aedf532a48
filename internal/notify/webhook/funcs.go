package webhook

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

// Funcs returns the helper functions body templates can use, in addition to
// text/template's built-ins. None of them can run a program, read a file or
// reach the network:
//
//	json      JSON-encodes a value: a string becomes a quoted, escaped JSON
//	          string literal (HTML characters escaped too), so
//	          {"text": {{ json .Summary }}} is always valid JSON.
//	quote     Go-quotes a value ("a\nb").
//	clean     makes a value one printable line: control and format
//	          characters (newlines, escapes, bidi overrides) become spaces,
//	          invalid UTF-8 becomes U+FFFD.
//	join      joins a list with a separator: {{ join ", " .Filesystem.Mountpoints }}.
//	default   returns its first argument when the second is empty:
//	          {{ .Filesystem.Label | default "none" }}.
//	upper     upper-cases a value.
//	lower     lower-cases a value.
//	trunc     shortens a value to at most n characters, ending in "…":
//	          {{ trunc 200 .Event.Path }}.
//	slack     escapes &, < and > as Slack's mrkdwn requires, so a file name
//	          cannot form a link or a mention such as <!channel>.
//	markdown  backslash-escapes Markdown's formatting characters and breaks
//	          @-mentions (@channel, @all) with a word joiner.
//
// Values are converted to text with fmt, after following pointers (a nil
// pointer is empty), so {{ clean .Event.Inode }} prints the inode number.
// In a template for a JSON body every action that prints ends in json
// whether written or not (see jsonEscape): {{ .Summary }} inserts a quoted
// JSON string, and composite strings are built with printf, e.g.
// {{ printf "%s on %s" .Summary .Host }}.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json":     jsonFunc,
		"quote":    func(v any) string { return strconv.Quote(toString(v)) },
		"clean":    func(v any) string { return clean(toString(v)) },
		"join":     join,
		"default":  defaultFunc,
		"upper":    func(v any) string { return strings.ToUpper(toString(v)) },
		"lower":    func(v any) string { return strings.ToLower(toString(v)) },
		"trunc":    trunc,
		"slack":    func(v any) string { return slackEscape(toString(v)) },
		"markdown": func(v any) string { return markdownEscape(toString(v)) },
	}
}

// jsonFunc encodes v as JSON text.
func jsonFunc(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// toString converts v to text, following pointers.
func toString(v any) string {
	if v == nil {
		return ""
	}
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case fmt.Stringer:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return ""
		}
		return s.String()
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return ""
		}
		rv = rv.Elem()
	}
	return fmt.Sprint(rv.Interface())
}

// clean replaces control and format characters with spaces and invalid
// UTF-8 with U+FFFD.
func clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if unsafeRune(r) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unsafeRune(r) {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unsafeRune reports whether r is a control or format character (which
// includes bidi overrides and zero-width characters) or a line or paragraph
// separator.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// join joins the elements of a list (any slice) with sep.
func join(sep string, list any) (string, error) {
	if list == nil {
		return "", nil
	}
	if ss, ok := list.([]string); ok {
		return strings.Join(ss, sep), nil
	}
	rv := reflect.ValueOf(list)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return "", fmt.Errorf("join: %T is not a list", list)
	}
	parts := make([]string, rv.Len())
	for i := range parts {
		parts[i] = toString(rv.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

// defaultFunc returns def when v is empty (nil, a zero value, or an empty
// string, slice or map), else v.
func defaultFunc(def, v any) any {
	if v == nil {
		return def
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		if rv.Len() == 0 {
			return def
		}
		return v
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return def
		}
		return v
	}
	if rv.IsZero() {
		return def
	}
	return v
}

// trunc shortens v to at most n characters.
func trunc(n int, v any) string {
	s := toString(v)
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for j := range s {
		if count == n-1 {
			i = j
			break
		}
		count++
	}
	return s[:i] + "…"
}

// slackEscape escapes the characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// markdownEscape backslash-escapes Markdown formatting characters and
// defuses @-mentions.
func markdownEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '#', '|', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '@':
			b.WriteString("@\u2060")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SampleAlert returns an alert with every field set, including hostile
// strings (newlines, quotes, a command substitution, template and HTML
// syntax, a mention) in the file system's strings. New renders templates
// with it to find mistakes at configuration time; `fshealth check-config`
// gets them that way.
func SampleAlert() *alert.Alert {
	t := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ino := uint64(12)
	gen := uint32(1)
	ev := &event.Event{
		ID: "01JGSAMPLE0000000000000000", Kind: event.KindError, Time: event.Time{Time: t}, Source: event.SourceFanotify,
		Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 2, PID: 42,
		FSID: "3434710c:449b99e7", Device: "/dev/loop0", DeviceNumber: "7:0", FSType: "ext4",
		UUID: "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428", Label: "lbl\x1b[31m\"q\"",
		Mountpoints: []string{"/srv/a b", "/mnt/x\ny"},
		Inode:       &ino, Generation: &gen,
		Path:    "/srv/a b/evil\n\"q\" '$(touch /tmp/pwned)' {{.ID}} </script> <!channel> @all [x](http://e) \x00\x7f\u202e\xff",
		Message: "sample",
	}
	return &alert.Alert{
		ID: "01JGSAMPLEALERT00000000000", Type: alert.TypeError, Severity: alert.SeverityCritical, Rule: "default",
		Host: "host.example", Time: t, Summary: event.Summary(ev),
		Filesystem: alert.Filesystem{UUID: ev.UUID, Device: ev.Device, FSType: ev.FSType, Mountpoints: ev.Mountpoints, Label: ev.Label},
		ErrorKind:  ev.Error, Count: 2, Since: t.Add(-time.Minute), Event: ev, Test: true,
	}
}
