package storage

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Changes of an array's redundancy (Redundancy.Change).
const (
	// ChangeDegraded: the array lacks members it did not lack before.
	ChangeDegraded = "degraded"
	// ChangeMemberFaulty: md marked a member faulty.
	ChangeMemberFaulty = "member-faulty"
	// ChangeMemberRemoved: a member left the array.
	ChangeMemberRemoved = "member-removed"
	// ChangeMismatch: a check or repair found more mismatched blocks
	// between the copies than the last one (md/mismatch_cnt grew).
	ChangeMismatch = "mismatch"
	// ChangeRestored: the array is whole again (no member missing or
	// faulty, no recovery running) after one of the changes above.
	ChangeRestored = "restored"
)

// ArrayState is what md's sysfs (or a dm-raid target's status) says
// about an array's redundancy.
type ArrayState struct {
	// Name is the array's kernel name ("md0", "dm-5").
	Name string
	// Driver is "" for an md array, DriverDMRaid for a dm-raid target;
	// Alias is a dm-raid device's LVM "vg/lv" or device-mapper name.
	Driver, Alias string
	MD
	// RaidDisks is how many members the array is meant to have.
	RaidDisks int
	// SyncAction is md/sync_action ("idle", "resync", "recover",
	// "check", "repair", ...).
	SyncAction string
	// MismatchCnt is md/mismatch_cnt; HasMismatch says it was read.
	MismatchCnt uint64
	HasMismatch bool
}

// ReadArray reads the redundancy state of the md array name under sysRoot.
func ReadArray(sysRoot, name string) (*ArrayState, error) {
	dir := filepath.Join(sysRoot, "class/block", name)
	if !exists(dir, "md") {
		return nil, fmt.Errorf("%s: not an md array (no md directory in sysfs)", dir)
	}
	a := &ArrayState{Name: name, MD: *readMD(dir), SyncAction: readStr(dir, "md/sync_action")}
	if n, err := readUint(dir, "md/raid_disks"); err == nil {
		a.RaidDisks = int(n)
	}
	if n, err := readUint(dir, "md/mismatch_cnt"); err == nil {
		a.MismatchCnt, a.HasMismatch = n, true
	}
	return a, nil
}

// redundant reports whether the level keeps redundant copies (raid0 and
// linear arrays cannot degrade).
func redundant(level string) bool {
	switch level {
	case "", "raid0", "linear", "container", "faulty":
		return false
	}
	return true
}

// Whole reports whether the array has every member in sync and no recovery
// running.
func (a *ArrayState) Whole() bool {
	if a.Degraded > 0 || a.ArrayState == "inactive" || a.ArrayState == "" {
		return false
	}
	switch a.SyncAction {
	case "recover", "reshape":
		return false
	}
	for _, m := range a.Members {
		if faulty(m.State) || m.State == stateRecovering || m.State == stateResyncing {
			return false
		}
	}
	return true
}

func faulty(state string) bool { return slices.Contains(strings.Split(state, ","), "faulty") }

// Redundancy is one change of an array's redundancy, as events carry it.
type Redundancy struct {
	// Change is one of the Change* constants.
	Change string `json:"change"`
	// Array is the array's kernel name ("md0", "dm-5"); Level its RAID
	// level.
	Array string `json:"array"`
	// Driver is "dm-raid" for device-mapper's raid target (an LVM raid
	// logical volume), empty for md; Alias is then the logical volume's
	// "vg/lv" (or the device-mapper name).
	Driver string `json:"driver,omitempty"`
	Alias  string `json:"alias,omitempty"`
	Level  string `json:"level,omitempty"`
	// Member is the member the change is about (member-faulty,
	// member-removed), MemberState its md state.
	Member      string `json:"member,omitempty"`
	MemberState string `json:"member_state,omitempty"`
	// Degraded is how many members the array lacks of RaidDisks.
	Degraded  int `json:"degraded"`
	RaidDisks int `json:"raid_disks,omitempty"`
	// ArrayState and SyncAction are md's array_state and sync_action.
	ArrayState string `json:"array_state,omitempty"`
	SyncAction string `json:"sync_action,omitempty"`
	// MismatchCnt is md's mismatch_cnt, and Previous what it was when
	// last seen (mismatch).
	MismatchCnt uint64 `json:"mismatch_cnt,omitempty"`
	Previous    uint64 `json:"previous_mismatch_cnt,omitempty"`
}

