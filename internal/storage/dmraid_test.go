package storage

import (
	"encoding/binary"
	"strings"
	"testing"
)

// raidTable is an LVM raid1 logical volume's table as the kernel prints
// it: two legs, each a metadata and a data sub-LV.
const raidTable = "raid1 3 0 region_size 4096 2 254:1 254:2 254:3 254:4"

func raidState(t *testing.T, status string) *ArrayState {
	t.Helper()
	return raidStateOf(t, raidTable, status)
}

func raidStateOf(t *testing.T, table, status string) *ArrayState {
	t.Helper()
	names := map[string]string{"254:1": "dm-1", "254:2": "dm-2", "254:3": "dm-3", "254:4": "dm-4"}
	a, err := RaidArray("dm-5", "vg/r", DMTarget{Type: "raid", Params: table}, DMTarget{Type: "raid", Params: status},
		func(d string) string { return names[d] })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDMRaidLegLostAndRestored: the health characters of a dm-raid status
// become md-like member states, and the tracker reports a failed leg once,
// nothing while it is recovered, and the array whole again once.
func TestDMRaidLegLostAndRestored(t *testing.T) {
	var tr Tracker
	steps := []struct{ status, want string }{
		{"raid1 2 AA 65536/65536 idle 0 0 -", ""},
		{"raid1 2 AD 65536/65536 idle 0 0 -", "member-faulty dm-4 (dm-raid array vg/r (dm-5, raid1): member dm-4 faulty, 1 of 2 members missing)"},
		{"raid1 2 AD 65536/65536 idle 0 0 -", ""},
		{"raid1 2 Aa 1024/65536 recover 0 0 -", ""},
		// After a reload, dm-raid may resync the whole array: every
		// leg 'a', even with sync action idle before it starts. No
		// leg lacks, but the array is not whole yet (seen on 6.18
		// after lvchange --refresh).
		{"raid1 2 aa 0/65536 idle 0 0 -", ""},
		{"raid1 2 aa 1024/65536 resync 0 0 -", ""},
		// Then the leg is recovered (seen on 7.3): the loss is still
		// the one reported.
		{"raid1 2 Aa 2048/65536 recover 0 0 -", ""},
		{"raid1 2 AA 65536/65536 idle 0 0 -", "restored (dm-raid array vg/r (dm-5, raid1): redundancy restored, every member in sync)"},
		{"raid1 2 AA 65536/65536 idle 0 0 -", ""},
		// A check that found mismatches (older kernels print no data
		// offset or journal field).
		{"raid1 2 AA 65536/65536 check 0", ""},
		{"raid1 2 AA 65536/65536 idle 8", "mismatch (dm-raid array vg/r (dm-5, raid1): a check found 8 mismatched sectors between the copies (was 0))"},
	}
	for i, s := range steps {
		a := raidState(t, s.status)
		var got []string
		for _, r := range tr.Update(a) {
			w := r.Change
			if r.Member != "" {
				w += " " + r.Member
			}
			got = append(got, w+" ("+r.String()+")")
			if r.Driver != DriverDMRaid || r.Array != "dm-5" || r.Alias != "vg/r" {
				t.Errorf("step %d: change %+v", i, r)
			}
		}
		if g := strings.Join(got, "; "); g != s.want {
			t.Errorf("step %d (%s): changes %q, want %q", i, s.status, g, s.want)
		}
	}
	a := raidStateOf(t, "raid1 3 0 region_size 4096 3 254:1 254:2 254:3 254:4 254:5 254:6", "raid1 3 AaD 0/65536 recover 0 0 -")
	if a.Degraded != 2 || a.Members[1].State != "recovering" || a.Members[2].State != "faulty" || a.RaidDisks != 3 || a.Whole() {
		t.Errorf("array %+v", a)
	}
	a = raidState(t, "raid1 2 aa 0/65536 resync 0 0 -")
	if a.Degraded != 0 || a.Members[0].State != "resyncing" || a.Members[1].Name != "dm-4" || a.Whole() || !a.Settling() {
		t.Errorf("array %+v, want no leg lacking, not whole, settling", a)
	}
}

// TestDMRaidBadLines: lines that are not a dm-raid table or status are
// errors naming what is wrong.
func TestDMRaidBadLines(t *testing.T) {
	for _, tc := range []struct{ table, status, want string }{
		{raidTable, "raid1 2 AX 1/1 idle 0", "unknown health character"},
		{raidTable, "raid1 3 AAA 1/1 idle 0", "status has 3 legs, table 2"},
		{raidTable, "raid1 2 A 1/1 idle 0", "health characters"},
		{"raid1 3 0 region_size 4096 2 254:1 254:2 254:3", "raid1 2 AA 1/1 idle 0", "bad count of devices"},
		{"raid1 x", "raid1 2 AA 1/1 idle 0", "bad count of raid parameters"},
		{"raid1 9 0 1", "raid1 2 AA 1/1 idle 0", "bad count of raid parameters"},
	} {
		_, err := RaidArray("dm-5", "", DMTarget{Type: "raid", Params: tc.table}, DMTarget{Type: "raid", Params: tc.status}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dm-5") {
			t.Errorf("%q / %q: %v, want an error about %q", tc.table, tc.status, err, tc.want)
		}
	}
	if _, err := RaidArray("dm-5", "", DMTarget{Type: "linear"}, DMTarget{Type: "linear"}, nil); err == nil {
		t.Error("a linear target taken for dm-raid")
	}
}

// statusAnswer builds a DM_TABLE_STATUS answer as the kernel writes it.
func statusAnswer(targets []DMTarget) []byte {
	le := binary.NativeEndian
	var data []byte
	for _, tg := range targets {
		spec := make([]byte, dmTargetSpecSize)
		le.PutUint64(spec[0:], tg.Start)
		le.PutUint64(spec[8:], tg.Length)
		copy(spec[24:], tg.Type)
		spec = append(spec, tg.Params...)
		spec = append(spec, 0)
		for len(spec)%8 != 0 {
			spec = append(spec, 0)
		}
		le.PutUint32(spec[20:], uint32(len(data)+len(spec)))
		data = append(data, spec...)
	}
	buf := make([]byte, dmIoctlSize, dmIoctlSize+len(data)+64)
	buf = append(buf, data...)
	le.PutUint32(buf[12:], uint32(len(buf)))
	le.PutUint32(buf[16:], dmIoctlSize)
	le.PutUint32(buf[20:], uint32(len(targets)))
	return append(buf, make([]byte, 64)...)
}

// TestParseTargetSpecs: the targets of a status answer, in order.
func TestParseTargetSpecs(t *testing.T) {
	want := []DMTarget{{0, 2048, "linear", ""}, {2048, 4096, "raid", "raid1 2 AA 4096/4096 idle 0 0 -"}, {6144, 8, "error", ""}}
	got, err := ParseTargetSpecs(statusAnswer(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("targets %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	bad := statusAnswer(want)
	binary.NativeEndian.PutUint32(bad[dmIoctlSize+20:], 7) // first next points backwards
	if _, err := ParseTargetSpecs(bad); err == nil || !strings.Contains(err.Error(), "backwards") {
		t.Errorf("answer with a backward next: %v", err)
	}
}

// FuzzParseTargetSpecs: no answer makes the parser panic or read outside
// the buffer.
func FuzzParseTargetSpecs(f *testing.F) {
	f.Add(statusAnswer([]DMTarget{{0, 2048, "raid", "raid1 2 AA 1/1 idle 0 0 -"}}))
	f.Add(statusAnswer(nil))
	f.Fuzz(func(t *testing.T, b []byte) { ParseTargetSpecs(b) })
}

// FuzzRaidArray: no table or status line makes the dm-raid parsers panic.
func FuzzRaidArray(f *testing.F) {
	f.Add(raidTable, "raid1 2 AD 65536/65536 idle 0 0 -")
	f.Fuzz(func(t *testing.T, table, status string) {
		RaidArray("dm-0", "", DMTarget{Type: "raid", Params: table}, DMTarget{Type: "raid", Params: status}, func(s string) string { return s })
	})
}

// TestMultipathPathLostAndRestored: a multipath device's paths are its
// members; a failed path is reported once, and every path active again
// is the restore.
func TestMultipathPathLostAndRestored(t *testing.T) {
	var tr Tracker
	names := map[string]string{"7:0": "loop0", "7:1": "loop1"}
	steps := []struct{ status, want string }{
		// round-robin: no per-path arguments.
		{"2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 A 0", ""},
		{"2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1", "member-faulty loop1 (multipath device mp1 (dm-2): path loop1 failed, 1 of 2 paths failed)"},
		{"2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1", ""},
		// service-time: two per-path arguments; a hardware handler
		// argument and a feature.
		{"3 1 0 queue_if_no_path 1 x 1 1 A 0 2 2 7:0 A 0 0 1 7:1 A 1 0 1", "restored (multipath device mp1 (dm-2): every path active again)"},
	}
	for i, s := range steps {
		a, err := MultipathArray("dm-2", "mp1", DMTarget{Type: "multipath", Params: s.status}, func(d string) string { return names[d] })
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got []string
		for _, r := range tr.Update(a) {
			w := r.Change
			if r.Member != "" {
				w += " " + r.Member
			}
			got = append(got, w+" ("+r.String()+")")
		}
		if g := strings.Join(got, "; "); g != s.want {
			t.Errorf("step %d (%s): changes %q, want %q", i, s.status, g, s.want)
		}
	}
	for _, bad := range []string{"", "2 0", "0 0 1 1 A 0 2 0 7:0 A 0", "0 0 1 1 A 0 1 0 7:0 X 0", "0 0 1 1 A 9"} {
		if _, err := MultipathArray("dm-2", "", DMTarget{Type: "multipath", Params: bad}, nil); err == nil || !strings.Contains(err.Error(), "dm-2") {
			t.Errorf("status %q: %v, want an error naming dm-2", bad, err)
		}
	}
}

// FuzzMultipathArray: no status line makes the multipath parser panic.
func FuzzMultipathArray(f *testing.F) {
	f.Add("2 0 0 0 1 1 A 0 2 0 7:0 A 0 7:1 F 1")
	f.Fuzz(func(t *testing.T, status string) {
		MultipathArray("dm-0", "", DMTarget{Type: "multipath", Params: status}, nil)
	})
}
