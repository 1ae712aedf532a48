package webhook

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestSigningSecretKeySize: the key is 24 to 64 bytes, both included.
func TestSigningSecretKeySize(t *testing.T) {
	for n, ok := range map[int]bool{MinSigningKey - 1: false, MinSigningKey: true, 32: true, MaxSigningKey: true, MaxSigningKey + 1: false} {
		s := SigningSecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n))
		key, err := ParseSigningSecret(s)
		if ok && (err != nil || len(key) != n) || !ok && err == nil {
			t.Errorf("a %d-byte key: %d bytes, %v; want accepted %v", n, len(key), err, ok)
		}
	}
}

// TestValidMessageID: 1 to 256 printable ASCII characters, no space.
func TestValidMessageID(t *testing.T) {
	for id, want := range map[string]bool{
		"01JGSAMPLEALERT": true, "!": true, "~": true, strings.Repeat("a", 256): true,
		"": false, strings.Repeat("a", 257): false, "a b": false, "a\x7f": false, "a\x1f": false, "é": false,
	} {
		if got := validMessageID(id); got != want {
			t.Errorf("validMessageID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestTruncBounds: at most n characters (runes), the last of a cut one an
// ellipsis; n of 0 or less gives nothing.
func TestTruncBounds(t *testing.T) {
	for _, c := range []struct {
		n    int
		in   string
		want string
	}{
		{0, "abc", ""}, {-1, "abc", ""}, {1, "abc", "…"}, {1, "a", "a"}, {2, "abc", "a…"},
		{3, "abc", "abc"}, {4, "abc", "abc"}, {3, "äöüß", "äö…"}, {4, "äöüß", "äöüß"},
	} {
		if got := trunc(c.n, c.in); got != c.want {
			t.Errorf("trunc(%d, %q) = %q, want %q", c.n, c.in, got, c.want)
		}
	}
}

// TestLimitedWriter: writes up to the limit pass, one past it fails and
// marks the writer over, writing nothing.
func TestLimitedWriter(t *testing.T) {
	var b bytes.Buffer
	l := &limitedWriter{w: &b, n: 5}
	if n, err := l.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	if n, err := l.Write([]byte("de")); n != 2 || err != nil || l.over {
		t.Fatalf("write up to the limit: %d, %v, over %v", n, err, l.over)
	}
	if n, err := l.Write([]byte("f")); n != 0 || err == nil || !l.over || b.String() != "abcde" {
		t.Errorf("write past the limit: %d, %v, over %v, body %q", n, err, l.over, b.String())
	}
}
