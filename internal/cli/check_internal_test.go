package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestCheckOutputStaysOneLine: whatever the findings say (names from the
// kernel may hold "|" and anything event.Safe leaves), the Nagios output is
// one line whose only "|" starts the performance data, the NPD output one
// line of at most 80 bytes, and the gravest state wins.
func TestCheckOutputStaysOneLine(t *testing.T) {
	r := &checkResult{okText: "ok"}
	r.add(checkWarning, "w", "a warning | with a bar")
	r.add(checkCritical, "/srv|x EUCLEAN", "/srv|x (/dev/sda1 ext4): 1 error(s)")
	r.add(checkUnknown, "u", "something unknown")
	r.perf = []perfDatum{{label: "unhealthy", value: 1, crit: "0"}}
	var b bytes.Buffer
	if code := r.write(&b, "nagios"); code != 2 {
		t.Errorf("exit %d, want 2 (CRITICAL wins over UNKNOWN and WARNING)", code)
	}
	out := b.String()
	if strings.Count(out, "\n") != 1 || strings.Count(out, "|") != 1 || !strings.HasPrefix(out, "FSHEALTH CRITICAL - /srv/x (/dev/sda1 ext4)") ||
		!strings.HasSuffix(out, " | unhealthy=1;;0;0\n") {
		t.Errorf("nagios output %q", out)
	}
	b.Reset()
	if code := r.write(&b, "npd"); code != 1 || b.String() != "/srv|x EUCLEAN\n" {
		t.Errorf("npd: exit %d, %q", code, b.String())
	}

	long := &checkResult{okText: "ok"}
	for range 10 {
		long.add(checkCritical, "/a/very/long/mount/point EUCLEAN", "x")
	}
	b.Reset()
	long.write(&b, "npd")
	if len(b.String()) != 81 || !strings.HasSuffix(b.String(), "...\n") {
		t.Errorf("npd output not cut to 80 bytes: %q", b.String())
	}

	// A warning that blinds the check is Unknown to NPD, another is OK.
	w := &checkResult{okText: "1 file system(s) watched, none corrupted"}
	w.add(checkWarning, "events lost", "overflow")
	b.Reset()
	if code := w.write(&b, "npd"); code != 0 || b.String() != "1 file system(s) watched, none corrupted; events lost\n" {
		t.Errorf("npd with a warning: exit %d, %q", code, b.String())
	}
	w.addFinding(finding{state: checkWarning, blind: true, short: "daemon not running", text: "not running"})
	b.Reset()
	if code := w.write(&b, "npd"); code != 2 || b.String() != "daemon not running\n" {
		t.Errorf("npd without a daemon: exit %d, %q", code, b.String())
	}
	b.Reset()
	if code := w.write(&b, "nagios"); code != 1 {
		t.Errorf("nagios with warnings: exit %d, %q", code, b.String())
	}
}
