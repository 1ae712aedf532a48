package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// This file is all the TOML reading the package does (Redacted writes it
// back with go-toml's encoder): go-toml parses the file and decodes it into
// the file types (file.go); what is here only keeps, for the messages, the
// line of every key and the kind of every value, and checks them against
// the file types first, so that every unknown key and every value of the
// wrong type is reported at once, not just the first, and left out of
// decoding while the rest is decoded and checked. What the values mean
// is for parse.go, channels.go, webhook.go, mail.go and rules.go.

// document is a parsed configuration file: the line and the kind of value
// of every key, table and array element, by path. A path joins keys and
// element indices ("#0", "#1"...) with pathSep.
type document struct {
	data  []byte
	nl    []int // offsets of the line feeds, for lineAt
	order []string
	spots map[string]spot
	// exprs are the byte ranges of the top-level expressions (a key =
	// value, or the line of a table header), numbered from 1; dropped are
	// those left out of decoding: unknown keys and values of the wrong
	// kind.
	exprs   []unstable.Range
	dropped map[int]bool
	// tables counts the elements of each array of tables so far.
	tables map[string]int
}

// spot is where a path is defined and what it holds.
type spot struct {
	line int
	kind unstable.Kind
	expr int // the top-level expression it is in
	// troubled says a key at or below it was reported (unknown, or of
	// the wrong kind) and left out.
	troubled bool
}

const pathSep = "\x1f"

// read parses data. Its syntax errors, and the duplicate keys go-toml's
// decoder finds, are one problem with line and column.
func read(file string, data []byte) (*document, *Problem) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // editors may start a UTF-8 file with one
	if err := toml.Unmarshal(data, &struct{}{}); err != nil {
		p := syntaxProblem(file, data, err)
		return nil, &p
	}
	data = watchShorthand(data)
	d := &document{data: data, spots: make(map[string]spot), tables: make(map[string]int), dropped: make(map[int]bool)}
	for i, c := range data {
		if c == '\n' {
			d.nl = append(d.nl, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			d.exprs = append(d.exprs, d.headerLine(e))
			table = d.header(e)
		case unstable.KeyValue:
			d.exprs = append(d.exprs, e.Raw)
			d.keyValue(table, e)
		}
	}
	if err := p.Error(); err != nil { // go-toml accepted it above
		return nil, &Problem{File: file, Message: "syntax error: " + err.Error()}
	}
	return d, nil
}

// watchShorthand rewrites the top-level `watch = [...]` as the
// `watch.paths = [...]` it stands for, which keeps every line.
func watchShorthand(data []byte) []byte {
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.KeyValue {
			break // a table: no more top-level keys
		}
		k := e.Key()
		k.Next()
		if string(k.Node().Data) == "watch" && k.IsLast() && e.Value().Kind == unstable.Array {
			end := int(k.Node().Raw.Offset + k.Node().Raw.Length)
			return append(append(append([]byte(nil), data[:end]...), ".paths"...), data[end:]...)
		}
	}
	return data
}

// lineAt returns the 1-based line of n: an array, which carries no
// position, is at its first element, or at fallback when empty.
func (d *document) lineAt(n *unstable.Node, fallback int) int {
	if n.Kind == unstable.Array {
		for it := n.Children(); it.Next(); {
			if c := it.Node(); c.Kind != unstable.Comment {
				return d.lineAt(c, fallback)
			}
		}
	}
	if n.Raw.Length == 0 {
		return fallback
	}
	return sort.SearchInts(d.nl, int(n.Raw.Offset)) + 1
}

// headerLine returns the range of the line of a table header, which
// holds nothing else but a comment (the parser gives headers no range).
func (d *document) headerLine(e *unstable.Node) unstable.Range {
	it := e.Key()
	it.Next()
	start := int(it.Node().Raw.Offset)
	start = bytes.LastIndexByte(d.data[:start], '\n') + 1
	end := bytes.IndexByte(d.data[start:], '\n')
	if end < 0 {
		end = len(d.data) - start
	}
	return unstable.Range{Offset: uint32(start), Length: uint32(end)}
}

