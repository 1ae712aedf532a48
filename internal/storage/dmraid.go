package storage

import (
	"fmt"
	"strconv"
	"strings"
)

// DriverDMRaid names, in an ArrayState and a Redundancy, an array of
// device-mapper's raid target (dm-raid: LVM's raid1, raid5, ... logical
// volumes), whose state comes from the target's status line instead of
// md's sysfs. An empty driver is an md array.
const DriverDMRaid = "dm-raid"

// DMTarget is one target line of a device-mapper table, with its status
// or its table parameters (as `dmsetup status` / `dmsetup table` print
// them).
type DMTarget struct {
	Start, Length uint64
	// Type is the target type ("linear", "raid", "crypt", ...).
	Type string
	// Params is the target's status line, or its table line.
	Params string
}

// RaidMember is one leg of a dm-raid target's table: its data device and
// its metadata device ("major:minor", or "-" for none).
type RaidMember struct {
	Meta, Data string
}

// ParseRaidTable parses the parameters of a dm-raid table line
// ("raid1 3 0 region_size 1024 2 254:1 254:2 254:3 254:4": level, the
// count of raid parameters and the parameters, the count of legs, then
// each leg's metadata and data device) and returns the level and the legs.
func ParseRaidTable(params string) (level string, legs []RaidMember, err error) {
	f := strings.Fields(params)
	if len(f) < 2 {
		return "", nil, fmt.Errorf("dm-raid table %q: too short", params)
	}
	level = f[0]
	np, err := strconv.Atoi(f[1])
	if err != nil || np < 0 || 2+np >= len(f) {
		return "", nil, fmt.Errorf("dm-raid table %q: bad count of raid parameters %q", params, f[1])
	}
	i := 2 + np
	nd, err := strconv.Atoi(f[i])
	if err != nil || nd <= 0 || nd > maxLayers || len(f) != i+1+2*nd {
		return "", nil, fmt.Errorf("dm-raid table %q: bad count of devices %q", params, f[i])
	}
	for d := range nd {
		legs = append(legs, RaidMember{Meta: f[i+1+2*d], Data: f[i+2+2*d]})
	}
	return level, legs, nil
}

// RaidStatus is a dm-raid target's status line ("raid1 2 AD 2048/2048
// idle 0 0 -"): level, number of legs, one health character per leg,
// sync ratio, sync action, mismatch count (and, on newer kernels, the
// data offset and the journal's state).
type RaidStatus struct {
	Level string
	// Health has a character per leg: 'A' alive and in sync, 'a' alive
	// but not in sync (being recovered), 'D' dead (failed), '-' no device.
	Health     string
	SyncAction string
	Mismatch   uint64
}

// ParseRaidStatus parses the status line of a dm-raid target.
func ParseRaidStatus(params string) (*RaidStatus, error) {
	f := strings.Fields(params)
	if len(f) < 3 {
		return nil, fmt.Errorf("dm-raid status %q: too short", params)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n <= 0 || n > maxLayers || len(f[2]) != n {
		return nil, fmt.Errorf("dm-raid status %q: %q health characters for %q devices", params, f[2], f[1])
	}
	for _, c := range f[2] {
		if !strings.ContainsRune("AaD-", c) {
			return nil, fmt.Errorf("dm-raid status %q: unknown health character %q", params, c)
		}
	}
	s := &RaidStatus{Level: f[0], Health: f[2]}
	if len(f) > 4 {
		s.SyncAction = f[4]
	}
	if len(f) > 5 {
		if m, err := strconv.ParseUint(f[5], 10, 64); err == nil {
			s.Mismatch = m
		}
	}
	return s, nil
}

// Member states of dm-raid legs that md has no name for.
const (
	// stateRecovering: a leg being rebuilt from the others (health 'a'
	// while others are 'A'): it lacks from the array until it is done.
	stateRecovering = "recovering"
	// stateResyncing: every leg is 'a': the whole array is being
	// resynchronised (after it was created or reloaded); no leg lacks,
	// but the copies are not known to be equal until it ends.
	stateResyncing = "resyncing"
)

// memberState is md's name for a dm-raid health character; resync says
// that no leg is 'A' (a whole-array resync, not a recovery).
func memberState(c byte, resync bool) string {
	switch c {
	case 'A':
		return "in_sync"
	case 'a':
		if resync {
			return stateResyncing
		}
		return stateRecovering
	case 'D':
		return "faulty"
	}
	return "missing"
}

// RaidArray makes the ArrayState of the dm-raid device name (the kernel's
// name, "dm-5"; alias is its LVM "vg/lv" or device-mapper name) from its
// table and status; resolve names a leg's device number ("254:3") with its
// kernel name ("dm-3"; the number itself if it cannot).
func RaidArray(name, alias string, table, status DMTarget, resolve func(dev string) string) (*ArrayState, error) {
	if table.Type != "raid" || status.Type != "raid" {
		return nil, fmt.Errorf("%s: not a dm-raid target (%q, %q)", name, table.Type, status.Type)
	}
	level, legs, err := ParseRaidTable(table.Params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := ParseRaidStatus(status.Params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(st.Health) != len(legs) {
		return nil, fmt.Errorf("%s: status has %d legs, table %d", name, len(st.Health), len(legs))
	}
	a := &ArrayState{Name: name, Driver: DriverDMRaid, Alias: alias, RaidDisks: len(legs), SyncAction: st.SyncAction,
		MismatchCnt: st.Mismatch, HasMismatch: true}
	a.Level, a.ArrayState = level, "active"
	// dm-raid shows every leg 'a' while the whole array resyncs: that
	// is no leg lacking; a leg 'a' beside legs 'A' is being recovered.
	resync := !strings.Contains(st.Health, "A")
	for i, l := range legs {
		m := Member{Name: l.Data, State: memberState(st.Health[i], resync), Slot: strconv.Itoa(i)}
		if l.Data != "-" && resolve != nil {
			m.Name = resolve(l.Data)
		}
		if st.Health[i] != 'A' && !(st.Health[i] == 'a' && resync) {
			a.Degraded++
		}
		a.Members = append(a.Members, m)
	}
	return a, nil
}
