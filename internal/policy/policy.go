// Package policy decides what fshealth does about each event: which rule
// matches it (severity, channels, recovery actions), which incident it
// belongs to, and — anti-flood — whether it is alerted now or folded into a
// digest. It is pure logic: no I/O, no goroutines, no clock of its own (every
// call takes the time). An Engine is not safe for concurrent use.
//
// An incident is a file system and an error kind (errno name). Its first
// event alerts at once. Further events are folded: counted, and reported by
// one digest when the flood window closes ("N more errors since T"). During a
// storm that outlasts the window, windows double (up to the maximum reminder
// interval), so digests thin out. While the incident stays open, reminders
// follow at growing intervals. Nothing is dropped: every event is counted in
// its incident, and every folded error is reported by a digest (or by the
// digest Resolve sends before the resolution).
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
)

// KindOverflow is the error kind of the incident that gathers event queue
// overflows.
const KindOverflow = "overflow"

// Options are the Engine's settings beyond the rules and anti-flood.
type Options struct {
	// Host is the host name alerts carry.
	Host string
	// Channels are the names of every configured channel: what a rule's
	// config.AllChannels stands for.
	Channels []string
}

// Decision is what the policy decided about one event.
type Decision struct {
	// Rule is the name of the rule the event matched.
	Rule string
	// Severity is the matched rule's severity.
	Severity string
	// Channels are the matched rule's channels, "all" expanded. Alerts go
	// to the channels of their own rule: use Engine.Channels.
	Channels []string
	// Actions are the recovery actions to run now (each action runs once
	// per incident unless its rule says repeat).
	Actions []config.Action
	// Withheld are the recovery actions the rule would have run now, not
	// run because only the kernel log reports the error and nothing
	// corroborates it (event.Event.CorroboratedBy) while the rule does not
	// set ActOnKernelLog. They stay due for the incident's next event.
	Withheld []config.Action
	// Alerts are the alerts to send now: the first alert of a new incident
	// or an escalation, and a digest or reminder that was due. Empty when
	// the event was folded.
	Alerts []alert.Alert
	// Folded says the event will be reported by a coming digest rather
	// than an alert of its own.
	Folded bool
	// Incident is the event's incident after the event: persist it.
	Incident IncidentState
}

// IncidentState is an incident's persistent state: what the daemon stores
// after every change and gives back to Restore after a restart.
type IncidentState struct {
	// ID identifies the incident; alert ids are ID + "-" + sequence.
	ID string `json:"id"`
	// FSKey is the file system's key (see FSKey); empty for overflows.
	FSKey string `json:"fs_key"`
	// ErrorKind is the errno name, or KindOverflow.
	ErrorKind string `json:"error_kind"`
	// Rule and Severity are those of the incident's alerts: the rule that
	// opened it, or the one that last raised its severity.
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	// Filesystem is the file system, as of the latest event.
	Filesystem alert.Filesystem `json:"filesystem"`
	// Opened is when the incident began.
	Opened time.Time `json:"opened"`
	// LastEventTime is when its latest event was evaluated.
	LastEventTime time.Time `json:"last_event_time"`
	// LastEvent is its latest event, for digests.
	LastEvent *event.Event `json:"last_event,omitempty"`
	// Events and Errors count its events and errors (the sum of their
	// error counts).
	Events uint64 `json:"events"`
	Errors uint64 `json:"errors"`
	// Seq is the number of alerts raised for the incident.
	Seq uint64 `json:"seq"`
	// LastAlert is when the latest alert was raised.
	LastAlert time.Time `json:"last_alert"`
	// Folded counts the errors held back since FoldedSince, for the next
	// digest.
	Folded      uint64    `json:"folded"`
	FoldedSince time.Time `json:"folded_since,omitzero"`
	// WindowEnd is when the current flood window closes (zero: no window
	// open); Window is its length.
	WindowEnd time.Time     `json:"window_end,omitzero"`
	Window    time.Duration `json:"window"`
	// NextReminder is when the next reminder is due (zero: none);
	// ReminderInterval is the interval that led to it.
	NextReminder     time.Time     `json:"next_reminder,omitzero"`
	ReminderInterval time.Duration `json:"reminder_interval"`
	// RemindersSent counts the reminders raised.
	RemindersSent uint64 `json:"reminders_sent"`
	// Actions maps the key of each action decided for the incident (see
	// config.Action.Key) to when it last was.
	Actions map[string]time.Time `json:"actions,omitempty"`
	// Resolved is when the incident was resolved; zero while open.
	Resolved time.Time `json:"resolved,omitzero"`
	// Top counts the code locations and files of its errors, for its
	// digests, reminders and resolution.
	Top *Top `json:"top,omitempty"`
}

