// Package jsonappend appends JSON values to a byte slice, byte for byte as
// encoding/json's Marshal writes them (HTML characters, control characters,
// invalid UTF-8, U+2028 and U+2029 escaped the same way), without
// reflection or allocation. It serves the encoders of the objects fshealth
// writes for every event (package event): `fshealth watch --json` prints a
// line per event, and a reflective encoder's footprint (type caches,
// encoder closures) is what most of that line's time went to on a host
// where the caches are cold between events (docs/benchmarks.md).
//
// Keys are written as given: they must be plain ASCII that needs no escape
// (callers pass constants).
package jsonappend

import (
	"strconv"
	"unicode/utf8"
)

// escapes maps each ASCII byte to the escape encoding/json writes for it:
// "" for a byte copied as is.
var escapes = func() (t [utf8.RuneSelf]string) {
	const hex = "0123456789abcdef"
	for c := range 0x20 {
		t[c] = `\u00` + string(hex[c>>4]) + string(hex[c&0xf])
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = `\b`, `\f`, `\n`, `\r`, `\t`
	t['"'], t['\\'] = `\"`, `\\`
	t['<'], t['>'], t['&'] = `\u003c`, `\u003e`, `\u0026`
	return t
}()

// String appends s as a JSON string.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if esc := escapes[c]; esc != "" {
				b = append(append(b, s[done:i]...), esc...)
				done = i + 1
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && n == 1:
			esc = `\ufffd`
		case r == '\u2028':
			esc = `\u2028`
		case r == '\u2029':
			esc = `\u2029`
		}
		if esc != "" {
			b = append(append(b, s[done:i]...), esc...)
			done = i + n
		}
		i += n
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// Strings appends ss as a JSON array of strings, null when ss is nil.
func Strings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// Object writes the members of one JSON object in order, with the commas
// between them; its zero value is ready for the first member.
type Object struct {
	// B is the output: the caller appends "{" before the first member and
	// "}" after the last.
	B    []byte
	more bool
}

// Key appends the separator a member needs and `"key":`; the caller then
// appends the value to o.B.
func (o *Object) Key(key string) {
	if o.more {
		o.B = append(o.B, ',')
	}
	o.more = true
	o.B = append(append(append(o.B, '"'), key...), '"', ':')
}

// String appends the member key with the string value v.
func (o *Object) String(key, v string) {
	o.Key(key)
	o.B = String(o.B, v)
}

// StringOmitEmpty appends the member key with the value v unless v is "",
// as an omitempty string field.
func (o *Object) StringOmitEmpty(key, v string) {
	if v != "" {
		o.String(key, v)
	}
}

// Int appends the member key with the value v.
func (o *Object) Int(key string, v int64) {
	o.Key(key)
	o.B = strconv.AppendInt(o.B, v, 10)
}

// Uint appends the member key with the value v.
func (o *Object) Uint(key string, v uint64) {
	o.Key(key)
	o.B = strconv.AppendUint(o.B, v, 10)
}

// UintOmitEmpty appends the member key with the value v unless v is 0.
func (o *Object) UintOmitEmpty(key string, v uint64) {
	if v != 0 {
		o.Uint(key, v)
	}
}

// IntOmitEmpty appends the member key with the value v unless v is 0.
func (o *Object) IntOmitEmpty(key string, v int64) {
	if v != 0 {
		o.Int(key, v)
	}
}

// TrueOmitEmpty appends the member key with the value true when v is set,
// as an omitempty bool field.
func (o *Object) TrueOmitEmpty(key string, v bool) {
	if v {
		o.Key(key)
		o.B = append(o.B, "true"...)
	}
}

// Strings appends the member key with the array ss (null when nil).
func (o *Object) Strings(key string, ss []string) {
	o.Key(key)
	o.B = Strings(o.B, ss)
}

// StringsOmitEmpty appends the member key with the array ss unless it is
// empty, as an omitempty slice field.
func (o *Object) StringsOmitEmpty(key string, ss []string) {
	if len(ss) > 0 {
		o.Strings(key, ss)
	}
}