// record notes where path is first defined.
func (d *document) record(path []string, line int, kind unstable.Kind) {
	k := strings.Join(path, pathSep)
	if _, ok := d.spots[k]; !ok {
		d.spots[k] = spot{line: line, kind: kind, expr: len(d.exprs)}
		d.order = append(d.order, k)
	}
}

// header records a [table] or [[table]] header and returns its path:
// every key that is an array of tables stands for its last element, and
// [[table]] adds one.
func (d *document) header(e *unstable.Node) []string {
	var path []string
	line := 0
	for it := e.Key(); it.Next(); {
		if line == 0 {
			line = d.lineAt(it.Node(), 1)
		}
		path = append(path, string(it.Node().Data))
		k := strings.Join(path, pathSep)
		if it.IsLast() && e.Kind == unstable.ArrayTable {
			d.record(path, line, unstable.ArrayTable)
			path = append(path, "#"+strconv.Itoa(d.tables[k]))
			d.tables[k]++
			break
		}
		if n, ok := d.tables[k]; ok {
			path = append(path, "#"+strconv.Itoa(n-1))
		} else if !it.IsLast() {
			d.record(path, line, unstable.Table)
		}
	}
	d.record(path, line, unstable.Table)
	return path
}

// keyValue records a possibly dotted key = value in table.
func (d *document) keyValue(table []string, e *unstable.Node) {
	path := append([]string(nil), table...)
	line := 0
	for it := e.Key(); it.Next(); {
		if line == 0 {
			line = d.lineAt(it.Node(), 1)
		}
		path = append(path, string(it.Node().Data))
		if !it.IsLast() {
			d.record(path, line, unstable.Table)
		}
	}
	d.value(path, e.Value(), line)
}

// value records a value, the elements of an array and the keys of an
// inline table.
func (d *document) value(path []string, v *unstable.Node, line int) {
	d.record(path, line, v.Kind)
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind != unstable.Comment {
				d.value(append(path[:len(path):len(path)], "#"+strconv.Itoa(i)), c, d.lineAt(c, line))
				i++
			}
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				d.keyValue(path, c)
			}
		}
	}
}

// line returns the line of path or, if path itself is not in the file, of
// its nearest ancestor that is; 0 if none is.
func (d *document) line(path []string) int {
	for n := len(path); n > 0; n-- {
		if s, ok := d.spots[strings.Join(path[:n], pathSep)]; ok {
			return s.line
		}
	}
	return 0
}

// given reports whether path is in the file.
func (d *document) given(path []string) bool {
	_, ok := d.spots[strings.Join(path, pathSep)]
	return ok
}

// has reports whether path is in the file and has been decoded: its value
// is of the right kind.
func (d *document) has(path []string) bool {
	s, ok := d.spots[strings.Join(path, pathSep)]
	return ok && !d.dropped[s.expr]
}

// kind returns the kind of value path is in the file.
func (d *document) kind(path []string) unstable.Kind {
	return d.spots[strings.Join(path, pathSep)].kind
}

// isString reports whether path is a string in the file.
func (d *document) isString(path []string) bool { return d.kind(path) == unstable.String }

// troubled reports whether a value at or below path was left out of
// decoding.
func (d *document) troubled(path []string) bool {
	return d.spots[strings.Join(path, pathSep)].troubled
}

