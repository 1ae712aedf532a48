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