// Key returns the incident's key, FSKey + "/" + ErrorKind (as
// IncidentKey).
func (s *IncidentState) Key() string { return IncidentKey(s.FSKey, s.ErrorKind) }

// IncidentKey returns the key of the incident about errorKind on the file
// system fsKey.
func IncidentKey(fsKey, errorKind string) string { return fsKey + "/" + errorKind }

// FSKey returns the key an event's file system is known by: its UUID, else
// its device, else "fsid:" and its fsid.
func FSKey(ev *event.Event) string { return ev.FSKey() }

// ErrorKind returns the error kind of an event's incident: its errno name,
// or KindOverflow.
func ErrorKind(ev *event.Event) string {
	if ev.Kind == event.KindOverflow {
		return KindOverflow
	}
	if ev.Kind == event.KindRedundancy {
		return KindRedundancy
	}
	if ev.Error != "" {
		return ev.Error
	}
	return event.ErrnoName(ev.Errno)
}

// Engine applies the rules and keeps the incidents.
type Engine struct {
	rules     []rule
	flood     config.Flood
	opt       Options
	incidents map[string]*IncidentState
	windows   map[windowKey]*countWindow
	// changed holds the incidents changed since Changed was last
	// called, by id (a resolved incident and its successor share a key).
	changed map[string]*IncidentState
	// lastID is the id of the latest incident opened under each key.
	lastID map[string]string
}

type windowKey struct{ rule, fs string }

// New returns an engine applying rules in order; if the last rule has
// match conditions, an implicit default rule (critical, all channels, no
// actions) is added after it.
func New(rules []config.Rule, flood config.Flood, opt Options) *Engine {
	e := &Engine{
		incidents: make(map[string]*IncidentState),
		windows:   make(map[windowKey]*countWindow),
		changed:   make(map[string]*IncidentState),
		lastID:    make(map[string]string),
	}
	e.configure(rules, flood, opt)
	return e
}

// FromConfig returns an engine for c's rules, anti-flood settings, host
// name and channels.
func FromConfig(c *config.Config) *Engine {
	return New(c.Rules, c.Flood, Options{Host: c.Host(), Channels: c.ChannelNames()})
}

// Reconfigure replaces the rules and settings (after a configuration
// reload) and keeps the incidents, and the error counts of count rules whose
// name and conditions did not change.
func (e *Engine) Reconfigure(rules []config.Rule, flood config.Flood, opt Options) {
	old := make(map[string]config.Match)
	for _, r := range e.rules {
		old[r.cfg.Name] = r.cfg.Match
	}
	e.configure(rules, flood, opt)
	keep := make(map[string]bool)
	for _, r := range e.rules {
		if m, ok := old[r.cfg.Name]; ok && matchEqual(m, r.cfg.Match) {
			keep[r.cfg.Name] = true
		}
	}
	for k := range e.windows {
		if !keep[k.rule] {
			delete(e.windows, k)
		}
	}
}

func (e *Engine) configure(rules []config.Rule, flood config.Flood, opt Options) {
	e.flood = flood
	e.opt = opt
	e.rules = e.rules[:0]
	for _, r := range rules {
		e.rules = append(e.rules, compile(r, opt.Channels))
	}
	if len(e.rules) == 0 || !e.rules[len(e.rules)-1].cfg.Match.IsEmpty() {
		e.rules = append(e.rules, compile(config.Rule{
			Name:     config.DefaultRuleName,
			Severity: alert.SeverityCritical,
			Channels: []string{config.AllChannels},
			Implicit: true,
		}, opt.Channels))
	}
}