// shown returns path as messages name it: "webhook[2].headers.\"Bad Name\"".
func shown(path []string) string {
	var b strings.Builder
	for _, k := range path {
		if i, ok := strings.CutPrefix(k, "#"); ok {
			n, _ := strconv.Atoi(i)
			b.WriteString("[" + strconv.Itoa(n+1) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if isBareKey(k) {
			b.WriteString(k)
		} else {
			b.WriteString(strconv.Quote(k))
		}
	}
	return b.String()
}

// isBareKey reports whether key can be written unquoted in TOML.
func isBareKey(key string) bool {
	return key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == ""
}

// check reports every key that the file type root has no field for and
// every value of a kind its field cannot take. Those are left out of
// decoding, with all they hold, so that the rest can still be decoded and
// checked.
func (d *document) check(r *reader, root reflect.Type) {
	bad := make(map[string]bool) // paths reported
	for _, k := range d.order {
		path := strings.Split(k, pathSep)
		s := d.spots[k]
		if slices.ContainsFunc(prefixes(path), func(p string) bool { return bad[p] }) {
			d.dropped[s.expr] = true // inside what was reported
			continue
		}
		p := Problem{File: r.file, Line: s.line}
		if t, known := fieldType(root, path); !known {
			p.Message = "unknown key " + strconv.Quote(path[len(path)-1])
			switch in := shown(path[:len(path)-1]); {
			case in == "":
			case strings.Contains(in, "["):
				p.Message += " in " + in
			default:
				p.Message += " in [" + in + "]"
			}
		} else if ok, want := fits(t, s.kind); !ok {
			p.Key, p.Message = shown(path), fmt.Sprintf("expected %s, got %s", want, kindName(s.kind))
			if s.kind == unstable.Table && len(path) == 1 && want == "an array of tables" {
				p.Message += fmt.Sprintf(": write [[%s]], not [%s]", path[0], path[0])
			}
		} else {
			continue
		}
		r.problems = append(r.problems, p)
		bad[k] = true
		d.dropped[s.expr] = true
		for _, a := range prefixes(path) {
			if t, ok := d.spots[a]; ok {
				t.troubled = true
				d.spots[a] = t
			}
		}
	}
}

// prefixes returns the keys of path and of its ancestors.
func prefixes(path []string) []string {
	out := make([]string, len(path))
	for i := range path {
		out[i] = strings.Join(path[:i+1], pathSep)
	}
	return out
}

// fieldType returns the Go type that holds path in a value of type t, nil
// below a field of interface type (which takes anything); known is false
// when a struct has no field for a key.
func fieldType(t reflect.Type, path []string) (_ reflect.Type, known bool) {
	for _, k := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Interface:
			return nil, true
		case reflect.Struct:
			f, ok := fieldByTag(t, k)
			if !ok {
				return nil, false
			}
			t = f
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		default:
			return nil, false // a key inside a scalar: its kind is reported
		}
	}
	return t, true
}

// fieldByTag returns the type of the field of struct t tagged key,
// looking into embedded structs as go-toml does.
func fieldByTag(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if ft, ok := fieldByTag(f.Type, key); ok {
				return ft, true
			}
		} else if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key {
			return f.Type, true
		}
	}
	return nil, false
}

var (
	durationType   = reflect.TypeFor[duration]()
	stringListType = reflect.TypeFor[stringList]()
	actionType     = reflect.TypeFor[fileAction]()
)

// fits reports whether a value of kind k can go into a Go value of type
// t (anything can below an interface: nil), and names what t takes.
func fits(t reflect.Type, k unstable.Kind) (bool, string) {
	if t == nil {
		return true, ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return k == unstable.String, `a duration string such as "30s", "5m", "1h" or "7d"`
	case stringListType:
		return k == unstable.String || k == unstable.Array, "an array of strings"
	case actionType:
		return k == unstable.String || k == unstable.Table || k == unstable.InlineTable, "a table or an action name"
	}
	switch t.Kind() {
	case reflect.String:
		return k == unstable.String, "a string"
	case reflect.Bool:
		return k == unstable.Bool, "true or false"
	case reflect.Int64:
		return k == unstable.Integer, "an integer"
	case reflect.Struct, reflect.Map:
		return k == unstable.Table || k == unstable.InlineTable, "a table"
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct {
			return k == unstable.ArrayTable || k == unstable.Array, "an array of tables"
		}
		return k == unstable.Array, "an array"
	}
	return true, ""
}

