package btrfs

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Increase is one error counter of one device that went up between two
// readings.
type Increase struct {
	// FSUUID is the file system's UUID (FSID).
	FSUUID string `json:"fs_uuid"`
	// DevID and Path name the device (Path as of the newer reading).
	DevID uint64 `json:"devid"`
	Path  string `json:"path,omitempty"`
	// Counter is "write", "read", "flush", "corruption" or "generation".
	Counter string `json:"counter"`
	// From and To are the counter's old and new values.
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Baseline is set on increases that Tracker.ReportBaseline asked for:
	// a counter already non-zero when the file system was first seen,
	// reported as an increase from zero. Its errors happened at some
	// unknown time before.
	Baseline bool `json:"baseline,omitempty"`
}

// Delta returns by how much the counter went up.
func (i Increase) Delta() uint64 { return i.To - i.From }

// String describes the increase for a log line, e.g. "btrfs 1b2c…: device 1
// (/dev/sdb): corruption errors 0 -> 2".
func (i Increase) String() string {
	dev := fmt.Sprintf("device %d", i.DevID)
	if i.Path != "" {
		dev += " (" + i.Path + ")"
	}
	s := fmt.Sprintf("btrfs %s: %s: %s errors %d -> %d", i.FSUUID, dev, i.Counter, i.From, i.To)
	if i.Baseline {
		s += " (already non-zero when first seen)"
	}
	return s
}

// Tracker remembers the last counters seen for each btrfs file system and
// reports which went up. Its zero value is ready to use; it is safe for
// concurrent use, but ReportBaseline must be set before the first Update.
//
// A daemon that must not report an error twice across restarts persists
// Last after each Update that returned increases (or simply after each
// Update), and at start calls Restore with what it persisted before the
// first Update: that Update then reports exactly the errors that happened
// while it was not running.
type Tracker struct {
	// ReportBaseline makes the first Update of a file system that was
	// neither restored nor seen before report each counter that is
	// already non-zero as an Increase from zero with Baseline set. Without
	// it that Update only establishes the baseline and reports nothing.
	ReportBaseline bool

	mu  sync.Mutex
	fss map[string]map[uint64]DeviceStats // by FSUUID, then DevID
}

// Update compares devs, a reading of the file system fsUUID (see Stats),
// with the previous one and returns the counters that went up, ordered by
// device id and then in the order write, read, flush, corruption,
// generation; devs becomes the new reference.
//
// The first reading of a file system establishes the baseline and returns
// nothing (but see ReportBaseline); an empty first reading is not taken as a
// baseline. A device not seen before in a known file system (one just added,
// or the target of a replace) is compared with zero, since btrfs starts a new
// device's counters at zero. A counter that went down was reset (by `btrfs
// device stats -z`, for instance): it is not reported, and its new value is
// the reference. Devices missing from devs keep their last values.
func (t *Tracker) Update(fsUUID string, devs []DeviceStats) []Increase {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, known := t.fss[fsUUID]
	if !known {
		if len(devs) == 0 {
			return nil
		}
		last = t.fs(fsUUID)
	}
	var incs []Increase
	for _, d := range sortedByID(devs) {
		prev := last[d.DevID] // zero counters for a new device
		if !known && !t.ReportBaseline {
			prev = d
		}
		if d.Path == "" {
			d.Path = prev.Path // ReadSysfs does not know paths
		}
		old, cur := prev.counters(), d.counters()
		for i, v := range cur {
			if v > old[i] {
				incs = append(incs, Increase{
					FSUUID: fsUUID, DevID: d.DevID, Path: d.Path,
					Counter: counterNames[i], From: old[i], To: v,
					Baseline: !known,
				})
			}
		}
		last[d.DevID] = d
	}
	return incs
}

// Restore sets the reference counters of the file system fsUUID to devs,
// typically what Last returned before the daemon last stopped, replacing
// what the tracker knew of it. The next Update compares with them, and does
// not report a baseline.
func (t *Tracker) Restore(fsUUID string, devs []DeviceStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.fs(fsUUID)
	clear(last)
	for _, d := range devs {
		last[d.DevID] = d
	}
}

// Last returns the reference counters of the file system fsUUID, ordered by
// device id, for the caller to persist; nil if the file system is unknown.
func (t *Tracker) Last(fsUUID string) []DeviceStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.fss[fsUUID]
	if !ok {
		return nil
	}
	return sortedByID(slices.Collect(maps.Values(last)))
}

// Forget drops what the tracker knows of the file system fsUUID: its next
// Update establishes a new baseline.
func (t *Tracker) Forget(fsUUID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fss, fsUUID)
}

// fs returns the device map of fsUUID, creating it; t.mu must be held.
func (t *Tracker) fs(fsUUID string) map[uint64]DeviceStats {
	if t.fss == nil {
		t.fss = make(map[string]map[uint64]DeviceStats)
	}
	m, ok := t.fss[fsUUID]
	if !ok {
		m = make(map[uint64]DeviceStats)
		t.fss[fsUUID] = m
	}
	return m
}

// sortedByID returns a copy of devs sorted by device id.
func sortedByID(devs []DeviceStats) []DeviceStats {
	s := slices.Clone(devs)
	slices.SortStableFunc(s, func(a, b DeviceStats) int { return cmp.Compare(a.DevID, b.DevID) })
	return s
}
