package config

import (
	"strconv"
	"strings"
)

// This file finds the line of every key in a TOML document, for error
// messages. BurntSushi/toml does not expose key positions, so lines is a
// small scanner that understands just enough TOML to follow tables, arrays
// of tables, dotted and quoted keys, inline tables, arrays and every kind of
// string. It is only run on documents the TOML parser has accepted, and it
// never fails: on anything unexpected it skips ahead, so the worst outcome
// is a missing (zero) line, never a wrong program.

// pathSep separates the components of a located path; array elements are
// components "#0", "#1"... (0-based).
const pathSep = "\x1f"

// locations maps a path (components joined with pathSep) to the 1-based line
// where it is first defined.
type locations map[string]int

// lookup returns the line of path or, if path itself was not found, of its
// nearest ancestor that was; 0 if none was.
func (l locations) lookup(path []string) int {
	for n := len(path); n > 0; n-- {
		if line, ok := l[strings.Join(path[:n], pathSep)]; ok {
			return line
		}
	}
	return 0
}

type locator struct {
	src  string
	pos  int
	line int
	locs locations
	// aot counts the elements of each array of tables seen so far, by
	// resolved path.
	aot map[string]int
}

// locate returns the line of every key, table and array element of src.
func locate(src string) locations {
	l := &locator{src: src, line: 1, locs: make(locations), aot: make(map[string]int)}
	l.document()
	return l.locs
}

func (l *locator) eof() bool { return l.pos >= len(l.src) }

func (l *locator) peek() byte {
	if l.eof() {
		return 0
	}
	return l.src[l.pos]
}

func (l *locator) advance() {
	if l.src[l.pos] == '\n' {
		l.line++
	}
	l.pos++
}

func (l *locator) record(path []string, line int) {
	k := strings.Join(path, pathSep)
	if _, ok := l.locs[k]; !ok {
		l.locs[k] = line
	}
}

// skipSpace skips blanks; with newlines, also line ends and comments.
func (l *locator) skipSpace(newlines bool) {
	for !l.eof() {
		switch c := l.peek(); {
		case c == ' ' || c == '\t':
			l.advance()
		case c == '#':
			for !l.eof() && l.peek() != '\n' {
				l.advance()
			}
		case newlines && (c == '\n' || c == '\r'):
			l.advance()
		default:
			return
		}
	}
}

// skipLine skips to the start of the next line.
func (l *locator) skipLine() {
	for !l.eof() && l.peek() != '\n' {
		l.advance()
	}
	if !l.eof() {
		l.advance()
	}
}

func (l *locator) document() {
	var table []string
	for {
		l.skipSpace(true)
		if l.eof() {
			return
		}
		start := l.pos
		line := l.line
		if l.peek() == '[' {
			l.advance()
			array := l.peek() == '['
			if array {
				l.advance()
			}
			keys := l.key()
			table = l.resolve(keys, array)
			l.record(table, line)
			l.skipLine()
		} else {
			l.keyValue(table)
			l.skipLine()
		}
		if l.pos == start {
			l.advance() // cannot happen on valid TOML; guarantees progress
		}
	}
}

// resolve turns a table header's keys into a path with array indices: every
// prefix that is an array of tables refers to its last element, and an
// array header appends a new element.
func (l *locator) resolve(keys []string, array bool) []string {
	var cur []string
	for i, k := range keys {
		cur = append(cur, k)
		p := strings.Join(cur, pathSep)
		if i == len(keys)-1 && array {
			l.aot[p]++
			cur = append(cur, "#"+strconv.Itoa(l.aot[p]-1))
			break
		}
		if n := l.aot[p]; n > 0 {
			cur = append(cur, "#"+strconv.Itoa(n-1))
		}
	}
	return cur
}

// keyValue reads "key = value" in table.
func (l *locator) keyValue(table []string) {
	line := l.line
	keys := l.key()
	if len(keys) == 0 {
		return
	}
	path := append(append([]string(nil), table...), keys...)
	for i := len(table) + 1; i <= len(path); i++ {
		l.record(path[:i], line)
	}
	l.skipSpace(false)
	if l.peek() != '=' {
		return
	}
	l.advance()
	l.skipSpace(false)
	l.value(path)
}

