package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mdFixture is a fixture sysfs with one md array, md0, whose files the
// test rewrites between readings, as md does.
type mdFixture struct {
	t    testing.TB
	root string
}

func newMDFixture(t *testing.T, level string) *mdFixture {
	f := &mdFixture{t: t, root: t.TempDir()}
	f.set("level", level)
	f.set("raid_disks", "2")
	f.set("array_state", "clean")
	f.set("degraded", "0")
	f.set("sync_action", "idle")
	f.set("mismatch_cnt", "0")
	f.member("sda1", "in_sync")
	f.member("sdb1", "in_sync")
	return f
}

func (f *mdFixture) set(attr, value string) {
	p := filepath.Join(f.root, "class/block/md0/md", attr)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *mdFixture) member(name, state string) { f.set("dev-"+name+"/state", state) }

func (f *mdFixture) remove(name string) {
	if err := os.RemoveAll(filepath.Join(f.root, "class/block/md0/md/dev-"+name)); err != nil {
		f.t.Fatal(err)
	}
}

// read reads the array and returns its changes as "change member" words.
func (f *mdFixture) read(tr *Tracker) string {
	a, err := ReadArray(f.root, "md0")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, r := range tr.Update(a) {
		if r.Array != "md0" {
			f.t.Errorf("change %+v names array %q", r, r.Array)
		}
		s := r.Change
		if r.Member != "" {
			s += " " + r.Member
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// TestTrackerLegLostAndRestored follows a RAID1 through the life mdadm
// gives it: a leg failed, removed, added back, recovered. Each change is
// reported once, the degradation with the member that caused it, and the
// array whole again once.
func TestTrackerLegLostAndRestored(t *testing.T) {
	f := newMDFixture(t, "raid1")
	var tr Tracker
	steps := []struct {
		do   func()
		want string
	}{
		{func() {}, ""},
		{func() {}, ""},
		{func() { f.member("sdb1", "faulty"); f.set("degraded", "1") }, "member-faulty sdb1"},
		{func() {}, ""},
		{func() { f.remove("sdb1") }, "member-removed sdb1"},
		{func() {}, ""},
		{func() { f.member("sdb1", "spare"); f.set("sync_action", "recover") }, ""},
		{func() { f.member("sdb1", "in_sync"); f.set("degraded", "0") }, ""}, // recovery not finished yet
		{func() { f.set("sync_action", "idle") }, "restored"},
		{func() {}, ""},
	}
	for i, s := range steps {
		s.do()
		if got := f.read(&tr); got != s.want {
			t.Errorf("step %d: changes %q, want %q", i, got, s.want)
		}
	}
}

// TestTrackerDegradedConfirmed: md's sysfs is not updated at once — seen
// on 6.1, degraded reads 1 a moment before the failed member reads faulty
// — so a degradation no member change explains is reported only when the
// next reading confirms it; if that reading shows the member faulty, only
// the member's change is.
func TestTrackerDegradedConfirmed(t *testing.T) {
	f := newMDFixture(t, "raid1")
	var tr Tracker
	steps := []struct {
		do      func()
		want    string
		pending bool
	}{
		{func() {}, "", false},
		{func() { f.set("degraded", "1") }, "", true},
		{func() { f.member("sdb1", "faulty") }, "member-faulty sdb1", false},
		{func() { f.remove("sdb1"); f.member("sdb1", "in_sync"); f.set("degraded", "0") }, "restored", false},
		// An array that loses a member md never shows (assembled
		// without it, say): degraded, confirmed by the next reading.
		{func() { f.set("degraded", "1") }, "", true},
		{func() {}, "degraded", false},
		{func() {}, "", false},
	}
	for i, s := range steps {
		s.do()
		if got := f.read(&tr); got != s.want || tr.Pending("md0") != s.pending {
			t.Errorf("step %d: changes %q, pending %v, want %q, %v", i, got, tr.Pending("md0"), s.want, s.pending)
		}
	}
}

// TestTrackerDegradedAtStart: an array already degraded when first read
// is reported (with its faulty member, or as degraded when md dropped it
// already), and restored when whole.
func TestTrackerDegradedAtStart(t *testing.T) {
	f := newMDFixture(t, "raid1")
	f.member("sdb1", "faulty")
	f.set("degraded", "1")
	var tr Tracker
	if got := f.read(&tr); got != "member-faulty sdb1" {
		t.Errorf("first reading: %q", got)
	}
	g := newMDFixture(t, "raid1")
	g.remove("sdb1")
	g.set("degraded", "1")
	var tr2 Tracker
	if got := g.read(&tr2); got != "degraded" {
		t.Errorf("first reading of an array without its second leg: %q", got)
	}
	g.member("sdb1", "in_sync")
	g.set("degraded", "0")
	if got := g.read(&tr2); got != "restored" {
		t.Errorf("after the leg came back: %q", got)
	}
}

// TestTrackerMismatch: mismatch_cnt as of the first reading is the
// baseline; a check that ends with a higher count is reported once; a new
// check resets the count (no event), and one that ends above the last
// reported count is reported again.
func TestTrackerMismatch(t *testing.T) {
	f := newMDFixture(t, "raid1")
	f.set("mismatch_cnt", "8")
	var tr Tracker
	for i, s := range []struct{ action, cnt, want string }{
		{"idle", "8", ""},
		{"check", "0", ""},
		{"check", "128", ""}, // still counting
		{"idle", "128", "mismatch"},
		{"idle", "128", ""},
		{"check", "0", ""},
		{"idle", "64", ""},
		{"check", "0", ""},
		{"idle", "256", "mismatch"},
	} {
		f.set("sync_action", s.action)
		f.set("mismatch_cnt", s.cnt)
		if got := f.read(&tr); got != s.want {
			t.Errorf("step %d (%s, %s): %q, want %q", i, s.action, s.cnt, got, s.want)
		}
	}
}

// TestTrackerNonRedundantLevels: raid0 has nothing to lose.
func TestTrackerNonRedundantLevels(t *testing.T) {
	f := newMDFixture(t, "raid0")
	var tr Tracker
	f.read(&tr)
	f.set("degraded", "1")
	if got := f.read(&tr); got != "" {
		t.Errorf("raid0: %q", got)
	}
}

// TestReadArrayNotMD names what is wrong.
func TestReadArrayNotMD(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "class/block/sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := ReadArray(root, "sda")
	if err == nil || !strings.Contains(err.Error(), "sda: not an md array") {
		t.Errorf("err %v", err)
	}
}

// TestRedundancyString describes each change.
func TestRedundancyString(t *testing.T) {
	for _, c := range []struct {
		r    Redundancy
		want string
	}{
		{Redundancy{Change: ChangeMemberFaulty, Array: "md0", Level: "raid1", Member: "sdb1", Degraded: 1, RaidDisks: 2},
			"md array md0 (raid1): member sdb1 faulty, 1 of 2 members missing"},
		{Redundancy{Change: ChangeMismatch, Array: "md1", MismatchCnt: 128, Previous: 8},
			"md array md1: a check found 128 mismatched sectors between the copies (was 8)"},
		{Redundancy{Change: ChangeRestored, Array: "md0", Level: "raid1"}, "md array md0 (raid1): redundancy restored, every member in sync"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}

// BenchmarkReadArrayAndUpdate is the cost of one periodic check of one
// array (a fixture tree: the same files md's sysfs has).
func BenchmarkReadArrayAndUpdate(b *testing.B) {
	f := &mdFixture{t: b, root: b.TempDir()}
	for _, kv := range [][2]string{{"level", "raid1"}, {"raid_disks", "2"}, {"array_state", "clean"}, {"degraded", "0"},
		{"sync_action", "idle"}, {"mismatch_cnt", "0"}, {"dev-sda1/state", "in_sync"}, {"dev-sdb1/state", "in_sync"}} {
		f.set(kv[0], kv[1])
	}
	var tr Tracker
	for b.Loop() {
		a, err := ReadArray(f.root, "md0")
		if err != nil {
			b.Fatal(err)
		}
		tr.Update(a)
	}
}

// TestArraySettling: an array is settling while a sync runs or a spare
// waits to be recovered onto a degraded array; not when whole and idle, nor
// when degraded with nothing to recover onto.
func TestArraySettling(t *testing.T) {
	for _, c := range []struct {
		action, degraded, sdb string
		want                  bool
	}{
		{"idle", "0", "in_sync", false},
		{"check", "0", "in_sync", true},
		{"idle", "1", "faulty", false},
		{"idle", "1", "spare", true},
		{"recover", "1", "spare", true},
		{"frozen", "1", "faulty", false},
	} {
		f := newMDFixture(t, "raid1")
		f.set("sync_action", c.action)
		f.set("degraded", c.degraded)
		f.member("sdb1", c.sdb)
		a, err := ReadArray(f.root, "md0")
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Settling(); got != c.want {
			t.Errorf("%+v: settling %v", c, got)
		}
	}
}
