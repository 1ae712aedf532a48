package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
)

// countRules is a count rule (2 errors within 10 s) before the catch-all.
const countRules = `
[[rule]]
name = "twice"
match = { count = 2, within = "10s" }
[[rule]]
name = "catch-all"
severity = "info"
`

// TestCountWindowBoundary: an error exactly `within` old still counts; one
// a nanosecond older does not.
func TestCountWindowBoundary(t *testing.T) {
	for _, c := range []struct {
		second time.Duration
		rule   string
	}{
		{10 * sec, "twice"},
		{10*sec + 1, "catch-all"},
		{9 * sec, "twice"},
	} {
		e := engine(t, countRules)
		if d := e.Evaluate(ev(eio), t0); d.Rule != "catch-all" {
			t.Fatalf("first error: rule %q", d.Rule)
		}
		if d := e.Evaluate(ev(eio), at(c.second)); d.Rule != c.rule {
			t.Errorf("second error %v after the first: rule %q, want %q", c.second, d.Rule, c.rule)
		}
	}
}

// TestCountWindowEntries checks the window's bookkeeping: its sum is the
// sum of its live entries after merging (merged counts are added), errors
// at one time share an entry, expired entries are dropped, and the entries
// are compacted once more than half are dead.
func TestCountWindowEntries(t *testing.T) {
	var w countWindow
	live := func() uint64 {
		var n uint64
		for _, e := range w.entries[w.head:] {
			n += e.n
		}
		return n
	}
	const within = time.Hour
	// Exactly maxWindowEntries entries: no merge yet.
	for i := range maxWindowEntries {
		w.add(at(time.Duration(i)*time.Millisecond), uint64(i%3+1), within)
	}
	if n := len(w.entries) - w.head; n != maxWindowEntries {
		t.Fatalf("%d errors at distinct times: %d entries, want %d", maxWindowEntries, n, maxWindowEntries)
	}
	want := live()
	// One more merges neighbours: half as many entries, the same sum.
	w.add(at(time.Duration(maxWindowEntries)*time.Millisecond), 5, within)
	want += 5
	if n := len(w.entries) - w.head; n > maxWindowEntries/2+1 || n < maxWindowEntries/2 {
		t.Errorf("after the merge: %d entries, want about %d", n, maxWindowEntries/2)
	}
	if w.sum != want || live() != want {
		t.Errorf("after the merge: sum %d, entries add up to %d, want %d", w.sum, live(), want)
	}
	// The merged entries keep the later time of each pair: at the first
	// entry's expiry (0 + within + 1ns) nothing has gone yet, since the
	// first pair is dated 1 ms.
	w.expire(at(within+1), within)
	if w.sum != want {
		t.Errorf("merged entries expired early: sum %d, want %d", w.sum, want)
	}
	// Same time: added to the newest entry.
	last := at(time.Duration(maxWindowEntries) * time.Millisecond)
	n := len(w.entries)
	w.add(last, 2, within)
	if len(w.entries) != n || w.entries[n-1].n < 2 {
		t.Errorf("an error at the newest entry's time made a new entry (%d -> %d)", n, len(w.entries))
	}
	want += 2
	// Expire three quarters: the dead ones are dropped and the slice
	// compacted.
	w.expire(at(within+time.Duration(3*maxWindowEntries/4)*time.Millisecond), within)
	if w.sum != live() || w.sum >= want || w.sum == 0 {
		t.Errorf("after expiring three quarters: sum %d, live %d (was %d)", w.sum, live(), want)
	}
	if w.head != 0 {
		t.Errorf("more than half of the entries dead and not compacted: head %d of %d", w.head, len(w.entries))
	}
	// Expire everything.
	w.expire(last.Add(within+1), within)
	if w.sum != 0 || len(w.entries) != 0 || w.head != 0 {
		t.Errorf("all expired: sum %d, %d entries, head %d", w.sum, len(w.entries), w.head)
	}
}

