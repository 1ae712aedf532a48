package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/notify"
)

// parseTemplate parses a body template with the channel's functions. For a
// JSON body (jsonBody), every action that prints a value is made to print
// it JSON-encoded: see jsonEscape.
func parseTemplate(name, text string, jsonBody bool) (*template.Template, error) {
	t, err := template.New(name).Funcs(Funcs()).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if jsonBody {
		jsonEscape(t)
	}
	return t, nil
}

// jsonEscape rewrites every template of t so that each action that prints
// a value — {{ .Summary }}, {{ printf "%s: %s" .Host .Summary }},
// {{ .Count }} — prints it through the json function, as one complete JSON
// value: a quoted and escaped string, a number, true, false, null, an array
// or an object. An action whose last function already is json is left as
// it is. Actions that print nothing (variable declarations and
// assignments) and control structures (if, range, with) are left alone,
// but the actions inside them are rewritten. So the template's own text
// alone decides the body's structure: no value, whatever an event holds,
// can close a string, add a key or end the document.
func jsonEscape(t *template.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			escapeNode(tt.Tree.Root)
		}
	}
}

// escapeNode applies jsonEscape to n and the nodes under it.
func escapeNode(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeNode(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 || endsInJSON(n.Pipe) {
			return
		}
		id := parse.NewIdentifier("json").SetPos(n.Pos)
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{id}})
	case *parse.IfNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	case *parse.RangeNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	case *parse.WithNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	}
}

// endsInJSON reports whether the pipeline's last command calls json.
func endsInJSON(p *parse.PipeNode) bool {
	if len(p.Cmds) == 0 {
		return false
	}
	last := p.Cmds[len(p.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "json"
}

// checkJSON returns an error if b is not one valid JSON document in valid
// UTF-8, saying where, with a short, cleaned excerpt.
func checkJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("the body is not valid UTF-8")
	}
	if json.Valid(b) {
		return nil
	}
	// Unmarshal reports where the syntax error is.
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	off := int(se.Offset)
	from, to := max(0, off-40), min(len(b), off+10)
	return fmt.Errorf("%v at byte %d, near `%s` (each {{ }} inserts one complete JSON value, quotes included)", se, off, notify.Line(string(b[from:to]), 60))
}

// hostileText is what an attacker could put in an event's strings: a file
// name, a label, a process name in a kernel message. It has quotes,
// backslashes, newlines and other control characters, braces and template
// delimiters, a forged header line, HTML, chat mentions, a bidi override,
// a line separator and bytes that are not UTF-8.
const hostileText = "evil\"q\" 'sq' \\ \\\" \\u0000 \n\r\nX-Injected: 1\r\n\t{\"k\":[}] }} {{.ID}} {{ end }} ${x} $(touch /tmp/pwned) `id` " +
	"</script><!-- <!channel> @all [x](http://e) \x00\x01\x07\x1b[31m\x7f \u0085\u2028\u2029\u202e \xff\xfe\xc0\x80 \xed\xa0\x80 end"

// hostileMessageSize is the size of the hostile alert's kernel message
// and message, far beyond what the kernel logs in one record.
const hostileMessageSize = 64 << 10

// HostileAlert returns SampleAlert with every string an event or a file
// system can set replaced by hostile text (see hostileText), every list
// holding two such strings, every optional part present, and a kernel
// message and message of 64 KiB. Only what fshealth itself sets from a
// fixed set stays as it is (see fixedFields). A body template must render
// it to a valid body: New and CheckTemplate check that.
func HostileAlert() *alert.Alert {
	a := SampleAlert()
	fill(reflect.ValueOf(a).Elem())
	long := strings.Repeat(hostileText+" ", hostileMessageSize/(len(hostileText)+1)+1)[:hostileMessageSize]
	a.Event.KernelMessage = long
	a.Event.Message = long
	return a
}

// fixedFields are the fields fill leaves alone: ids fshealth makes,
// values from its fixed sets (alert type, severity, event kind and source)
// and the rule's name, which the configuration checks.
var fixedFields = map[string]bool{"ID": true, "Type": true, "Severity": true, "Kind": true, "Source": true, "Rule": true}

// fill sets every exported string under v (except fixedFields) to
// hostileText, every list of strings to two of them, and allocates every
// nil pointer to a struct or number.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			if !v.CanSet() {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || fixedFields[f.Name] {
				continue
			}
			fill(v.Field(i))
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(hostileText)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String && v.CanSet() {
			s := reflect.MakeSlice(v.Type(), 2, 2)
			s.Index(0).SetString(hostileText)
			s.Index(1).SetString("/" + hostileText)
			v.Set(s)
		}
	}
}

// TemplateError is a body template that does not parse, or that fails or
// renders an invalid body for a sample alert.
type TemplateError struct {
	// Sample says which sample alert, e.g. "a hostile sample alert"; empty
	// when the template does not parse.
	Sample string
	// Err is what went wrong.
	Err error
}

// Error describes the problem, without text/template's "template: NAME:"
// prefixes.
func (e *TemplateError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "template: ")
	msg = strings.TrimPrefix(msg, checkName+":")
	if e.Sample == "" {
		return "does not parse: line " + msg
	}
	return "fails on " + e.Sample + ": " + msg
}

// checkName is the name CheckTemplate parses templates under.
const checkName = "template"

// CheckTemplate checks a body template as the channel would use it with
// the content type contentType: it must parse with the channel's
// functions, and render, for SampleAlert and for HostileAlert, a body of
// at most 1 MiB which, for a JSON content type, is valid JSON. The error,
// a *TemplateError, is what the configuration checker reports with the
// template's file and line.
func CheckTemplate(text, contentType string) error {
	jsonBody := isJSONType(contentType)
	t, err := parseTemplate(checkName, text, jsonBody)
	if err != nil {
		return &TemplateError{Err: err}
	}
	n := &Notifier{tmpl: t, jsonBody: jsonBody, contentType: contentType}
	for _, s := range samples() {
		if _, err := n.render(s.a); err != nil {
			return &TemplateError{Sample: s.what, Err: err}
		}
	}
	return nil
}

// sample is an alert New and CheckTemplate render, and what to call it.
type sample struct {
	what string
	a    *alert.Alert
}

// samples returns the alerts templates are checked with.
func samples() []sample {
	return []sample{{"a sample alert", SampleAlert()}, {"a hostile sample alert", HostileAlert()}}
}
