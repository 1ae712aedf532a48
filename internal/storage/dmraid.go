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

// DriverDMMultipath names, in an ArrayState and a Redundancy, a
// device-mapper multipath device: its "members" are its paths.
const DriverDMMultipath = "dm-multipath"

// MultipathArray makes the ArrayState of the multipath device name from
// its status line (`dmsetup status`: "2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1"
// — the features, the hardware handler's arguments, the priority groups
// and, in each, its state, its path selector's arguments and its paths,
// each with its device, "A" (active) or "F" (failed), its fail count and
// the selector's per-path arguments). Each path is a member, "faulty" when
// failed; the array lacks its failed paths.
func MultipathArray(name, alias string, status DMTarget, resolve func(dev string) string) (*ArrayState, error) {
	if status.Type != "multipath" {
		return nil, fmt.Errorf("%s: not a multipath target (%q)", name, status.Type)
	}
	f := strings.Fields(status.Params)
	i := 0
	bad := func(what string) error {
		return fmt.Errorf("%s: multipath status %q: %s", name, status.Params, what)
	}
	num := func(what string) (int, error) {
		if i >= len(f) {
			return 0, bad("ends before " + what)
		}
		n, err := strconv.Atoi(f[i])
		if err != nil || n < 0 || n > len(f) {
			return 0, bad("bad " + what + " " + strconv.Quote(f[i]))
		}
		i++
		return n, nil
	}
	skip := func(what string) error {
		n, err := num(what)
		if err != nil {
			return err
		}
		if i+n > len(f) {
			return bad("ends within " + what)
		}
		i += n
		return nil
	}
	if err := skip("feature count"); err != nil {
		return nil, err
	}
	if err := skip("hardware handler argument count"); err != nil {
		return nil, err
	}
	groups, err := num("priority group count")
	if err != nil {
		return nil, err
	}
	if _, err := num("next priority group"); err != nil {
		return nil, err
	}
	a := &ArrayState{Name: name, Driver: DriverDMMultipath, Alias: alias}
	a.Level, a.ArrayState = "multipath", "active"
	for g := 0; g < groups; g++ {
		if i >= len(f) {
			return nil, bad("ends before priority group " + strconv.Itoa(g+1))
		}
		i++ // the group's state: A(ctive), E(nabled), D(isabled)
		if err := skip("path selector argument count"); err != nil {
			return nil, err
		}
		paths, err := num("path count")
		if err != nil {
			return nil, err
		}
		perPath, err := num("per-path argument count")
		if err != nil {
			return nil, err
		}
		for p := 0; p < paths; p++ {
			if i+3+perPath > len(f) {
				return nil, bad("ends within path " + strconv.Itoa(p+1) + " of group " + strconv.Itoa(g+1))
			}
			dev, st := f[i], f[i+1]
			i += 3 + perPath
			m := Member{Name: dev, Slot: strconv.Itoa(len(a.Members))}
			if resolve != nil {
				m.Name = resolve(dev)
			}
			switch st {
			case "A":
				m.State = "active"
			case "F":
				m.State = "faulty"
				a.Degraded++
			default:
				return nil, bad("path state " + strconv.Quote(st))
			}
			a.Members = append(a.Members, m)
			if len(a.Members) > maxLayers {
				return nil, bad("too many paths")
			}
		}
	}
	a.RaidDisks = len(a.Members)
	return a, nil
}
