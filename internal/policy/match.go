package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
)

// rule is a config.Rule prepared for matching.
type rule struct {
	cfg      config.Rule
	channels []string // "all" expanded
	uuid     []string // lower case
	rank     int
}

func compile(r config.Rule, all []string) rule {
	c := rule{cfg: r, rank: rank(r.Severity)}
	c.cfg.Actions = slices.Clone(r.Actions)
	if slices.Contains(r.Channels, config.AllChannels) {
		c.channels = slices.Clone(all)
	} else {
		for _, ch := range r.Channels {
			if !slices.Contains(c.channels, ch) {
				c.channels = append(c.channels, ch)
			}
		}
	}
	for _, u := range r.Match.UUID {
		c.uuid = append(c.uuid, strings.ToLower(u))
	}
	return c
}

// rank orders severities: critical > warning > info > anything else.
func rank(severity string) int {
	switch severity {
	case "critical":
		return 3
	case "warning":
		return 2
	case "info":
		return 1
	}
	return 0
}

// static reports whether ev meets r's conditions other than the count.
func (r *rule) static(ev *event.Event) bool {
	m := &r.cfg.Match
	if len(m.Errno) > 0 && !slices.Contains(m.Errno, ev.Errno) {
		return false
	}
	if len(m.Mountpoint) > 0 && !slices.ContainsFunc(ev.Mountpoints, func(mp string) bool { return anyGlob(m.Mountpoint, mp) }) {
		return false
	}
	if len(r.uuid) > 0 && (ev.UUID == "" || !anyGlob(r.uuid, strings.ToLower(ev.UUID))) {
		return false
	}
	if len(m.Device) > 0 && (ev.Device == "" || !anyGlob(m.Device, ev.Device)) {
		return false
	}
	if len(m.FSType) > 0 && (ev.FSType == "" || !anyGlob(m.FSType, ev.FSType)) {
		return false
	}
	return true
}

// anyGlob reports whether s matches any of patterns (filepath.Match; bad
// patterns, which config refuses, match nothing).
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, s); ok {
			return true
		}
	}
	return false
}

// match returns the first rule ev matches. Every count rule whose other
// conditions ev meets counts ev, whether or not an earlier rule matched, so
// that counts do not depend on rule order.
func (e *Engine) match(ev *event.Event, fsKey string, n uint64, now time.Time) *rule {
	var first *rule
	for i := range e.rules {
		r := &e.rules[i]
		m := &r.cfg.Match
		if first != nil && m.Count == 0 {
			continue
		}
		if !r.static(ev) {
			continue
		}
		ok := true
		if m.Count > 0 {
			k := windowKey{r.cfg.Name, fsKey}
			w := e.windows[k]
			if w == nil {
				w = &countWindow{}
				e.windows[k] = w
			}
			w.add(now, n, m.Within)
			ok = w.sum >= m.Count
		}
		if ok && first == nil {
			first = r
		}
	}
	if first == nil {
		first = e.catchAll()
	}
	return first
}

// sweepWindows forgets counts that have all expired.
func (e *Engine) sweepWindows(now time.Time) {
	within := make(map[string]time.Duration, len(e.rules))
	for _, r := range e.rules {
		within[r.cfg.Name] = r.cfg.Match.Within
	}
	for k, w := range e.windows {
		if w.expire(now, within[k.rule]); w.sum == 0 {
			delete(e.windows, k)
		}
	}
}

// maxWindowEntries bounds a count window's memory; beyond it, neighbouring
// entries are merged (keeping the later time, so errors are counted a
// little longer, never shorter, than the window).
const maxWindowEntries = 1024

// countWindow is a sliding window of error counts: an error at time t
// counts until now - t exceeds the window.
type countWindow struct {
	entries []countEntry // oldest first, from head
	head    int
	sum     uint64
}

type countEntry struct {
	t time.Time
	n uint64
}

func (w *countWindow) expire(now time.Time, within time.Duration) {
	for w.head < len(w.entries) && now.Sub(w.entries[w.head].t) > within {
		w.sum -= w.entries[w.head].n
		w.head++
	}
	if w.head == len(w.entries) {
		w.entries, w.head = w.entries[:0], 0
	} else if w.head > len(w.entries)/2 {
		w.entries = append(w.entries[:0], w.entries[w.head:]...)
		w.head = 0
	}
}

func (w *countWindow) add(now time.Time, n uint64, within time.Duration) {
	w.expire(now, within)
	if l := len(w.entries); l > w.head && !now.After(w.entries[l-1].t) {
		// Same (or, with a clock step back, earlier) time: add to the
		// newest entry.
		w.entries[l-1].n += n
	} else {
		w.entries = append(w.entries, countEntry{now, n})
	}
	w.sum += n
	if len(w.entries)-w.head > maxWindowEntries {
		live := w.entries[w.head:]
		merged := w.entries[:0]
		for i := 0; i < len(live); i += 2 {
			c := live[i]
			if i+1 < len(live) {
				c = countEntry{live[i+1].t, c.n + live[i+1].n}
			}
			merged = append(merged, c)
		}
		w.entries, w.head = merged, 0
	}
}

// matchEqual reports whether two rules' conditions are the same.
func matchEqual(a, b config.Match) bool {
	return slices.Equal(a.Mountpoint, b.Mountpoint) && slices.Equal(a.UUID, b.UUID) &&
		slices.Equal(a.Device, b.Device) && slices.Equal(a.FSType, b.FSType) &&
		slices.Equal(a.Errno, b.Errno) && a.Count == b.Count && a.Within == b.Within
}