// kindName names a kind of TOML value for messages.
func kindName(k unstable.Kind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "a date-time"
}

var kindNames = map[unstable.Kind]string{
	unstable.String: "a string", unstable.Integer: "an integer", unstable.Float: "a float", unstable.Bool: "a boolean",
	unstable.Array: "an array", unstable.ArrayTable: "an array of tables", unstable.Table: "a table", unstable.InlineTable: "a table",
}

// decode fills f from the document but for the dropped expressions,
// strictly. The document has been checked: an error here is reported as
// go-toml words it, at its line.
func (d *document) decode(r *reader, f *fileConfig) bool {
	data := bytes.Clone(d.data)
	for i, e := range d.exprs {
		if d.dropped[i+1] {
			for j := e.Offset; j < e.Offset+e.Length; j++ {
				if data[j] != '\n' {
					data[j] = ' '
				}
			}
		}
	}
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(f); err != nil {
		r.problems = append(r.problems, syntaxProblem(r.file, data, err))
		return false
	}
	return true
}

// secretKey matches a key that holds a secret, or whose value may (the
// user information and query of a URL, a header's value), anywhere in the
// text it is given: the key of an expression, of an inline table or of a
// dotted key.
var secretKey = regexp.MustCompile(`(?i)(secret|password|headers|token|auth|key|cookie|url)[a-z0-9_-]*["']?\s*[.=]`)

// withheld replaces go-toml's message for a syntax error that may be in a
// secret: go-toml quotes the character at the error.
const withheld = "invalid value (details withheld: the line may hold a secret)"

// syntaxProblem turns a go-toml error into a problem at its line and
// column. go-toml's message may quote the offending text; it is withheld
// when the error may be in a secret (mayHoldSecret).
func syntaxProblem(file string, data []byte, err error) Problem {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return Problem{File: file, Message: "syntax error: " + err.Error()}
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	switch {
	case msg == "strings must be quoted":
		msg = "strings, durations and addresses must be quoted"
	case strings.HasPrefix(msg, "expected newline but got"), strings.HasSuffix(msg, "at start of value"):
		msg += " (strings, durations and addresses must be quoted)"
	}
	if mayHoldSecret(data, line) {
		msg = withheld
	}
	if k := de.Key(); len(k) > 0 && (strings.HasSuffix(k[len(k)-1], "secret") || strings.HasSuffix(k[len(k)-1], "password")) {
		msg = withheld
	}
	return Problem{File: file, Line: line, Column: col, Message: "syntax error: " + msg}
}

// mayHoldSecret reports whether a syntax error on line (1-based) of data
// may be in a secret: the expression it is in, from the end of the last
// whole expression before the line to the line's end (a value may span
// lines: multi-line strings, arrays, inline tables), names a key that
// holds one (secretKey), or it is in a table of headers.
func mayHoldSecret(data []byte, line int) bool {
	lineStart := 0 // offset of the line (IndexByte's -1 past the last adds nothing)
	for n := 1; n < line; n++ {
		lineStart += bytes.IndexByte(data[lineStart:], '\n') + 1
	}
	text, _, _ := bytes.Cut(data[lineStart:], []byte("\n"))
	lineEnd := lineStart + len(text)
	from, headers := 0, false
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind == unstable.KeyValue {
			end := int(e.Raw.Offset + e.Raw.Length)
			if end > lineStart {
				break // the expression of the error, whole as far as go-toml goes
			}
			from = end
			continue
		}
		it := e.Key() // a table header, alone on its line
		it.Next()
		if int(it.Node().Raw.Offset) > lineStart {
			break
		}
		from, headers = int(it.Node().Raw.Offset), false
		for it := e.Key(); it.Next(); {
			headers = headers || string(it.Node().Data) == "headers"
		}
	}
	return headers || secretKey.Match(data[from:lineEnd])
}