// catchAll is the last rule, which matches every event.
func (e *Engine) catchAll() *rule { return &e.rules[len(e.rules)-1] }

// Channels returns the channels an alert goes to: those of its rule, or of
// the last (catch-all) rule if no rule has that name any more.
func (e *Engine) Channels(a *alert.Alert) []string {
	for i := range e.rules {
		if e.rules[i].cfg.Name == a.Rule {
			return slices.Clone(e.rules[i].channels)
		}
	}
	return slices.Clone(e.catchAll().channels)
}

// Evaluate applies the policy to ev, which happened at now. It settles what
// was due for ev's incident first (a digest or reminder the daemon's timer
// has not fired yet), so Decision.Alerts may hold those too.
func (e *Engine) Evaluate(ev *event.Event, now time.Time) Decision {
	if ev.Kind == event.KindOverflow {
		return e.overflow(ev, now)
	}
	if restoredRedundancy(ev) {
		return e.restored(ev, now)
	}
	fsKey := FSKey(ev)
	n := uint64(ev.ErrorCount)
	if n == 0 {
		n = 1
	}
	r := e.match(ev, fsKey, n, now)
	d := Decision{Rule: r.cfg.Name, Severity: r.cfg.Severity, Channels: slices.Clone(r.channels)}

	key := IncidentKey(fsKey, ErrorKind(ev))
	inc := e.incidents[key]
	if inc == nil {
		inc = e.open(fsKey, ErrorKind(ev), r, ev, now)
		inc.Events, inc.Errors = 1, n
		inc.Top = &Top{}
		inc.Top.count(ev, n, now)
		d.Alerts = append(d.Alerts, e.raise(inc, alert.TypeError, now, n, now, inc.LastEvent, errorSummary(inc, ev, n)))
		e.openWindow(inc, now)
		if e.flood.ReminderInitial > 0 {
			inc.ReminderInterval = e.flood.ReminderInitial
			inc.NextReminder = now.Add(e.flood.ReminderInitial)
		}
	} else {
		due, _ := e.due(inc, now)
		d.Alerts = append(d.Alerts, due...)
		inc.Events++
		inc.Errors += n
		if inc.Top == nil {
			inc.Top = &Top{} // an incident persisted before there were tops
		}
		inc.Top.count(ev, n, now)
		inc.LastEvent = cloneEvent(ev)
		inc.LastEventTime = now
		inc.Filesystem = filesystem(ev)
		switch {
		case r.rank > rank(inc.Severity):
			// Escalation: the new severity (and the new rule's
			// channels) hear of it now, with what was folded.
			count, since := n+inc.Folded, now
			if inc.Folded > 0 {
				since = inc.FoldedSince
			}
			inc.Rule, inc.Severity = r.cfg.Name, r.cfg.Severity
			inc.Folded, inc.FoldedSince = 0, time.Time{}
			d.Alerts = append(d.Alerts, e.raise(inc, alert.TypeError, now, count, since, inc.LastEvent, escalationSummary(inc, count, since)))
			e.openWindow(inc, now)
		case e.flood.Window <= 0:
			d.Alerts = append(d.Alerts, e.raise(inc, alert.TypeError, now, n, now, inc.LastEvent, errorSummary(inc, ev, n)))
		default:
			if inc.WindowEnd.IsZero() {
				e.openWindow(inc, now)
			}
			if inc.Folded == 0 {
				inc.FoldedSince = now
			}
			inc.Folded += n
			d.Folded = true
		}
	}
	switch {
	case ev.Kind == event.KindRedundancy:
		// The file system is intact: recovery actions are for its
		// errors, not for a lost copy below it.
	case trustedEvidence(ev) || r.cfg.ActOnKernelLog:
		d.Actions = e.actions(inc, r, now)
	default:
		d.Withheld = e.dueActions(inc, r, now)
	}
	e.changed[inc.ID] = inc
	d.Incident = inc.clone()
	return d
}