// key reads a possibly dotted key and the blanks around it.
func (l *locator) key() []string {
	var keys []string
	for {
		l.skipSpace(false)
		switch c := l.peek(); {
		case c == '"':
			s, raw := l.basicString()
			if v, err := unquoteKey(s); err == nil {
				raw = v
			}
			keys = append(keys, raw)
		case c == '\'':
			keys = append(keys, l.literalString())
		default:
			start := l.pos
			for !l.eof() && isBare(l.peek()) {
				l.advance()
			}
			if l.pos == start {
				return keys
			}
			keys = append(keys, l.src[start:l.pos])
		}
		l.skipSpace(false)
		if l.peek() != '.' {
			return keys
		}
		l.advance()
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// unquoteKey decodes a basic string's escapes; TOML's escapes are Go's
// except "\e", which Go lacks.
func unquoteKey(s string) (string, error) {
	return strconv.Unquote(strings.ReplaceAll(s, `\e`, `\x1b`))
}

// basicString reads a "..." string at pos and returns it with its quotes,
// and without them as a fallback.
func (l *locator) basicString() (quoted, raw string) {
	start := l.pos
	l.advance()
	for !l.eof() {
		c := l.peek()
		if c == '\\' {
			l.advance()
			if !l.eof() {
				l.advance()
			}
			continue
		}
		if c == '\n' {
			break // invalid; do not run away
		}
		l.advance()
		if c == '"' {
			break
		}
	}
	q := l.src[start:l.pos]
	return q, strings.Trim(q, `"`)
}

// literalString reads a '...' string and returns its content.
func (l *locator) literalString() string {
	l.advance()
	start := l.pos
	for !l.eof() && l.peek() != '\'' && l.peek() != '\n' {
		l.advance()
	}
	s := l.src[start:l.pos]
	if l.peek() == '\'' {
		l.advance()
	}
	return s
}

// multiline skips a multi-line string whose opening delimiter (three
// quotes) is at pos.
func (l *locator) multiline(q byte) {
	for range 3 {
		l.advance()
	}
	for !l.eof() {
		c := l.peek()
		if c == '\\' && q == '"' {
			l.advance()
			if !l.eof() {
				l.advance()
			}
			continue
		}
		if c == q && strings.HasPrefix(l.src[l.pos:], strings.Repeat(string(q), 3)) {
			for range 3 {
				l.advance()
			}
			// Up to two more quotes belong to the content.
			for range 2 {
				if l.peek() == q {
					l.advance()
				}
			}
			return
		}
		l.advance()
	}
}

// value skips one value, recording the elements of arrays and the keys of
// inline tables under path.
func (l *locator) value(path []string) {
	switch c := l.peek(); c {
	case '"', '\'':
		if strings.HasPrefix(l.src[l.pos:], strings.Repeat(string(c), 3)) {
			l.multiline(c)
		} else if c == '"' {
			l.basicString()
		} else {
			l.literalString()
		}
	case '[':
		l.advance()
		for i := 0; ; i++ {
			l.skipSpace(true)
			if l.eof() || l.peek() == ']' {
				break
			}
			start := l.pos
			elem := append(append([]string(nil), path...), "#"+strconv.Itoa(i))
			l.record(elem, l.line)
			l.value(elem)
			l.skipSpace(true)
			if l.peek() == ',' {
				l.advance()
			} else if l.pos == start {
				break
			}
		}
		if l.peek() == ']' {
			l.advance()
		}
	case '{':
		l.advance()
		for {
			l.skipSpace(true)
			if l.eof() || l.peek() == '}' {
				break
			}
			start := l.pos
			l.keyValue(path)
			l.skipSpace(true)
			if l.peek() == ',' {
				l.advance()
			} else if l.pos == start {
				break
			}
		}
		if l.peek() == '}' {
			l.advance()
		}
	default:
		for !l.eof() && !strings.ContainsRune(",]}#\r\n", rune(l.peek())) {
			l.advance()
		}
	}
}