// TestCountWindowExpiresFewerThanHalf: expiring fewer than half the
// entries drops them from the sum without compacting.
func TestCountWindowExpiresFewerThanHalf(t *testing.T) {
	var w countWindow
	for i := range 10 {
		w.add(at(time.Duration(i)*sec), 1, 100*sec)
	}
	w.expire(at(102*sec), 100*sec) // entries at 0 and 1 s are gone
	if w.sum != 8 || w.head != 2 || len(w.entries) != 10 {
		t.Errorf("sum %d, head %d, %d entries; want 8, 2, 10", w.sum, w.head, len(w.entries))
	}
	w.expire(at(105*sec), 100*sec) // 0..4 gone: exactly half, not more
	if w.sum != 5 || w.head != 5 || len(w.entries) != 10 {
		t.Errorf("sum %d, head %d, %d entries; want 5, 5, 10", w.sum, w.head, len(w.entries))
	}
	w.expire(at(106*sec), 100*sec) // 0..5 gone: more than half, compacted
	if w.sum != 4 || w.head != 0 || len(w.entries) != 4 {
		t.Errorf("sum %d, head %d, %d entries; want 4, 0, 4", w.sum, w.head, len(w.entries))
	}
}

// TestSweepKeepsUnexpiredWindows: Tick forgets the counts that have all
// expired and keeps the others, which still count.
func TestSweepKeepsUnexpiredWindows(t *testing.T) {
	e := engine(t, countRules)
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio, onFS("u2", "/dev/sdb", "ext4", "/b")), at(8*sec))
	e.Tick(at(5 * sec))
	if len(e.windows) != 2 {
		t.Fatalf("Tick at 5s: %d count windows, want 2", len(e.windows))
	}
	e.Tick(at(15 * sec)) // u1's error has expired, u2's has not
	if len(e.windows) != 1 {
		t.Fatalf("Tick at 15s: %d count windows, want 1", len(e.windows))
	}
	if _, ok := e.windows[windowKey{"twice", "u2"}]; !ok {
		t.Fatalf("Tick at 15s dropped u2's unexpired window: %v", e.windows)
	}
	if d := e.Evaluate(ev(eio, onFS("u2", "/dev/sdb", "ext4", "/b")), at(16*sec)); d.Rule != "twice" {
		t.Errorf("u2's second error within 10s after a sweep: rule %q", d.Rule)
	}
	if d := e.Evaluate(ev(eio), at(16*sec)); d.Rule != "catch-all" {
		t.Errorf("u1's error after its window expired: rule %q", d.Rule)
	}
}

// TestResolveClearsOnlyItsOwnWindows: resolving one file system forgets
// its counts, not another file system's.
func TestResolveClearsOnlyItsOwnWindows(t *testing.T) {
	e := engine(t, countRules)
	u2 := onFS("u2", "/dev/sdb", "ext4", "/b")
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio, u2), t0)
	e.Resolve("u1", at(sec))
	if d := e.Evaluate(ev(eio, u2), at(2*sec)); d.Rule != "twice" {
		t.Errorf("u2 after u1 was resolved: rule %q, want its count kept", d.Rule)
	}
	if d := e.Evaluate(ev(eio), at(2*sec)); d.Rule != "catch-all" {
		t.Errorf("u1 after it was resolved: rule %q, want its count forgotten", d.Rule)
	}
}

// TestReminderCounting: every reminder is counted in RemindersSent and
// carries the incident's error count; the interval doubles up to
// reminder_max.
func TestReminderCounting(t *testing.T) {
	e := New(nil, config.Flood{Window: 0, ReminderInitial: hr, ReminderMax: 2 * hr}, Options{Host: "h"})
	e.Evaluate(ev(eio, count(3)), t0)
	var times []time.Duration
	for i := 1; i <= 4; i++ {
		dl := e.NextDeadline()
		got := e.Tick(dl)
		if len(got) != 1 || got[0].Type != alert.TypeReminder || got[0].Count != 3 {
			t.Fatalf("reminder %d: %+v", i, got)
		}
		inc := e.Incidents()[0]
		if inc.RemindersSent != uint64(i) || inc.Seq != uint64(i+1) {
			t.Errorf("after reminder %d: RemindersSent %d, Seq %d", i, inc.RemindersSent, inc.Seq)
		}
		times = append(times, dl.Sub(t0))
	}
	if want := []time.Duration{hr, 3 * hr, 5 * hr, 7 * hr}; !equalDurations(times, want) {
		t.Errorf("reminders at %v, want %v", times, want)
	}
}

