package jsonappend

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzString holds String to encoding/json's encoding of the same string,
// whatever its bytes.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x01\x1f\x7f", "\b\f\n\r\t\\\"",
		"\u2028\u2029", "\xff\xfe", "\xe2\x80", "\xed\xa0\x80", "日本\U0001F600", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("String(%q) = %s, json.Marshal gives %s", s, got[1:], want)
		}
		ss := []string{s, "", s}
		want, _ = json.Marshal(ss)
		if got := Strings(nil, ss); !bytes.Equal(got, want) {
			t.Fatalf("Strings = %s, json.Marshal gives %s", got, want)
		}
	})
}

// TestStringsNil: a nil slice is null, an empty one [], as encoding/json
// writes them.
func TestStringsNil(t *testing.T) {
	if got := string(Strings(nil, nil)); got != "null" {
		t.Errorf("Strings(nil) = %s", got)
	}
	if got := string(Strings(nil, []string{})); got != "[]" {
		t.Errorf("Strings([]) = %s", got)
	}
}

// TestObjectIsMarshal holds every Object method to encoding/json's
// encoding of a struct with the same fields, each member set and unset
// (zero, nil, empty): the omitempty ones are left out exactly when
// encoding/json leaves them out, the others are always there.
func TestObjectIsMarshal(t *testing.T) {
	type fields struct {
		S    string   `json:"s"`
		SO   string   `json:"so,omitempty"`
		I    int64    `json:"i"`
		IO   int64    `json:"io,omitempty"`
		U    uint64   `json:"u"`
		UO   uint64   `json:"uo,omitempty"`
		T    bool     `json:"t,omitempty"`
		SS   []string `json:"ss"`
		SSO  []string `json:"sso,omitempty"`
		Last string   `json:"last"`
	}
	for _, v := range []fields{
		{},
		{SS: []string{}, SSO: []string{}},
		{S: "a\"b", SO: "<x>", I: -1, IO: -9223372036854775808, U: 1, UO: 18446744073709551615, T: true,
			SS: []string{"", "\u2028"}, SSO: []string{"\xff"}, Last: "end"},
		{IO: 1, UO: 1, SSO: []string{""}},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		o := Object{B: []byte{'{'}}
		o.String("s", v.S)
		o.StringOmitEmpty("so", v.SO)
		o.Int("i", v.I)
		o.IntOmitEmpty("io", v.IO)
		o.Uint("u", v.U)
		o.UintOmitEmpty("uo", v.UO)
		o.TrueOmitEmpty("t", v.T)
		o.Strings("ss", v.SS)
		o.StringsOmitEmpty("sso", v.SSO)
		o.String("last", v.Last)
		if got := append(o.B, '}'); !bytes.Equal(got, want) {
			t.Errorf("Object gives\n%s\nencoding/json gives\n%s", got, want)
		}
	}
}
