package config

import (
	"strings"
	"testing"
)

// TestHostnameOverride: --hostname sets the host name alerts carry, over the
// file's; a bad one is refused naming the flag, leaving the config alone.
func TestHostnameOverride(t *testing.T) {
	c, err := Parse("f.toml", []byte(`hostname = "from-file"`))
	if err != nil {
		t.Fatal(err)
	}
	name := "node-7"
	if err := c.ApplyOverrides(Overrides{Hostname: &name}); err != nil {
		t.Fatal(err)
	}
	if got := c.Host(); got != "node-7" {
		t.Errorf("Host() = %q after --hostname node-7, want node-7", got)
	}
	for _, bad := range []string{"", "two words", "bell\a"} {
		c := Default()
		err := c.ApplyOverrides(Overrides{Hostname: &bad})
		if err == nil || !strings.HasPrefix(err.Error(), "--hostname: ") {
			t.Errorf("--hostname %q: err = %v, want an error naming --hostname", bad, err)
		}
		if c.Hostname != "" {
			t.Errorf("--hostname %q refused but Hostname = %q", bad, c.Hostname)
		}
	}
}