// overflow handles an event queue overflow: it always alerts, as critical,
// through the catch-all rule's channels, in an incident of its own.
func (e *Engine) overflow(ev *event.Event, now time.Time) Decision {
	r := e.catchAll()
	key := IncidentKey("", KindOverflow)
	inc := e.incidents[key]
	if inc == nil {
		inc = e.open("", KindOverflow, r, ev, now)
		inc.Severity = alert.SeverityCritical
	} else {
		inc.LastEvent = cloneEvent(ev)
		inc.LastEventTime = now
		inc.Rule = r.cfg.Name
	}
	inc.Events++
	d := Decision{Rule: r.cfg.Name, Severity: alert.SeverityCritical, Channels: slices.Clone(r.channels)}
	d.Alerts = []alert.Alert{e.raise(inc, alert.TypeError, now, 1, now, inc.LastEvent, overflowSummary(inc))}
	e.changed[inc.ID] = inc
	d.Incident = inc.clone()
	return d
}

// open creates and registers an incident.
func (e *Engine) open(fsKey, kind string, r *rule, ev *event.Event, now time.Time) *IncidentState {
	id := incidentID(e.opt.Host, fsKey, kind, now, "")
	if id == e.lastID[IncidentKey(fsKey, kind)] {
		// Resolved and reopened within one clock tick: keep ids unique.
		id = incidentID(e.opt.Host, fsKey, kind, now, id)
	}
	e.lastID[IncidentKey(fsKey, kind)] = id
	inc := &IncidentState{
		ID:            id,
		FSKey:         fsKey,
		ErrorKind:     kind,
		Rule:          r.cfg.Name,
		Severity:      r.cfg.Severity,
		Filesystem:    filesystem(ev),
		Opened:        now,
		LastEventTime: now,
		LastEvent:     cloneEvent(ev),
	}
	e.incidents[inc.Key()] = inc
	return inc
}

// openWindow starts a flood window of the base length at now.
func (e *Engine) openWindow(inc *IncidentState, now time.Time) {
	if e.flood.Window <= 0 {
		inc.Window, inc.WindowEnd = 0, time.Time{}
		return
	}
	inc.Window = e.flood.Window
	inc.WindowEnd = now.Add(inc.Window)
}

// due raises the digest and reminder of inc that are due at now, and
// schedules the next ones. It reports whether inc changed.
func (e *Engine) due(inc *IncidentState, now time.Time) (out []alert.Alert, changed bool) {
	if !inc.WindowEnd.IsZero() && !now.Before(inc.WindowEnd) {
		changed = true
		if inc.Folded > 0 {
			out = append(out, e.raise(inc, alert.TypeDigest, now, inc.Folded, inc.FoldedSince, inc.LastEvent, digestSummary(inc)))
			inc.Folded, inc.FoldedSince = 0, time.Time{}
			// The storm went on for the whole window: the next window
			// is twice as long, up to the longest reminder interval.
			next := min(2*inc.Window, max(e.flood.ReminderMax, e.flood.Window))
			if next <= 0 {
				next = e.flood.Window
			}
			if next <= 0 {
				inc.Window, inc.WindowEnd = 0, time.Time{}
			} else {
				inc.Window, inc.WindowEnd = next, now.Add(next)
			}
		} else {
			// A quiet window: the next event opens a base-length one.
			inc.Window, inc.WindowEnd = 0, time.Time{}
		}
	}
	if !inc.NextReminder.IsZero() && !now.Before(inc.NextReminder) {
		changed = true
		out = append(out, e.raise(inc, alert.TypeReminder, now, inc.Errors, inc.Opened, inc.LastEvent, reminderSummary(inc)))
		inc.RemindersSent++
		interval := inc.ReminderInterval * 2
		if e.flood.ReminderMax > 0 && interval > e.flood.ReminderMax {
			interval = e.flood.ReminderMax
		}
		if interval <= 0 {
			inc.NextReminder, inc.ReminderInterval = time.Time{}, 0
		} else {
			next := inc.NextReminder.Add(interval)
			if !next.After(now) {
				// Far behind (the daemon was down): one reminder now,
				// the next a full interval later.
				next = now.Add(interval)
			}
			inc.NextReminder, inc.ReminderInterval = next, interval
		}
	}
	return out, changed
}