// TestZeroLimits: a zero reminder_max leaves reminders doubling without
// bound; a zero window alerts every error (nothing folded, no digest); a
// zero reminder_initial sends no reminder.
func TestZeroLimits(t *testing.T) {
	e := New(nil, config.Flood{Window: 0, ReminderInitial: hr, ReminderMax: 0}, Options{Host: "h"})
	for i := range 3 {
		d := e.Evaluate(ev(eio), at(time.Duration(i)*sec))
		if len(d.Alerts) != 1 || d.Folded || d.Alerts[0].Type != alert.TypeError {
			t.Fatalf("error %d with window 0: %+v", i, d)
		}
	}
	var times []time.Duration
	for range 5 {
		dl := e.NextDeadline()
		if len(e.Tick(dl)) != 1 {
			t.Fatalf("no reminder at %v", dl)
		}
		times = append(times, dl.Sub(t0))
	}
	if want := []time.Duration{hr, 3 * hr, 7 * hr, 15 * hr, 31 * hr}; !equalDurations(times, want) {
		t.Errorf("reminders with reminder_max 0 at %v, want %v", times, want)
	}

	e = New(nil, config.Flood{Window: minute, ReminderInitial: 0, ReminderMax: 0}, Options{Host: "h"})
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio), at(sec))
	got := e.Tick(at(minute))
	if len(got) != 1 || got[0].Type != alert.TypeDigest || got[0].Count != 1 {
		t.Fatalf("digest at the window's end: %+v", got)
	}
	// The storm filled the window, but with reminder_max 0 the next one
	// does not grow: windows are capped at the larger of the two.
	e.Evaluate(ev(eio), at(minute+sec))
	if dl := e.NextDeadline(); !dl.Equal(at(2 * minute)) {
		t.Errorf("next window ends %v, want %v (one window: reminder_max is 0)", dl, at(2*minute))
	}
	if got := e.Tick(at(2 * minute)); len(got) != 1 || got[0].Type != alert.TypeDigest {
		t.Errorf("second digest: %+v", got)
	}
	for _, inc := range e.Incidents() {
		if inc.RemindersSent != 0 || !inc.NextReminder.IsZero() {
			t.Errorf("reminder_initial 0: %+v", inc)
		}
	}
}

// TestWindowDoublesUpToReminderMax: a storm that fills each window doubles
// the next one, up to reminder_max.
func TestWindowDoublesUpToReminderMax(t *testing.T) {
	e := New(nil, config.Flood{Window: minute, ReminderMax: 3 * minute}, Options{Host: "h"})
	e.Evaluate(ev(eio), t0)
	var ends []time.Duration
	now := t0
	for range 4 {
		now = now.Add(sec)
		e.Evaluate(ev(eio), now) // folded: keeps the storm going
		dl := e.NextDeadline()
		ends = append(ends, dl.Sub(t0))
		if got := e.Tick(dl); len(got) != 1 || got[0].Type != alert.TypeDigest {
			t.Fatalf("Tick at %v: %+v", dl, got)
		}
		now = dl
	}
	// Windows of 1, 2, 3 (capped), 3 minutes.
	if want := []time.Duration{minute, 3 * minute, 6 * minute, 9 * minute}; !equalDurations(ends, want) {
		t.Errorf("windows end at %v, want %v", ends, want)
	}
}

func equalDurations(a, b []time.Duration) bool { return slices.Equal(a, b) }

// TestCountWindowMergeCountsLiveEntries: the bound is on live entries:
// expired ones still in the slice (fewer than half) do not make a window
// of exactly maxWindowEntries live entries merge.
func TestCountWindowMergeCountsLiveEntries(t *testing.T) {
	var w countWindow
	const within = time.Hour
	for i := range maxWindowEntries {
		w.add(at(time.Duration(i)*time.Millisecond), 1, within)
	}
	now := at(within + 9*time.Millisecond + 500*time.Microsecond)
	w.expire(now, within) // the entries at 0..9 ms
	if w.head != 10 || w.sum != maxWindowEntries-10 {
		t.Fatalf("after expiring 10: head %d, sum %d", w.head, w.sum)
	}
	for k := 1; k <= 10; k++ {
		w.add(now.Add(time.Duration(k)), 1, within)
	}
	if live := len(w.entries) - w.head; live != maxWindowEntries || w.head != 10 {
		t.Errorf("%d live entries (head %d), want %d unmerged", live, w.head, maxWindowEntries)
	}
	if w.sum != maxWindowEntries {
		t.Errorf("sum %d, want %d", w.sum, maxWindowEntries)
	}
}

