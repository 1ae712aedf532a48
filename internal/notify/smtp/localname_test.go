package smtp

import (
	"strings"
	"testing"
)

// TestIsLocalName: a bare local name ("root", "ops-team") is one the local
// MTA qualifies; up to 64 characters (the local part's limit, RFC 5321),
// never one with an "@", a space, a leading dot or an option's dash.
func TestIsLocalName(t *testing.T) {
	for s, want := range map[string]bool{
		"root": true, "ops-team": true, "a.b_c+d": true, "_x": true, "9": true,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"": false, "root@example.org": false, "ops team": false, ".x": false, "-oQ": false, "+x": false, "root\n": false,
	} {
		if got := IsLocalName(s); got != want {
			t.Errorf("IsLocalName(%q) = %v, want %v", s, got, want)
		}
	}
}