// Tick raises the digests and reminders due at now. The daemon calls it
// when the time NextDeadline returned has come.
func (e *Engine) Tick(now time.Time) []alert.Alert {
	var out []alert.Alert
	for _, key := range e.keys() {
		inc := e.incidents[key]
		if a, changed := e.due(inc, now); changed {
			out = append(out, a...)
			e.changed[inc.ID] = inc
		}
	}
	e.sweepWindows(now)
	return out
}

// NextDeadline returns when Tick next has something to do; the zero time
// if nothing is scheduled.
func (e *Engine) NextDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, inc := range e.incidents {
		consider(inc.WindowEnd)
		consider(inc.NextReminder)
	}
	return next
}

// Resolve ends the incidents of the file system fsKey at now: for each, a
// digest of what is still folded, then a resolved alert.
func (e *Engine) Resolve(fsKey string, now time.Time) []alert.Alert {
	var out []alert.Alert
	for _, key := range e.keys() {
		inc := e.incidents[key]
		if inc.FSKey != fsKey {
			continue
		}
		out = append(out, e.resolve(key, inc, now)...)
	}
	for k := range e.windows {
		if k.fs == fsKey {
			delete(e.windows, k)
		}
	}
	return out
}

// resolve closes the open incident inc (its key key): a digest of what is
// still folded, then a resolved alert, which it returns.
func (e *Engine) resolve(key string, inc *IncidentState, now time.Time) []alert.Alert {
	var out []alert.Alert
	if inc.Folded > 0 {
		out = append(out, e.raise(inc, alert.TypeDigest, now, inc.Folded, inc.FoldedSince, inc.LastEvent, digestSummary(inc)))
		inc.Folded, inc.FoldedSince = 0, time.Time{}
	}
	out = append(out, e.raise(inc, alert.TypeResolved, now, inc.Errors, inc.Opened, inc.LastEvent, resolvedSummary(inc)))
	inc.Resolved = now
	inc.WindowEnd, inc.Window = time.Time{}, 0
	inc.NextReminder = time.Time{}
	delete(e.incidents, key)
	e.changed[inc.ID] = inc
	return out
}

// Restore reloads incidents persisted before a restart. Their schedules
// continue: nothing is re-alerted, folded errors are reported by the coming
// digest, and a reminder or digest that fell due while the daemon was down
// is raised by the next Tick. Resolved incidents are ignored.
func (e *Engine) Restore(incidents []IncidentState) {
	for i := range incidents {
		if !incidents[i].Resolved.IsZero() {
			continue
		}
		inc := incidents[i].clone()
		e.incidents[inc.Key()] = &inc
	}
}

// Incidents returns the open incidents, ordered by key.
func (e *Engine) Incidents() []IncidentState {
	out := make([]IncidentState, 0, len(e.incidents))
	for _, k := range e.keys() {
		out = append(out, e.incidents[k].clone())
	}
	return out
}

// Changed returns the incidents changed (by Evaluate, Tick or Resolve)
// since the previous call, ordered by key and, for one key, by opening time
// (a resolved incident comes before its successor), and forgets them.
// Resolved incidents are among them with Resolved set, once. The daemon
// persists them together with the alerts that changed them.
func (e *Engine) Changed() []IncidentState {
	out := make([]IncidentState, 0, len(e.changed))
	for _, inc := range e.changed {
		out = append(out, inc.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if ki, kj := out[i].Key(), out[j].Key(); ki != kj {
			return ki < kj
		}
		return out[i].Opened.Before(out[j].Opened)
	})
	clear(e.changed)
	return out
}

