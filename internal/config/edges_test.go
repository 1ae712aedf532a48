package config_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/config"
)

// TestDurationDays: the day unit, alone, fractional, combined and repeated,
// and the longest duration there is (about 106,751 days): one day more is
// refused, not wrapped around.
func TestDurationDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "1.5d": 36 * time.Hour, "1d12h": 36 * time.Hour, "1h1d": 25 * time.Hour,
		"1d1d": 48 * time.Hour, "+2d": 48 * time.Hour, "0": 0, "0d": 0, " 90d ": 90 * 24 * time.Hour,
		"106751d": 106751 * 24 * time.Hour, "106751d23h47m16s": 106751*24*time.Hour + 23*time.Hour + 47*time.Minute + 16*time.Second,
		"106751d23h47m16.854775807s": math.MaxInt64, "1d0h": 24 * time.Hour, "1d9h": 33 * time.Hour, "0.5d0.5h": 12*time.Hour + 30*time.Minute,
	} {
		got, err := config.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"106752d": "too long", "106751d23h48m": "too long", "106751.9914d": "too long", "1e3d": "",
		"-1d": "negative", "": "empty", "d": "expected a number", "5": "missing unit", "1x": "unknown unit",
		"1..5d": "bad number", "1d-1h": "",
		// The limit exactly, by days alone or by days and the rest: not
		// wrapped around to a negative duration.
		"106751.99116730064d": "too long", "106751d23h47m16.854775808s": "too long", "106751.9911673006d1s": "too long",
	} {
		got, err := config.ParseDuration(in)
		if err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseDuration(%q): %v, want it to say %q", in, err, msg)
		}
	}
	for d, want := range map[time.Duration]string{
		36 * time.Hour: "1d12h", 90 * 24 * time.Hour: "90d", 90 * time.Second: "1m30s", time.Hour: "1h", 0: "0s",
		24*time.Hour + time.Minute: "1d1m", -time.Hour: "-1h",
	} {
		if got := config.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// parseErr parses toml and returns the error's text, "" if it parsed.
func parseErr(t *testing.T, toml string) string {
	t.Helper()
	_, err := config.Parse("edge.toml", []byte(toml))
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestConfigMinimumsAndRanges: each bound is accepted at its value and
// refused one step beyond it, with an error naming the key.
func TestConfigMinimumsAndRanges(t *testing.T) {
	const smtp = "[[smtp]]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
	for _, c := range []struct {
		name, toml, err string // err "": accepted
	}{
		{"initial_backoff at 100ms", "[delivery]\ninitial_backoff = \"100ms\"\nmax_backoff = \"100ms\"\n", ""},
		{"initial_backoff under 100ms", "[delivery]\ninitial_backoff = \"99ms\"\n", "initial_backoff"},
		{"max_backoff under 100ms", "[delivery]\ninitial_backoff = \"100ms\"\nmax_backoff = \"99999us\"\n", "max_backoff"},
		{"max_backoff under initial_backoff", "[delivery]\ninitial_backoff = \"2s\"\nmax_backoff = \"1999ms\"\n", "must be at least initial_backoff"},
		{"max_age at 1m", "[delivery]\nmax_age = \"1m\"\n", ""},
		{"max_age under 1m", "[delivery]\nmax_age = \"59s\"\n", "max_age"},
		{"kernel_log_hold at 10ms", "[watch]\nkernel_log_hold = \"10ms\"\n", ""},
		{"kernel_log_hold under 10ms", "[watch]\nkernel_log_hold = \"9ms\"\n", "kernel_log_hold"},
		{"smtp port 1", smtp + "port = 1\n", ""},
		{"smtp port 65535", smtp + "port = 65535\n", ""},
		{"smtp port 0", smtp + "port = 0\n", "port"},
		{"smtp port 65536", smtp + "port = 65536\n", "port"},
		{"smtp timeout 100ms", smtp + "timeout = \"100ms\"\n", ""},
		{"smtp timeout under 100ms", smtp + "timeout = \"99ms\"\n", "timeout"},
		{"metrics port 65535", "[metrics]\nlisten = \"127.0.0.1:65535\"\n", ""},
		{"metrics port 1", "[metrics]\nlisten = \"127.0.0.1:1\"\n", ""},
		{"metrics port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n", "port"},
		{"metrics port 65536", "[metrics]\nlisten = \"127.0.0.1:65536\"\n", "port"},
		{"webhook URL port 65535", "[[webhook]]\nurl = \"http://h.example:65535/x\"\n", ""},
		{"webhook URL port 0", "[[webhook]]\nurl = \"http://h.example:0/x\"\n", "port"},
		{"webhook URL port 65536", "[[webhook]]\nurl = \"http://h.example:65536/x\"\n", "port"},
		{"webhook timeout 100ms", "[[webhook]]\nurl = \"http://h.example/x\"\ntimeout = \"100ms\"\n", ""},
		{"webhook timeout under 100ms", "[[webhook]]\nurl = \"http://h.example/x\"\ntimeout = \"99ms\"\n", "timeout"},
		{"errno 1", "[[rule]]\nmatch = { errno = [1] }\n", ""},
		{"errno 4095", "[[rule]]\nmatch = { errno = [4095] }\n", ""},
		{"errno 0", "[[rule]]\nmatch = { errno = [0] }\n", "errno"},
		{"errno 4096", "[[rule]]\nmatch = { errno = [4096] }\n", "errno"},
		{"within 1ms", "[[rule]]\nmatch = { count = 1, within = \"1ms\" }\n", ""},
		{"within under 1ms", "[[rule]]\nmatch = { count = 1, within = \"999us\" }\n", "within"},
		{"count 0", "[[rule]]\nmatch = { count = 0, within = \"1s\" }\n", "count"},
	} {
		got := parseErr(t, c.toml)
		switch {
		case c.err == "" && got != "":
			t.Errorf("%s: refused: %s", c.name, got)
		case c.err != "" && got == "":
			t.Errorf("%s: accepted", c.name)
		case c.err != "" && (!strings.Contains(got, c.err) || !strings.Contains(got, "edge.toml:")):
			t.Errorf("%s: error %q does not name %q and where", c.name, got, c.err)
		}
	}
}
