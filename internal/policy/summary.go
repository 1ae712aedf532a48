package policy

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/event"
)

// maxSummary caps a summary's length in runes.
const maxSummary = 300

// subject names an incident: "EUCLEAN on /dev/sda1 (/srv)". Strings from the
// kernel or the file system are quoted when not plain (event.Safe).
func subject(inc *IncidentState) string {
	var b strings.Builder
	b.WriteString(event.Safe(inc.ErrorKind))
	b.WriteString(" on ")
	if inc.Filesystem.Device != "" {
		b.WriteString(event.Safe(inc.Filesystem.Device))
	} else {
		b.WriteString("unknown device")
	}
	if len(inc.Filesystem.Mountpoints) > 0 {
		b.WriteString(" (")
		b.WriteString(event.Safe(inc.Filesystem.Mountpoints[0]))
		if n := len(inc.Filesystem.Mountpoints) - 1; n > 0 {
			b.WriteString(" and " + strconv.Itoa(n) + " more")
		}
		b.WriteByte(')')
	}
	return b.String()
}

// countErrors says "1 error" or "N errors".
func countErrors(n uint64) string {
	if n == 1 {
		return "1 error"
	}
	return strconv.FormatUint(n, 10) + " errors"
}

func stamp(t time.Time) string { return t.Format(time.RFC3339) }

// finish bounds s, a one-liner whose parts were made clean by event.Safe
// or event.Clean.
func finish(s string) string {
	if utf8.RuneCountInString(s) > maxSummary {
		r := []rune(s)
		s = string(r[:maxSummary-1]) + "…"
	}
	return s
}

func errorSummary(inc *IncidentState, ev *event.Event, n uint64) string {
	s := subject(inc)
	if ev.ErrorText != "" {
		s += ": " + event.Clean(ev.ErrorText)
	} else if ev.Kind == event.KindRedundancy {
		s += ": " + event.Clean(ev.Message)
	}
	if n > 1 {
		s += " (" + countErrors(n) + ")"
	}
	return finish(s)
}

func escalationSummary(inc *IncidentState, n uint64, since time.Time) string {
	return finish(subject(inc) + ": now " + event.Safe(inc.Severity) + " (rule " + event.Safe(inc.Rule) + "): " +
		countErrors(n) + " since " + stamp(since) + ", " + countErrors(inc.Errors) + " in all")
}

func digestSummary(inc *IncidentState) string {
	more := strconv.FormatUint(inc.Folded, 10) + " more errors"
	if inc.Folded == 1 {
		more = "1 more error"
	}
	return finish(subject(inc) + ": " + more + " since " + stamp(inc.FoldedSince))
}

func reminderSummary(inc *IncidentState) string {
	return finish(subject(inc) + ": still unresolved, " + countErrors(inc.Errors) + " since " + stamp(inc.Opened))
}

func resolvedSummary(inc *IncidentState) string {
	return finish(subject(inc) + ": resolved after " + countErrors(inc.Errors) + " since " + stamp(inc.Opened))
}

func overflowSummary(inc *IncidentState) string {
	s := "event queue overflow: file system errors may have been lost"
	if inc.Events > 1 {
		s += " (" + strconv.FormatUint(inc.Events, 10) + " overflows since " + stamp(inc.Opened) + ")"
	}
	return finish(s)
}
