package policy

import (
	"slices"
	"sort"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/errsite"
	"github.com/fshealth/fshealth/internal/event"
)

// maxTracked bounds how many code locations and files an incident counts.
// Up to that many distinct ones the counts are exact; past it, a new one
// takes the place of the one with the fewest errors (so a storm over many
// files keeps the most frequent ones, approximately).
const maxTracked = 32

// Top is what an incident's errors were about: the kernel code locations
// that reported them and the files they were about, with their errors,
// for its digests, reminders and resolution.
type Top struct {
	Locations []alert.Tally       `json:"locations,omitempty"`
	Files     []alert.DamagedFile `json:"files,omitempty"`
}

// count adds the n errors of ev, received at now.
func (t *Top) count(ev *event.Event, n uint64, now time.Time) {
	if loc := errsite.Of(ev).Location; loc != "" {
		i := slices.IndexFunc(t.Locations, func(x alert.Tally) bool { return x.Value == loc })
		if i < 0 {
			i = room(len(t.Locations), func(j int) uint64 { return t.Locations[j].Errors })
			if i == len(t.Locations) {
				t.Locations = append(t.Locations, alert.Tally{})
			}
			t.Locations[i] = alert.Tally{Value: loc}
		}
		t.Locations[i].Errors += n
		t.Locations[i].Last = now
	}
	if ev.Inode != nil {
		same := func(f alert.DamagedFile) bool {
			return f.Inode == *ev.Inode && (f.Generation == nil) == (ev.Generation == nil) &&
				(f.Generation == nil || *f.Generation == *ev.Generation)
		}
		i := slices.IndexFunc(t.Files, same)
		if i < 0 {
			i = room(len(t.Files), func(j int) uint64 { return t.Files[j].Errors })
			if i == len(t.Files) {
				t.Files = append(t.Files, alert.DamagedFile{})
			}
			f := alert.DamagedFile{Inode: *ev.Inode}
			if ev.Generation != nil {
				g := *ev.Generation
				f.Generation = &g
			}
			t.Files[i] = f
		}
		t.Files[i].Errors += n
		t.Files[i].Last = now
		if ev.Path != "" {
			t.Files[i].Path = ev.Path
		}
	}
}

// room returns where a new entry goes among n: at the end while there is
// room, else in place of the one with the fewest errors.
func room(n int, errors func(int) uint64) int {
	if n < maxTracked {
		return n
	}
	least := 0
	for j := 1; j < n; j++ {
		if errors(j) < errors(least) {
			least = j
		}
	}
	return least
}

// attachPath gives the file ino (generation gen) its path.
func (t *Top) attachPath(ino uint64, gen uint32, path string) bool {
	changed := false
	for i := range t.Files {
		f := &t.Files[i]
		fgen := uint32(0) // none: known from the kernel log alone
		if f.Generation != nil {
			fgen = *f.Generation
		}
		if f.Inode == ino && fgen == gen && path != "" && f.Path != path {
			f.Path = path
			changed = true
		}
	}
	return changed
}

// top returns the locations and files an alert carries: the most errors
// first, at most alert.MaxTop and alert.MaxDamagedFiles.
func (t *Top) top() ([]alert.Tally, []alert.DamagedFile) {
	if t == nil {
		return nil, nil
	}
	locs := slices.Clone(t.Locations)
	sort.SliceStable(locs, func(i, j int) bool { return locs[i].Errors > locs[j].Errors })
	files := make([]alert.DamagedFile, len(t.Files))
	for i, f := range t.Files {
		if f.Generation != nil {
			g := *f.Generation
			f.Generation = &g
		}
		files[i] = f
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Errors > files[j].Errors })
	return locs[:min(len(locs), alert.MaxTop)], files[:min(len(files), alert.MaxDamagedFiles)]
}

// clone copies t deeply.
func (t *Top) clone() *Top {
	if t == nil {
		return nil
	}
	c := &Top{Locations: slices.Clone(t.Locations), Files: slices.Clone(t.Files)}
	for i := range c.Files {
		if g := c.Files[i].Generation; g != nil {
			v := *g
			c.Files[i].Generation = &v
		}
	}
	return c
}
