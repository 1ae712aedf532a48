package notify

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://user:pw@example.com:8443/p/a?token=abc&x=1#frag")
	if got := RedactURL(u); got != "https://xxxxx@example.com:8443/p/a?token=xxxxx&x=xxxxx" {
		t.Errorf("RedactURL = %q", got)
	}
	u, _ = url.Parse("http://example.com/p")
	if got := RedactURL(u); got != "http://example.com/p" {
		t.Errorf("RedactURL = %q", got)
	}
}

// TestSecretsScrub checks that every recorded form of a secret is
// replaced, the longest first, and that values too short to be
// credentials are left alone.
func TestSecretsScrub(t *testing.T) {
	var s Secrets
	u, _ := url.Parse("https://us%20er:p%26ss@example.com/?token=t+k")
	s.AddURL(u)
	s.AddHeader("Bearer tok-123")
	s.AddBasicAuth("am", "am-pass")
	s.Add("ab")
	text := "us er p&ss p%26ss t k t+k Bearer tok-123 tok-123 am-pass YW06YW0tcGFzcw== ab dXMgZXI6cCZzcw=="
	got := s.Scrub(text)
	if want := "xxxxx xxxxx xxxxx xxxxx xxxxx xxxxx xxxxx xxxxx xxxxx ab xxxxx"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"  ok\n", 10, "ok"},
		{"a\nb\x1b[2J", 50, `a\nb\x1b[2J`},
		{strings.Repeat("é", 10), 5, "éé…"},
		{"bad \xff", 50, "bad \uFFFD"},
	} {
		if got := Line(tc.in, tc.max); got != tc.want {
			t.Errorf("Line(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