func (e *Engine) keys() []string {
	keys := make([]string, 0, len(e.incidents))
	for k := range e.incidents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// raise makes the incident's next alert.
func (e *Engine) raise(inc *IncidentState, typ string, now time.Time, count uint64, since time.Time, ev *event.Event, summary string) alert.Alert {
	inc.Seq++
	inc.LastAlert = now
	var locs []alert.Tally
	var files []alert.DamagedFile
	switch typ {
	case alert.TypeDigest, alert.TypeReminder, alert.TypeResolved:
		locs, files = inc.Top.top()
	}
	return alert.Alert{
		TopLocations: locs,
		DamagedFiles: files,
		ID:           inc.ID + "-" + strconv.FormatUint(inc.Seq, 10),
		Type:         typ,
		Severity:     inc.Severity,
		Rule:         inc.Rule,
		Host:         e.opt.Host,
		Time:         now,
		Summary:      summary,
		Filesystem:   cloneFS(inc.Filesystem),
		ErrorKind:    inc.ErrorKind,
		Count:        count,
		Since:        since,
		Event:        cloneEvent(ev),
	}
}

// trustedEvidence reports whether ev may set off recovery actions on its
// own: every source but the kernel log is structured data no user can
// write, and a kernel-log event counts once something else corroborates it.
func trustedEvidence(ev *event.Event) bool {
	return ev.Source != event.SourceKmsg || ev.CorroboratedBy != ""
}

// dueActions returns r's actions that would run now for inc, without
// recording them.
func (e *Engine) dueActions(inc *IncidentState, r *rule, now time.Time) []config.Action {
	var out []config.Action
	for _, a := range r.cfg.Actions {
		last, ran := inc.Actions[a.Key()]
		if ran && (!a.Repeat || e.flood.Window > 0 && now.Sub(last) < e.flood.Window) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// actions returns r's actions to run now for inc and records them.
func (e *Engine) actions(inc *IncidentState, r *rule, now time.Time) []config.Action {
	var out []config.Action
	for _, a := range e.dueActions(inc, r, now) {
		k := a.Key()
		if inc.Actions == nil {
			inc.Actions = make(map[string]time.Time)
		}
		inc.Actions[k] = now
		a.Argv = slices.Clone(a.Argv)
		out = append(out, a)
	}
	return out
}

// incidentID derives an incident's id from what identifies it, so that it
// is the same whenever it is computed and differs between hosts and
// between successive incidents of one file system and error kind.
func incidentID(host, fsKey, kind string, opened time.Time, salt string) string {
	h := sha256.New()
	for _, s := range []string{host, fsKey, kind, strconv.FormatInt(opened.UnixNano(), 10), salt} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:10])
}

func (s *IncidentState) clone() IncidentState {
	c := *s
	c.Filesystem = cloneFS(s.Filesystem)
	c.LastEvent = cloneEvent(s.LastEvent)
	c.Top = s.Top.clone()
	if s.Actions != nil {
		c.Actions = make(map[string]time.Time, len(s.Actions))
		for k, v := range s.Actions {
			c.Actions[k] = v
		}
	}
	return c
}

func filesystem(ev *event.Event) alert.Filesystem {
	mp := slices.Clone(ev.Mountpoints)
	if mp == nil {
		mp = []string{}
	}
	return alert.Filesystem{UUID: ev.UUID, Device: ev.Device, FSType: ev.FSType, Mountpoints: mp, Label: ev.Label}
}

func cloneFS(f alert.Filesystem) alert.Filesystem {
	f.Mountpoints = slices.Clone(f.Mountpoints)
	if f.Mountpoints == nil {
		f.Mountpoints = []string{}
	}
	return f
}

// cloneEvent copies ev deeply enough that the caller may reuse ev.
func cloneEvent(ev *event.Event) *event.Event {
	if ev == nil {
		return nil
	}
	c := *ev
	c.Mountpoints = slices.Clone(ev.Mountpoints)
	if ev.Inode != nil {
		v := *ev.Inode
		c.Inode = &v
	}
	if ev.Generation != nil {
		v := *ev.Generation
		c.Generation = &v
	}
	if ev.Handle != nil {
		v := *ev.Handle
		c.Handle = &v
	}
	if ev.Ext4 != nil {
		s := *ev.Ext4
		if s.FirstError != nil {
			v := *s.FirstError
			s.FirstError = &v
		}
		if s.LastError != nil {
			v := *s.LastError
			s.LastError = &v
		}
		c.Ext4 = &s
	}
	return &c
}