// String describes the change in one line.
func (r *Redundancy) String() string {
	var b strings.Builder
	switch {
	case r.Driver == "":
		fmt.Fprintf(&b, "md array %s", r.Array)
		if r.Level != "" {
			fmt.Fprintf(&b, " (%s)", r.Level)
		}
	default:
		name, extra := r.Array, []string(nil)
		if r.Alias != "" {
			name, extra = r.Alias, []string{r.Array}
		}
		if r.Level != "" {
			extra = append(extra, r.Level)
		}
		if r.Driver == DriverDMMultipath {
			// Its level is "multipath", and its members paths.
			fmt.Fprintf(&b, "multipath device %s", name)
			if r.Alias != "" {
				fmt.Fprintf(&b, " (%s)", r.Array)
			}
			switch r.Change {
			case ChangeMemberFaulty:
				fmt.Fprintf(&b, ": path %s failed, %d of %d paths failed", r.Member, r.Degraded, r.RaidDisks)
			case ChangeMemberRemoved:
				fmt.Fprintf(&b, ": path %s removed, %d of %d paths failed", r.Member, r.Degraded, r.RaidDisks)
			case ChangeRestored:
				b.WriteString(": every path active again")
			default:
				fmt.Fprintf(&b, ": %d of %d paths failed", r.Degraded, r.RaidDisks)
			}
			return b.String()
		}
		fmt.Fprintf(&b, "%s array %s", r.Driver, name)
		if len(extra) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
		}
	}
	switch r.Change {
	case ChangeMemberFaulty:
		fmt.Fprintf(&b, ": member %s faulty", r.Member)
	case ChangeMemberRemoved:
		fmt.Fprintf(&b, ": member %s removed", r.Member)
	case ChangeDegraded:
		b.WriteString(": degraded")
	case ChangeMismatch:
		fmt.Fprintf(&b, ": a check found %d mismatched sectors between the copies (was %d)", r.MismatchCnt, r.Previous)
		return b.String()
	case ChangeRestored:
		b.WriteString(": redundancy restored, every member in sync")
		return b.String()
	}
	if r.RaidDisks > 0 {
		fmt.Fprintf(&b, ", %d of %d members missing", r.Degraded, r.RaidDisks)
	} else {
		fmt.Fprintf(&b, ", %d members missing", r.Degraded)
	}
	if r.SyncAction != "" && r.SyncAction != "idle" {
		fmt.Fprintf(&b, " (%s running)", r.SyncAction)
	}
	return b.String()
}

// Redundancy returns a change of the array (one of the Change constants),
// with the array's state as read.
func (a *ArrayState) Redundancy(change string) Redundancy {
	return Redundancy{Change: change, Array: a.Name, Driver: a.Driver, Alias: a.Alias, Level: a.Level, Degraded: a.Degraded, RaidDisks: a.RaidDisks,
		ArrayState: a.ArrayState, SyncAction: a.SyncAction, MismatchCnt: a.MismatchCnt}
}

// arrayMemo is what a Tracker remembers of one array.
type arrayMemo struct {
	last *ArrayState
	// broken says a loss was reported and no restore since.
	broken bool
	// mismatch is the mismatch count the last finished check left (or
	// the first reading's).
	mismatch uint64
	// pending says the last reading found the array more degraded with
	// no member change to explain it, from pendingBase: md's sysfs is
	// not updated at once (seen on 6.1: degraded 1 a moment before the
	// member reads faulty, and the other way round), so such a change
	// is reported only if the next reading still shows no member
	// change that explains it.
	pending     bool
	pendingBase int
}

// Tracker follows the redundancy of md arrays and tells what changed
// between two readings: each change once.
type Tracker struct {
	arrays map[string]*arrayMemo
}