// TestEscalationWithNothingFolded: an escalation by the incident's first
// follow-up event (nothing folded yet) reports that event alone, since now.
func TestEscalationWithNothingFolded(t *testing.T) {
	e := engine(t, `
[[rule]]
name = "many"
severity = "critical"
match = { count = 2, within = "1m" }
[[rule]]
name = "one"
severity = "warning"
`)
	if d := e.Evaluate(ev(eio), t0); d.Rule != "one" || len(d.Alerts) != 1 {
		t.Fatalf("first error: %+v", d)
	}
	d := e.Evaluate(ev(eio), at(sec))
	if d.Rule != "many" || len(d.Alerts) != 1 {
		t.Fatalf("second error: %+v", d)
	}
	a := d.Alerts[0]
	if a.Severity != "critical" || a.Count != 1 || !a.Since.Equal(at(sec)) {
		t.Errorf("escalation: severity %s, count %d, since %v; want critical, 1, %v", a.Severity, a.Count, a.Since, at(sec))
	}
}

// TestWindowOffAfterReload: a flood window open when a reload turns
// windows off (window 0) still ends with its digest, and then no window
// follows.
func TestWindowOffAfterReload(t *testing.T) {
	e := New(nil, config.Flood{Window: minute}, Options{Host: "h"})
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio), at(sec)) // folded
	e.Reconfigure(nil, config.Flood{}, Options{Host: "h"})
	got := e.Tick(at(minute))
	if len(got) != 1 || got[0].Type != alert.TypeDigest {
		t.Fatalf("Tick at the window's end: %+v", got)
	}
	if dl := e.NextDeadline(); !dl.IsZero() {
		t.Errorf("NextDeadline %v after the last window, with windows and reminders off", dl)
	}
	if inc := e.Incidents()[0]; inc.Window != 0 || !inc.WindowEnd.IsZero() {
		t.Errorf("window %v ending %v, want none", inc.Window, inc.WindowEnd)
	}
}

// TestRestoredReminderWithoutInterval: an incident restored with a
// reminder due but no interval (state of an older version) gets that
// reminder and no more.
func TestRestoredReminderWithoutInterval(t *testing.T) {
	e := New(nil, config.Flood{Window: minute, ReminderInitial: hr}, Options{Host: "h"})
	e.Restore([]IncidentState{{ID: "x", FSKey: "u1", ErrorKind: "EIO", Rule: "default", Severity: "critical",
		Opened: t0, LastEventTime: t0, Events: 1, Errors: 1, Seq: 1, NextReminder: at(hr)}})
	got := e.Tick(at(hr))
	if len(got) != 1 || got[0].Type != alert.TypeReminder {
		t.Fatalf("Tick at the reminder: %+v", got)
	}
	if dl := e.NextDeadline(); !dl.IsZero() {
		t.Errorf("NextDeadline %v: want no more reminders", dl)
	}
}

// TestChangedOrderedByKey: Changed lists incidents by key, not by when
// they were opened.
func TestChangedOrderedByKey(t *testing.T) {
	e := engine(t, "")
	e.Evaluate(ev(eio, onFS("u2", "/dev/sdb", "ext4", "/b")), t0)
	e.Evaluate(ev(eio), at(sec))
	e.Evaluate(ev(euclean), at(2*sec))
	var keys []string
	for _, inc := range e.Changed() {
		keys = append(keys, inc.Key())
	}
	if want := []string{"u1/EIO", "u1/EUCLEAN", "u2/EIO"}; !slices.Equal(keys, want) {
		t.Errorf("Changed() keys %q, want %q", keys, want)
	}
}

// repeatRule is a rule with one repeating action.
const repeatRule = `
[[rule]]
name = "srv"
[[rule.actions]]
name = "command"
argv = ["/usr/bin/logger", "fs error"]
repeat = true
`

