package smtp

import (
	"strings"
	"testing"
)

// TestValidHost: host names of letters, digits, "-", "." and "_" up to 253
// characters, and IP addresses; nothing else.
func TestValidHost(t *testing.T) {
	for s, want := range map[string]bool{
		"mail.example.org": true, "AZaz09-._": true, "::1": true, "192.0.2.1": true,
		strings.Repeat("a", 253): true, strings.Repeat("a", 254): false,
		"mail example": false, "a@b": false, "a/b": false, "a`b": false, "a{b": false, "a[b": false, "a@": false,
		"a:b": false, "a\nb": false, "ä": false,
	} {
		if got := validHost(s); got != want {
			t.Errorf("validHost(%q) = %v, want %v", s, got, want)
		}
	}
}
