package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is 24 hours, the unit "d" of configuration durations.
const Day = 24 * time.Hour

// ParseDuration parses a configuration duration: Go's time.ParseDuration
// syntax ("90s", "1h30m") plus the unit "d" for days of 24 hours ("90d",
// "1d12h", "1.5d"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(t, "-") {
		return 0, errors.New("negative duration")
	}
	t = strings.TrimPrefix(t, "+")
	if t == "0" {
		return 0, nil
	}
	// Split off the day components, if any, and hand the rest to
	// time.ParseDuration. A day component is a number followed by "d";
	// numbers are digits with at most one '.'.
	var days float64
	var rest strings.Builder
	for t != "" {
		i := 0
		for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, errors.New("expected a number")
		}
		num := t[:i]
		j := i
		for j < len(t) && !(t[j] >= '0' && t[j] <= '9' || t[j] == '.') {
			j++
		}
		unit := t[i:j]
		if unit == "" {
			return 0, errors.New("missing unit (use ns, us, ms, s, m, h or d)")
		}
		if unit == "d" {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, errors.New("bad number " + strconv.Quote(num))
			}
			days += v
		} else {
			rest.WriteString(t[:j])
		}
		t = t[j:]
	}
	var d time.Duration
	if rest.Len() > 0 {
		var err error
		d, err = time.ParseDuration(rest.String())
		if err != nil {
			// time's message repeats the input with its own quoting;
			// keep ours short.
			msg := err.Error()
			if i := strings.Index(msg, "unknown unit"); i >= 0 {
				return 0, errors.New("unknown unit (use ns, us, ms, s, m, h or d)")
			}
			return 0, errors.New("not a duration")
		}
	}
	// The days in nanoseconds, then the sum, checked in integers: the
	// sum of floats was off by its rounding at the limit, where the
	// conversion wrapped around to a negative duration.
	ns := days * float64(Day)
	if ns >= 1<<63 || d > math.MaxInt64-time.Duration(ns) {
		return 0, errors.New("duration too long")
	}
	return d + time.Duration(ns), nil
}

// FormatDuration formats d the way ParseDuration reads it, using days when
// d has whole-day components: 90*Day is "90d", 36h is "1d12h", 90s is
// "1m30s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	neg := d < 0
	if neg {
		d = -d
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if days := d / Day; days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		d -= days * Day
		if d == 0 {
			return b.String()
		}
	}
	s := d.String()
	// time.Duration.String writes "1h0m0s"; drop zero tails for
	// readability.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	b.WriteString(s)
	return b.String()
}