// TestRepeatActionBoundaries: a repeating action runs again exactly one
// flood window after it last ran; with the window off it runs at every
// event, even when the clock stepped back.
func TestRepeatActionBoundaries(t *testing.T) {
	e := engine(t, repeatRule)
	if d := e.Evaluate(ev(eio), t0); len(d.Actions) != 1 {
		t.Fatalf("first event: %d actions", len(d.Actions))
	}
	if d := e.Evaluate(ev(eio), at(minute-1)); len(d.Actions) != 0 {
		t.Errorf("a nanosecond less than a window later: %d actions, want 0", len(d.Actions))
	}
	if d := e.Evaluate(ev(eio), at(minute)); len(d.Actions) != 1 {
		t.Errorf("exactly a window later: %d actions, want 1", len(d.Actions))
	}

	c, err := config.Parse("test.toml", []byte(repeatRule))
	if err != nil {
		t.Fatal(err)
	}
	e = New(c.Rules, config.Flood{}, Options{Host: "h"})
	for i, s := range []time.Duration{10 * sec, 10 * sec, 5 * sec} { // the last after a clock step back
		if d := e.Evaluate(ev(eio), at(s)); len(d.Actions) != 1 {
			t.Errorf("window off, event %d at %v: %d actions, want 1", i, s, len(d.Actions))
		}
	}
}

// TestIncidentStateIsACopy: the incident a Decision or Incidents returns
// shares nothing with the engine's, and an incident without actions has
// none (nil, as it was stored).
func TestIncidentStateIsACopy(t *testing.T) {
	e := engine(t, "")
	d := e.Evaluate(ev(eio), t0)
	if d.Incident.Actions != nil {
		t.Errorf("incident without actions: Actions %#v, want nil", d.Incident.Actions)
	}
	e = engine(t, repeatRule)
	d = e.Evaluate(ev(eio), t0)
	if len(d.Incident.Actions) != 1 {
		t.Fatalf("incident actions %v", d.Incident.Actions)
	}
	for k := range d.Incident.Actions {
		d.Incident.Actions[k] = at(-hr)
	}
	d.Incident.Filesystem.Mountpoints[0] = "/changed"
	inc := e.Incidents()[0]
	for k, v := range inc.Actions {
		if !v.Equal(t0) {
			t.Errorf("action %s last ran %v in the engine after the caller changed its copy", k, v)
		}
	}
	if inc.Filesystem.Mountpoints[0] != "/srv" {
		t.Errorf("mount points %v in the engine after the caller changed its copy", inc.Filesystem.Mountpoints)
	}
}

// TestAlertFilesystemMountpoints: alerts carry the file system's mount
// points, and an empty list (never null) when it has none.
func TestAlertFilesystemMountpoints(t *testing.T) {
	e := engine(t, "")
	a := e.Evaluate(ev(eio), t0).Alerts[0]
	if !slices.Equal(a.Filesystem.Mountpoints, []string{"/srv"}) {
		t.Errorf("alert mount points %q, want [/srv]", a.Filesystem.Mountpoints)
	}
	a = e.Evaluate(ev(eio, onFS("u3", "/dev/sdc", "xfs")), t0).Alerts[0]
	if a.Filesystem.Mountpoints == nil || len(a.Filesystem.Mountpoints) != 0 {
		t.Errorf("alert mount points %#v, want an empty list", a.Filesystem.Mountpoints)
	}
}

// TestSummaryLengthBoundary: a summary of exactly maxSummary characters is
// kept whole; one more is cut to maxSummary with "…".
func TestSummaryLengthBoundary(t *testing.T) {
	e := engine(t, "")
	prefix := e.Evaluate(ev(eio, func(x *event.Event) { x.ErrorText = "" }), t0).Alerts[0].Summary + ": "
	for _, extra := range []int{0, 1} {
		text := strings.Repeat("é", maxSummary-utf8.RuneCountInString(prefix)+extra)
		e := engine(t, "")
		got := e.Evaluate(ev(eio, func(x *event.Event) { x.ErrorText = text }), t0).Alerts[0].Summary
		if n := utf8.RuneCountInString(got); n != maxSummary {
			t.Errorf("%d characters over: summary of %d characters, want %d", extra, n, maxSummary)
		}
		if cut := strings.HasSuffix(got, "…"); cut != (extra == 1) {
			t.Errorf("%d characters over: cut %v", extra, cut)
		}
	}
}

// TestFirstOverflowSummary: the first overflow says so alone; the second
// counts them.
func TestFirstOverflowSummary(t *testing.T) {
	e := engine(t, "")
	over := &event.Event{Kind: event.KindOverflow, Message: "queue overflow"}
	if got := e.Evaluate(over, t0).Alerts[0].Summary; got != "event queue overflow: file system errors may have been lost" {
		t.Errorf("first overflow: %q", got)
	}
	if got := e.Evaluate(over, at(sec)).Alerts[0].Summary; !strings.Contains(got, "(2 overflows since ") {
		t.Errorf("second overflow: %q", got)
	}
}