// Update takes a new reading of an array and returns its changes since the
// last one. At the first reading, an array already degraded or with a
// faulty member is reported as such; its mismatch count is the baseline.
// A member's loss carries the array's degradation: a degraded change is
// reported on its own only when no member change explains it.
func (t *Tracker) Update(a *ArrayState) []Redundancy {
	if t.arrays == nil {
		t.arrays = map[string]*arrayMemo{}
	}
	if !redundant(a.Level) {
		return nil
	}
	memo := t.arrays[a.Name]
	var out []Redundancy
	if memo == nil {
		memo = &arrayMemo{mismatch: a.MismatchCnt}
		t.arrays[a.Name] = memo
		for _, m := range a.Members {
			if faulty(m.State) {
				r := a.Redundancy(ChangeMemberFaulty)
				r.Member, r.MemberState = m.Name, m.State
				out = append(out, r)
			}
		}
		if len(out) == 0 && a.Degraded > 0 {
			out = append(out, a.Redundancy(ChangeDegraded))
		}
	} else {
		old := memo.last
		for _, m := range a.Members {
			if !faulty(m.State) {
				continue
			}
			if i := slices.IndexFunc(old.Members, func(o Member) bool { return o.Name == m.Name }); i >= 0 && faulty(old.Members[i].State) {
				continue
			}
			r := a.Redundancy(ChangeMemberFaulty)
			r.Member, r.MemberState = m.Name, m.State
			out = append(out, r)
		}
		for _, o := range old.Members {
			if slices.ContainsFunc(a.Members, func(m Member) bool { return m.Name == o.Name }) {
				continue
			}
			r := a.Redundancy(ChangeMemberRemoved)
			r.Member, r.MemberState = o.Name, o.State
			out = append(out, r)
		}
		// While a loss is open (reported, not restored), a degraded
		// count that grows again with no member change is that loss
		// still: dm-raid, recovering a leg after a reload, reads every
		// leg resyncing (none lacking) and then the leg recovering
		// (one lacking again), seen on 7.3.
		base := old.Degraded
		if memo.pending {
			base = memo.pendingBase
		}
		switch {
		case len(out) > 0 || a.Degraded <= base || memo.broken:
			memo.pending = false
		case memo.pending:
			memo.pending = false
			out = append(out, a.Redundancy(ChangeDegraded))
		default:
			memo.pending, memo.pendingBase = true, base
		}
	}
	if len(out) > 0 {
		memo.broken = true
	}
	// md resets mismatch_cnt when a check starts and counts while it
	// runs: only the count a finished check left is compared with the
	// previous one.
	if a.HasMismatch && (a.SyncAction == "idle" || a.SyncAction == "") {
		if a.MismatchCnt > memo.mismatch {
			r := a.Redundancy(ChangeMismatch)
			r.Previous = memo.mismatch
			out = append(out, r)
		}
		memo.mismatch = a.MismatchCnt
	}
	if memo.broken && a.Whole() {
		memo.broken = false
		out = append(out, a.Redundancy(ChangeRestored))
	}
	memo.last = a
	return out
}

// Settling reports whether the array is not whole but on its way: a
// resync, recovery or check runs, or a spare waits to be recovered onto.
// md does not signal the end of every one of these on all kernels, so the
// watcher reads such an array again soon.
func (a *ArrayState) Settling() bool {
	if a.SyncAction != "" && a.SyncAction != "idle" && a.SyncAction != "frozen" {
		return true
	}
	if a.Whole() {
		return false
	}
	for _, m := range a.Members {
		if slices.Contains(strings.Split(m.State, ","), "spare") || m.State == stateRecovering || m.State == stateResyncing {
			return true
		}
	}
	return false
}

// Pending reports whether the array's last reading left a change to be
// confirmed by the next one: the watcher reads it again soon.
func (t *Tracker) Pending(name string) bool {
	m := t.arrays[name]
	return m != nil && m.pending
}

// Known reports whether the tracker has read the array before.
func (t *Tracker) Known(name string) bool { return t.arrays[name] != nil }

// Forget drops the arrays not named in keep.
func (t *Tracker) Forget(keep map[string]bool) {
	for n := range t.arrays {
		if !keep[n] {
			delete(t.arrays, n)
		}
	}
}

// Arrays returns the names of the md arrays in a stack.
func Arrays(stack []Layer) []string {
	var out []string
	for i := range stack {
		if stack[i].Kind == KindMD {
			out = append(out, stack[i].Name)
		}
	}
	return out
}
