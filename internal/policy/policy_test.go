package policy

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
)

// t0 is the fake clock's start; at(d) is t0 + d.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	sec    = time.Second
	minute = time.Minute
	hr     = time.Hour
)

// flood is the anti-flood setting of most tests.
var flood = config.Flood{Window: minute, ReminderInitial: hr, ReminderMax: 4 * hr}

// engine builds an engine from a TOML configuration, so the tests also
// cover what config hands the policy (errno names, "all", defaults).
func engine(t *testing.T, toml string) *Engine {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return New(c.Rules, flood, Options{Host: "host1", Channels: c.ChannelNames()})
}

// ev returns an error event on the ext4 file system "u1" (/dev/sda1 at
// /srv) unless changed by the options.
func ev(errno int, opts ...func(*event.Event)) *event.Event {
	e := &event.Event{
		Kind:        event.KindError,
		Errno:       errno,
		Error:       event.ErrnoName(errno),
		ErrorText:   "some error",
		ErrorCount:  1,
		Device:      "/dev/sda1",
		FSType:      "ext4",
		UUID:        "u1",
		Mountpoints: []string{"/srv"},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func onFS(uuid, device, fstype string, mounts ...string) func(*event.Event) {
	return func(e *event.Event) {
		e.UUID, e.Device, e.FSType, e.Mountpoints = uuid, device, fstype, mounts
	}
}

func count(n uint32) func(*event.Event) { return func(e *event.Event) { e.ErrorCount = n } }

const (
	eio     = 5
	euclean = 117
	enospc  = 28
)

func TestMatching(t *testing.T) {
	e := engine(t, `
[[webhook]]
name = "pager"
url = "http://pager"
[[webhook]]
name = "chat"
url = "http://chat"

[[rule]]
name = "srv-corruption"
severity = "critical"
channels = ["pager"]
match = { mountpoint = ["/srv/*"], errno = ["EUCLEAN"] }

[[rule]]
name = "srv"
severity = "warning"
channels = ["chat", "pager", "chat"]
match = { mountpoint = ["/srv/*"] }

[[rule]]
name = "by-uuid"
severity = "info"
match = { uuid = ["ABCD-*"] }

[[rule]]
name = "nvme-xfs"
severity = "warning"
match = { device = ["/dev/nvme*"], fstype = ["xfs"] }

[[rule]]
name = "eio-by-number"
severity = "info"
match = { errno = [5] }
`)
	tests := []struct {
		name     string
		ev       *event.Event
		rule     string
		severity string
		channels []string
	}{
		{"first match wins", ev(euclean, onFS("x", "/dev/sdb", "ext4", "/srv/data")), "srv-corruption", "critical", []string{"pager"}},
		{"next rule when errno differs", ev(enospc, onFS("x", "/dev/sdb", "ext4", "/srv/data")), "srv", "warning", []string{"chat", "pager"}},
		{"any mount point may match", ev(enospc, onFS("x", "/dev/sdb", "ext4", "/mnt/bind", "/srv/data")), "srv", "warning", []string{"chat", "pager"}},
		{"glob does not cross /", ev(enospc, onFS("x", "/dev/sdb", "ext4", "/srv/data/deeper")), "default", "critical", []string{"journal", "pager", "chat"}},
		{"uuid ignores case", ev(enospc, onFS("abcd-1234", "/dev/sdc", "ext4", "/x")), "by-uuid", "info", []string{"journal", "pager", "chat"}},
		{"device and fstype both needed", ev(enospc, onFS("y", "/dev/nvme0n1p2", "xfs", "/y")), "nvme-xfs", "warning", []string{"journal", "pager", "chat"}},
		{"device without fstype", ev(enospc, onFS("y", "/dev/nvme0n1p2", "ext4", "/y")), "default", "critical", []string{"journal", "pager", "chat"}},
		{"errno by number", ev(eio, onFS("z", "/dev/sdd", "ext4", "/z")), "eio-by-number", "info", []string{"journal", "pager", "chat"}},
		{"empty uuid never matches a glob", ev(enospc, onFS("", "/dev/sde", "ext4", "/e")), "default", "critical", []string{"journal", "pager", "chat"}},
		{"no mount points", ev(euclean, onFS("w", "/dev/sdf", "ext4")), "default", "critical", []string{"journal", "pager", "chat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Evaluate(tt.ev, t0)
			if d.Rule != tt.rule || d.Severity != tt.severity || !reflect.DeepEqual(d.Channels, tt.channels) {
				t.Errorf("got rule %q severity %q channels %q; want %q %q %q", d.Rule, d.Severity, d.Channels, tt.rule, tt.severity, tt.channels)
			}
		})
	}
}

func TestCountWithinSlidingWindow(t *testing.T) {
	e := engine(t, `
[[rule]]
name = "storm"
match = { count = 3, within = "10s" }
[[rule]]
name = "eio-storm"
match = { errno = ["EIO"], count = 4, within = "1m" }
[[rule]]
name = "catch-all"
severity = "info"
`)
	steps := []struct {
		at   time.Duration
		ev   *event.Event
		rule string
	}{
		{0, ev(enospc), "catch-all"},
		{5 * sec, ev(enospc), "catch-all"},
		{11 * sec, ev(enospc), "catch-all"}, // the error at 0 left the window: 2 within 10s
		{12 * sec, ev(enospc), "storm"},     // 5, 11, 12
		{15 * sec, ev(enospc), "storm"},     // exactly 10s after 5: still inside
		{40 * sec, ev(enospc), "catch-all"},
		{41 * sec, ev(enospc, count(2)), "storm"},                                    // error_count counts fully: 1 + 2
		{42 * sec, ev(enospc, onFS("other", "/dev/sdz", "ext4", "/o")), "catch-all"}, // per file system
		{50 * sec, ev(enospc), "storm"},                                              // 40, 41 (2), 50
		// EIO errors count for eio-storm only; the ENOSPC ones do not.
		{61 * sec, ev(eio), "catch-all"},
		{62 * sec, ev(eio, count(2)), "storm"}, // 61, 62 (2)
		{80 * sec, ev(eio), "eio-storm"},       // 4 EIO errors within 1m, but only 1 error within 10s
	}
	for i, s := range steps {
		d := e.Evaluate(s.ev, at(s.at))
		if d.Rule != s.rule {
			t.Errorf("step %d (t+%v): rule %q, want %q", i, s.at, d.Rule, s.rule)
		}
	}
}

func TestCountWindowMemoryBounded(t *testing.T) {
	e := engine(t, "[[rule]]\nname = \"storm\"\nmatch = { count = 100000, within = \"1h\" }\n")
	var last Decision
	for i := range 100000 {
		last = e.Evaluate(ev(eio), at(time.Duration(i)*time.Millisecond))
	}
	if last.Rule != "storm" {
		t.Errorf("100000 errors within 1h: rule %q", last.Rule)
	}
	for _, w := range e.windows {
		if len(w.entries)-w.head > maxWindowEntries {
			t.Errorf("window holds %d entries", len(w.entries)-w.head)
		}
		if w.sum != 100000 {
			t.Errorf("window sum %d", w.sum)
		}
	}
}

// TestBurst: a burst becomes one alert now and one digest with the exact
// count when the window closes.
func TestBurst(t *testing.T) {
	e := engine(t, "")
	d := e.Evaluate(ev(euclean, count(2)), t0)
	if len(d.Alerts) != 1 || d.Folded {
		t.Fatalf("first event: %+v", d)
	}
	a := d.Alerts[0]
	if a.Type != alert.TypeError || a.Count != 2 || !a.Since.Equal(t0) || a.Severity != "critical" || a.Rule != "default" ||
		a.Host != "host1" || a.ErrorKind != "EUCLEAN" || a.Event == nil || a.Filesystem.Device != "/dev/sda1" {
		t.Errorf("first alert: %+v", a)
	}
	if a.Summary != "EUCLEAN on /dev/sda1 (/srv): some error (2 errors)" {
		t.Errorf("summary %q", a.Summary)
	}
	var folded uint64
	for i := 1; i <= 99; i++ {
		d := e.Evaluate(ev(euclean, count(uint32(i%3+1))), at(time.Duration(i)*300*time.Millisecond))
		if len(d.Alerts) != 0 || !d.Folded {
			t.Fatalf("event %d: %+v", i, d)
		}
		folded += uint64(i%3 + 1)
	}
	if got := e.NextDeadline(); !got.Equal(at(minute)) {
		t.Fatalf("NextDeadline = %v, want window end %v", got, at(minute))
	}
	if got := e.Tick(at(59 * sec)); len(got) != 0 {
		t.Errorf("early Tick: %+v", got)
	}
	got := e.Tick(at(minute))
	if len(got) != 1 {
		t.Fatalf("Tick at window end: %+v", got)
	}
	dg := got[0]
	if dg.Type != alert.TypeDigest || dg.Count != folded || !dg.Since.Equal(at(300*time.Millisecond)) || dg.ID == a.ID {
		t.Errorf("digest %+v, want count %d", dg, folded)
	}
	if want := "EUCLEAN on /dev/sda1 (/srv): " + itoa(folded) + " more errors since 2025-03-01T12:00:00Z"; dg.Summary != want {
		t.Errorf("digest summary %q, want %q", dg.Summary, want)
	}
	// The storm filled the window, so the next one is twice as long; it
	// closes quietly, and then only the reminder is left.
	if got := e.NextDeadline(); !got.Equal(at(3 * minute)) {
		t.Errorf("NextDeadline = %v, want %v", got, at(3*minute))
	}
	if got := e.Tick(at(3 * minute)); len(got) != 0 {
		t.Errorf("quiet window: %+v", got)
	}
	if got := e.NextDeadline(); !got.Equal(at(hr)) {
		t.Errorf("NextDeadline = %v, want the reminder at %v", got, at(hr))
	}
	inc := e.Incidents()
	if len(inc) != 1 || inc[0].Errors != 2+folded || inc[0].Events != 100 || inc[0].Folded != 0 {
		t.Errorf("incident %+v", inc)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestSustainedStorm: digests thin out while errors keep coming.
func TestSustainedStorm(t *testing.T) {
	e := New(nil, config.Flood{Window: minute, ReminderInitial: 0, ReminderMax: 8 * minute}, Options{Host: "h"})
	e.Evaluate(ev(eio), t0)
	var digests []time.Duration
	var total uint64 = 1
	var reported uint64 = 1
	for s := 1; s <= 40*60; s++ { // one error a second for 40 minutes
		now := at(time.Duration(s) * sec)
		for dl := e.NextDeadline(); !dl.IsZero() && !dl.After(now); dl = e.NextDeadline() {
			for _, a := range e.Tick(dl) {
				digests = append(digests, dl.Sub(t0))
				reported += a.Count
			}
		}
		d := e.Evaluate(ev(eio), now)
		total++
		for _, a := range d.Alerts {
			reported += a.Count
		}
	}
	want := []time.Duration{1 * minute, 3 * minute, 7 * minute, 15 * minute, 23 * minute, 31 * minute, 39 * minute}
	if !reflect.DeepEqual(digests, want) {
		t.Errorf("digests at %v, want %v", digests, want)
	}
	reported += sumCounts(e.Resolve("u1", at(41*minute)), alert.TypeDigest)
	if reported != total {
		t.Errorf("alerts report %d errors, want %d", reported, total)
	}
}

func sumCounts(as []alert.Alert, typ string) uint64 {
	var n uint64
	for _, a := range as {
		if a.Type == typ {
			n += a.Count
		}
	}
	return n
}

// TestReminders: reminders at reminder_initial, doubling, capped at
// reminder_max.
func TestReminders(t *testing.T) {
	e := engine(t, "")
	e.Evaluate(ev(eio), t0)
	var times []time.Duration
	for range 8 {
		dl := e.NextDeadline()
		for _, a := range e.Tick(dl) {
			if a.Type != alert.TypeReminder || a.Count != 1 || !a.Since.Equal(t0) {
				t.Errorf("reminder %+v", a)
			}
			if want := "EIO on /dev/sda1 (/srv): still unresolved, 1 error since 2025-03-01T12:00:00Z"; a.Summary != want {
				t.Errorf("summary %q", a.Summary)
			}
			times = append(times, dl.Sub(t0))
		}
	}
	// The first deadline is the quiet window's end (no alert).
	want := []time.Duration{1 * hr, 3 * hr, 7 * hr, 11 * hr, 15 * hr, 19 * hr, 23 * hr}
	if !reflect.DeepEqual(times, want) {
		t.Errorf("reminders at %v, want %v", times, want)
	}
	// A late Tick (the daemon was suspended) sends one reminder, not a
	// backlog, and the schedule goes on from then.
	dl := e.NextDeadline()
	late := dl.Add(10 * hr)
	if got := e.Tick(late); len(got) != 1 {
		t.Errorf("late Tick: %d alerts", len(got))
	}
	if got := e.NextDeadline(); !got.Equal(late.Add(4 * hr)) {
		t.Errorf("after a late Tick, next reminder %v, want %v", got, late.Add(4*hr))
	}
}

func TestNoRemindersWhenOff(t *testing.T) {
	e := New(nil, config.Flood{Window: minute}, Options{})
	e.Evaluate(ev(eio), t0)
	e.Tick(at(minute))
	if dl := e.NextDeadline(); !dl.IsZero() {
		t.Errorf("NextDeadline = %v with reminders off", dl)
	}
}

func TestIdleHasNoDeadline(t *testing.T) {
	e := engine(t, "")
	if dl := e.NextDeadline(); !dl.IsZero() {
		t.Errorf("NextDeadline = %v on an idle engine", dl)
	}
	if got := e.Tick(at(hr)); len(got) != 0 {
		t.Errorf("Tick on an idle engine: %+v", got)
	}
}

func TestResolve(t *testing.T) {
	e := engine(t, "")
	first := e.Evaluate(ev(eio), t0).Alerts[0]
	e.Evaluate(ev(eio, count(4)), at(sec))
	e.Evaluate(ev(euclean), at(2*sec))
	e.Evaluate(ev(eio, onFS("u2", "/dev/sdb", "xfs", "/b")), at(2*sec))
	e.Changed()

	got := e.Resolve("u1", at(10*sec))
	var types []string
	for _, a := range got {
		types = append(types, a.Type+"/"+a.ErrorKind)
	}
	if want := []string{"digest/EIO", "resolved/EIO", "resolved/EUCLEAN"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("Resolve sent %q, want %q", types, want)
	}
	if got[0].Count != 4 || got[1].Count != 5 || !got[1].Since.Equal(t0) || got[1].Severity != "critical" {
		t.Errorf("alerts %+v", got)
	}
	if want := "EIO on /dev/sda1 (/srv): resolved after 5 errors since 2025-03-01T12:00:00Z"; got[1].Summary != want {
		t.Errorf("summary %q", got[1].Summary)
	}
	changed := e.Changed()
	if len(changed) != 2 || changed[0].Resolved.IsZero() || changed[1].Resolved.IsZero() {
		t.Errorf("Changed() = %+v", changed)
	}
	if inc := e.Incidents(); len(inc) != 1 || inc[0].FSKey != "u2" {
		t.Errorf("open incidents %+v", inc)
	}
	if got := e.Resolve("u1", at(11*sec)); len(got) != 0 {
		t.Errorf("second Resolve: %+v", got)
	}
	// A new error opens a new incident: alerted at once, with new ids.
	d := e.Evaluate(ev(eio), at(20*sec))
	if len(d.Alerts) != 1 || d.Alerts[0].Type != alert.TypeError || d.Alerts[0].ID == first.ID || d.Incident.ID == changed[0].ID {
		t.Errorf("after Resolve: %+v", d)
	}
}

// TestRestore: after a restart, restored incidents continue their
// schedule: no re-alert, the digest counts errors from before and after,
// and alert ids continue the same sequence.
func TestRestore(t *testing.T) {
	run := func(e *Engine, from time.Duration) []alert.Alert {
		var out []alert.Alert
		for i := from; i < from+5; i++ {
			out = append(out, e.Evaluate(ev(eio), at(i*sec)).Alerts...)
		}
		return append(out, e.Tick(at(minute))...)
	}
	// Reference: no restart.
	ref := engine(t, "")
	first := ref.Evaluate(ev(eio), t0).Alerts
	ref.Evaluate(ev(eio), at(sec))
	want := run(ref, 10)

	// Restart after the second event: persist through JSON, as the
	// store would.
	e := engine(t, "")
	if got := e.Evaluate(ev(eio), t0).Alerts; got[0].ID != first[0].ID {
		t.Errorf("ids differ between identical engines: %s %s", got[0].ID, first[0].ID)
	}
	e.Evaluate(ev(eio), at(sec))
	b, err := json.Marshal(e.Changed())
	if err != nil {
		t.Fatal(err)
	}
	var saved []IncidentState
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	restarted := engine(t, "")
	restarted.Restore(saved)
	if dl := restarted.NextDeadline(); !dl.Equal(at(minute)) {
		t.Errorf("restored NextDeadline = %v, want %v", dl, at(minute))
	}
	got := run(restarted, 10)
	if len(got) != 1 || got[0].Type != alert.TypeDigest || got[0].Count != 6 {
		t.Fatalf("after restore: %+v", got)
	}
	if got[0].ID != want[0].ID || got[0].Count != want[0].Count || got[0].Summary != want[0].Summary {
		t.Errorf("digest after restore %+v\nwithout restart %+v", got[0], want[0])
	}
	if !strings.HasSuffix(got[0].ID, "-2") {
		t.Errorf("digest id %s does not continue the sequence", got[0].ID)
	}
	// Reminders continue too.
	restarted.Tick(at(3 * minute))
	if dl := restarted.NextDeadline(); !dl.Equal(at(hr)) {
		t.Errorf("next reminder %v, want %v", dl, at(hr))
	}
	// Resolved incidents are not restored.
	saved[0].Resolved = at(2 * sec)
	r := engine(t, "")
	r.Restore(saved)
	if len(r.Incidents()) != 0 {
		t.Errorf("restored a resolved incident")
	}
}

// TestCrashBeforeCommit: if the daemon dies after Tick but before
// committing, the restarted engine raises the same alerts with the same
// ids, so receivers de-duplicate the re-send.
func TestCrashBeforeCommit(t *testing.T) {
	e := engine(t, "")
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio), at(sec))
	saved := e.Changed()
	before := e.Tick(at(minute))
	r := engine(t, "")
	r.Restore(saved)
	after := r.Tick(at(minute + 3*sec))
	if len(before) != 1 || len(after) != 1 || before[0].ID != after[0].ID || before[0].Count != after[0].Count {
		t.Errorf("before crash %+v\nafter restart %+v", before, after)
	}
}

func TestActionsOncePerIncident(t *testing.T) {
	e := engine(t, `
[[rule]]
name = "srv"
match = { mountpoint = ["/srv"] }
[[rule.actions]]
name = "remount-ro"
[[rule.actions]]
name = "command"
argv = ["/usr/bin/logger", "fs error"]
repeat = true
[[rule.actions]]
name = "command"
argv = ["/usr/bin/true"]
`)
	names := func(d Decision) []string {
		var out []string
		for _, a := range d.Actions {
			out = append(out, a.Name+":"+strings.Join(a.Argv, " "))
		}
		return out
	}
	all := []string{"remount-ro:", "command:/usr/bin/logger fs error", "command:/usr/bin/true"}
	steps := []struct {
		at   time.Duration
		ev   *event.Event
		want []string
	}{
		{0, ev(eio), all},
		{10 * sec, ev(eio), nil}, // once per incident; repeat waits a flood window
		{70 * sec, ev(eio), []string{"command:/usr/bin/logger fs error"}},  // repeat = true, a window later
		{80 * sec, ev(euclean), all},                                       // another incident
		{90 * sec, ev(eio, onFS("u9", "/dev/sdq", "ext4", "/other")), nil}, // no actions in the default rule
	}
	for i, s := range steps {
		if got := names(e.Evaluate(s.ev, at(s.at))); !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: actions %q, want %q", i, got, s.want)
		}
	}
	e.Resolve("u1", at(100*sec))
	if got := names(e.Evaluate(ev(eio), at(110*sec))); !reflect.DeepEqual(got, all) {
		t.Errorf("after Resolve: actions %q, want %q", got, all)
	}
}

func TestActionsWhenCountReached(t *testing.T) {
	e := engine(t, `
[actions]
dry_run = true
[[rule]]
name = "storm"
match = { count = 3, within = "1m" }
actions = ["remount-ro", "fsck-next-boot"]
`)
	var ran [][]string
	for i := range 5 {
		d := e.Evaluate(ev(eio), at(time.Duration(i)*sec))
		var names []string
		for _, a := range d.Actions {
			if !a.DryRun {
				t.Errorf("action %s is not a dry run", a.Name)
			}
			names = append(names, a.Name)
		}
		ran = append(ran, names)
	}
	want := [][]string{nil, nil, {"remount-ro", "fsck-next-boot"}, nil, nil}
	if !reflect.DeepEqual(ran, want) {
		t.Errorf("actions %q, want %q", ran, want)
	}
}

// TestEscalation: an event matching a rule of higher severity alerts at
// once, with what was folded, to the new rule's channels.
func TestEscalation(t *testing.T) {
	e := engine(t, `
[[webhook]]
name = "pager"
url = "http://pager"
[[rule]]
name = "storm"
severity = "critical"
channels = ["pager"]
match = { count = 5, within = "1m" }
[[rule]]
name = "rest"
severity = "warning"
channels = ["journal"]
`)
	d := e.Evaluate(ev(eio), t0)
	if len(d.Alerts) != 1 || d.Alerts[0].Severity != "warning" || !reflect.DeepEqual(e.Channels(&d.Alerts[0]), []string{"journal"}) {
		t.Fatalf("first: %+v", d)
	}
	for i := 1; i < 4; i++ {
		if d := e.Evaluate(ev(eio), at(time.Duration(i)*sec)); len(d.Alerts) != 0 {
			t.Fatalf("event %d alerted", i)
		}
	}
	d = e.Evaluate(ev(eio), at(4*sec))
	if len(d.Alerts) != 1 {
		t.Fatalf("escalation: %+v", d)
	}
	a := d.Alerts[0]
	if a.Type != alert.TypeError || a.Severity != "critical" || a.Rule != "storm" || a.Count != 4 || !a.Since.Equal(at(sec)) {
		t.Errorf("escalation alert %+v", a)
	}
	if want := "EIO on /dev/sda1 (/srv): now critical (rule storm): 4 errors since 2025-03-01T12:00:01Z, 5 errors in all"; a.Summary != want {
		t.Errorf("summary %q", a.Summary)
	}
	if got := e.Channels(&a); !reflect.DeepEqual(got, []string{"pager"}) {
		t.Errorf("channels %q", got)
	}
	// No de-escalation: a later warning-level event is folded, and the
	// digest stays critical.
	d = e.Evaluate(ev(eio), at(90*sec))
	if d.Rule != "rest" || len(d.Alerts) != 0 || !d.Folded || d.Incident.Severity != "critical" {
		t.Errorf("after escalation: %+v", d)
	}
	got := e.Tick(e.NextDeadline())
	if len(got) != 1 || got[0].Severity != "critical" || got[0].Rule != "storm" || got[0].Count != 1 {
		t.Errorf("digest %+v", got)
	}
}

func TestOverflow(t *testing.T) {
	e := engine(t, `
[[rule]]
name = "everything"
severity = "info"
channels = ["journal"]
actions = ["remount-ro"]
`)
	o := &event.Event{Kind: event.KindOverflow, Message: "lost\nevents"}
	var ids []string
	for i := range 3 {
		d := e.Evaluate(o, at(time.Duration(i)*sec))
		if len(d.Alerts) != 1 || d.Folded || len(d.Actions) != 0 || d.Severity != "critical" || d.Rule != "everything" {
			t.Fatalf("overflow %d: %+v", i, d)
		}
		a := d.Alerts[0]
		if a.Severity != "critical" || a.ErrorKind != KindOverflow || a.Count != 1 || a.Event == nil {
			t.Errorf("alert %+v", a)
		}
		ids = append(ids, a.ID)
		if d.Incident.Key() != "/overflow" || d.Incident.Events != uint64(i+1) {
			t.Errorf("incident %+v", d.Incident)
		}
	}
	if want := "event queue overflow: file system errors may have been lost (3 overflows since 2025-03-01T12:00:00Z)"; e.Incidents()[0].Seq != 3 {
		t.Errorf("seq %d", e.Incidents()[0].Seq)
	} else if s := overflowSummary(&e.Incidents()[0]); s != want {
		t.Errorf("summary %q", s)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
		t.Errorf("ids %q not unique", ids)
	}
	// Overflows neither fold nor schedule anything.
	if dl := e.NextDeadline(); !dl.IsZero() {
		t.Errorf("NextDeadline %v", dl)
	}
	// Errors keep their own incidents.
	if d := e.Evaluate(ev(eio), at(5*sec)); len(d.Alerts) != 1 || d.Alerts[0].Type != alert.TypeError {
		t.Errorf("error after overflow: %+v", d)
	}
}

// TestNothingDropped drives a random mix of events, ticks and resolutions
// and checks that the error and digest alerts account for every error.
func TestNothingDropped(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := engine(t, `
[[rule]]
name = "storm"
severity = "critical"
match = { count = 20, within = "30s" }
[[rule]]
name = "rest"
severity = "warning"
`)
	fss := []string{"a", "b", "c"}
	errnos := []int{eio, euclean, enospc}
	var total, reported uint64
	ids := make(map[string]bool)
	collect := func(as []alert.Alert) {
		for _, a := range as {
			if ids[a.ID] {
				t.Fatalf("duplicate alert id %s", a.ID)
			}
			ids[a.ID] = true
			if a.Type == alert.TypeError || a.Type == alert.TypeDigest {
				reported += a.Count
			}
		}
	}
	now := t0
	for range 20000 {
		now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		for dl := e.NextDeadline(); !dl.IsZero() && !dl.After(now); dl = e.NextDeadline() {
			collect(e.Tick(dl))
		}
		if rng.IntN(500) == 0 {
			collect(e.Resolve(fss[rng.IntN(len(fss))], now))
			continue
		}
		n := uint32(rng.IntN(4) + 1)
		fs := fss[rng.IntN(len(fss))]
		d := e.Evaluate(ev(errnos[rng.IntN(len(errnos))], onFS(fs, "/dev/"+fs, "ext4", "/"+fs), count(n)), now)
		total += uint64(n)
		collect(d.Alerts)
	}
	for _, fs := range fss {
		collect(e.Resolve(fs, now))
	}
	if reported != total {
		t.Errorf("alerts report %d errors, want %d", reported, total)
	}
}

func TestSummariesAreCleanOneLiners(t *testing.T) {
	e := engine(t, "")
	hostile := ev(eio, onFS("u", "/dev/sd\"a\nb", "ext4", "/mnt/$(reboot)\n\x1b[31mred", "/second"), func(e *event.Event) {
		e.ErrorText = "bad\r\nthing"
	})
	long := ev(enospc, onFS("v", "/dev/x", "ext4", "/"+strings.Repeat("ä", 5000)))
	var all []alert.Alert
	all = append(all, e.Evaluate(hostile, t0).Alerts...)
	e.Evaluate(hostile, at(sec))
	all = append(all, e.Evaluate(long, t0).Alerts...)
	all = append(all, e.Tick(at(hr))...)
	all = append(all, e.Resolve("u", at(2*hr))...)
	if len(all) < 4 {
		t.Fatalf("only %d alerts", len(all))
	}
	for _, a := range all {
		for _, r := range a.Summary {
			if unicode.IsControl(r) {
				t.Errorf("control character %q in summary %q", r, a.Summary)
			}
		}
		if n := len([]rune(a.Summary)); n > maxSummary {
			t.Errorf("summary of %d runes", n)
		}
	}
	if want := `EIO on "/dev/sd\"a\nb" ("/mnt/$(reboot)\n\x1b[31mred" and 1 more): bad\r\nthing`; all[0].Summary != want {
		t.Errorf("summary %s, want %s", all[0].Summary, want)
	}
	// The alert keeps the raw strings for the channels to escape.
	if all[0].Filesystem.Device != "/dev/sd\"a\nb" {
		t.Errorf("filesystem %+v", all[0].Filesystem)
	}
}

// TestCallerMayReuseEvents: the engine keeps copies, not the caller's event.
func TestCallerMayReuseEvents(t *testing.T) {
	e := engine(t, "")
	x := ev(eio)
	d := e.Evaluate(x, t0)
	x.Mountpoints[0] = "/changed"
	x.Device = "/dev/changed"
	if d.Alerts[0].Event.Mountpoints[0] != "/srv" || e.Incidents()[0].LastEvent.Mountpoints[0] != "/srv" {
		t.Error("the engine shares the caller's event")
	}
}

func TestReconfigure(t *testing.T) {
	e := engine(t, "[[rule]]\nname = \"storm\"\nmatch = { count = 3, within = \"1m\" }\n")
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio), at(sec))
	c, err := config.Parse("new.toml", []byte("[[rule]]\nname = \"storm\"\nmatch = { count = 3, within = \"1m\" }\n[[rule]]\nname = \"x\"\nmatch = {fstype = \"xfs\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.Reconfigure(c.Rules, flood, Options{Host: "host1", Channels: c.ChannelNames()})
	d := e.Evaluate(ev(eio), at(2*sec))
	if d.Rule != "storm" || len(d.Alerts) != 0 || d.Incident.Events != 3 {
		t.Errorf("after Reconfigure: %+v", d)
	}
	// A changed rule starts counting afresh.
	c, _ = config.Parse("new.toml", []byte("[[rule]]\nname = \"storm\"\nmatch = { count = 3, within = \"2m\" }\n"))
	e.Reconfigure(c.Rules, flood, Options{})
	if d := e.Evaluate(ev(eio), at(3*sec)); d.Rule != "default" {
		t.Errorf("changed rule kept its counts: %+v", d.Rule)
	}
}

func TestFSKeyAndKind(t *testing.T) {
	tests := []struct {
		ev       event.Event
		key, knd string
	}{
		{event.Event{UUID: "u", Device: "/dev/a", Error: "EIO"}, "u", "EIO"},
		{event.Event{Device: "/dev/a", Errno: 117}, "/dev/a", "EUCLEAN"},
		{event.Event{FSID: "1:2", Errno: 4000}, "fsid:1:2", "E4000"},
		{event.Event{Kind: event.KindOverflow}, "", KindOverflow},
	}
	for _, tt := range tests {
		if k, kind := FSKey(&tt.ev), ErrorKind(&tt.ev); k != tt.key || kind != tt.knd {
			t.Errorf("%+v: key %q kind %q", tt.ev, k, kind)
		}
	}
}

// TestChanged: every change is reported once, a resolved incident before
// the incident that succeeds it under the same key.
func TestChanged(t *testing.T) {
	e := engine(t, "")
	e.Evaluate(ev(eio), t0)
	e.Evaluate(ev(eio, onFS("u2", "/dev/sdb", "ext4", "/b")), t0)
	if got := e.Changed(); len(got) != 2 || got[0].FSKey != "u1" || got[1].FSKey != "u2" {
		t.Fatalf("Changed() = %+v", got)
	}
	if got := e.Changed(); len(got) != 0 {
		t.Errorf("Changed() again = %+v", got)
	}
	e.Resolve("u1", at(sec))
	e.Evaluate(ev(eio), at(2*sec))
	got := e.Changed()
	if len(got) != 2 || got[0].Key() != "u1/EIO" || got[1].Key() != "u1/EIO" ||
		got[0].Resolved.IsZero() || !got[1].Resolved.IsZero() || got[0].ID == got[1].ID {
		t.Errorf("Changed() = %+v", got)
	}
	// A quiet window closing is a change too (nothing to alert): both
	// incidents' windows have closed by now.
	if a := e.Tick(at(2*sec + minute)); len(a) != 0 {
		t.Errorf("Tick = %+v", a)
	}
	if got := e.Changed(); len(got) != 2 || !got[0].WindowEnd.IsZero() || !got[1].WindowEnd.IsZero() {
		t.Errorf("Changed() after a quiet window = %+v", got)
	}
}

func TestIDsUniqueWhenReopenedAtOnce(t *testing.T) {
	e := engine(t, "")
	a := e.Evaluate(ev(eio), t0).Alerts[0]
	r := e.Resolve("u1", t0)
	b := e.Evaluate(ev(eio), t0).Alerts[0]
	if a.ID == b.ID || r[0].ID == b.ID {
		t.Errorf("ids %s %s %s", a.ID, r[0].ID, b.ID)
	}
}

// TestKernelLogAloneRunsNoAction: an error only the kernel log reports,
// with nothing corroborating it, alerts but runs no recovery action — the
// actions are withheld and stay due — unless the rule sets
// act_on_kernel_log; a corroborated one, or any other source, runs them.
func TestKernelLogAloneRunsNoAction(t *testing.T) {
	const rules = `
[[rule]]
name = "srv"
match = { mountpoint = ["/srv"] }
%s
[[rule.actions]]
name = "remount-ro"
`
	kmsgOnly := func(e *event.Event) { e.Source = event.SourceKmsg }
	corroborated := func(e *event.Event) { e.Source, e.CorroboratedBy = event.SourceKmsg, event.CorroboratedXFSShutdown }
	e := engine(t, strings.Replace(rules, "%s", "", 1))
	d := e.Evaluate(ev(eio, kmsgOnly), at(0))
	if len(d.Actions) != 0 || len(d.Withheld) != 1 || d.Withheld[0].Name != "remount-ro" {
		t.Errorf("uncorroborated kernel-log event: actions %v, withheld %v; want none run, remount-ro withheld", d.Actions, d.Withheld)
	}
	if len(d.Alerts) != 1 {
		t.Errorf("uncorroborated kernel-log event: %d alerts, want 1", len(d.Alerts))
	}
	// The action stays due: the incident's next, corroborated event runs it.
	d = e.Evaluate(ev(eio, corroborated), at(10*sec))
	if len(d.Actions) != 1 || len(d.Withheld) != 0 {
		t.Errorf("corroborated event after a withheld action: actions %v, withheld %v; want remount-ro run", d.Actions, d.Withheld)
	}
	d = e.Evaluate(ev(eio, kmsgOnly), at(20*sec))
	if len(d.Actions) != 0 || len(d.Withheld) != 0 {
		t.Errorf("after the action ran: actions %v, withheld %v; want neither", d.Actions, d.Withheld)
	}
	// FAN_FS_ERROR (and the btrfs counters) need no corroboration.
	e = engine(t, strings.Replace(rules, "%s", "", 1))
	for _, src := range []string{event.SourceFanotify, event.SourceBtrfs, event.SourceRecorded} {
		d = e.Evaluate(ev(euclean, func(e *event.Event) { e.Source = src }), at(30*sec))
		e.Resolve("u1", at(31*sec))
		if len(d.Actions) != 1 {
			t.Errorf("source %s: actions %v, want remount-ro", src, d.Actions)
		}
	}
	// The rule may opt in.
	e = engine(t, strings.Replace(rules, "%s", "act_on_kernel_log = true", 1))
	if d := e.Evaluate(ev(eio, kmsgOnly), at(0)); len(d.Actions) != 1 || len(d.Withheld) != 0 {
		t.Errorf("act_on_kernel_log: actions %v, withheld %v; want remount-ro run", d.Actions, d.Withheld)
	}
}
