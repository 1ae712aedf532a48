package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

// onInode makes the event about inode ino (generation gen), with the
// kernel message msg.
func onInode(ino uint64, gen uint32, msg string) func(*event.Event) {
	return func(e *event.Event) {
		e.Inode, e.Generation, e.KernelMessage = &ino, &gen, msg
	}
}

const (
	lookupMsg = "EXT4-fs error (device sda1): ext4_lookup:1855: inode #12: comm ls: iget: bogus i_mode (377)"
	dirMsg    = "EXT4-fs error (device sda1): htree_dirblock_to_tree:1087: inode #2: block 1234: comm ls: bad entry in directory: rec_len is smaller than minimal - offset=0, inode=0, rec_len=0, size=4096 fake=0"
)

// TestDigestAndReminderCarryTop: digests, reminders and the resolved
// alert carry the incident's top code locations and damaged files, with
// paths found later; the first alert does not.
func TestDigestAndReminderCarryTop(t *testing.T) {
	e := engine(t, "")
	d := e.Evaluate(ev(euclean, onInode(12, 7, lookupMsg)), at(0))
	if a := d.Alerts[0]; a.Type != alert.TypeError || a.TopLocations != nil || a.DamagedFiles != nil {
		t.Fatalf("first alert %+v carries a top", a)
	}
	e.Evaluate(ev(euclean, onInode(12, 7, lookupMsg), count(3)), at(10*sec))
	e.Evaluate(ev(euclean, onInode(2, 0, dirMsg)), at(20*sec))
	if !e.AttachPath("u1", 12, 7, "/srv/data/db", "") {
		t.Error("AttachPath changed no incident")
	}
	digest := e.Tick(at(minute))
	if len(digest) != 1 || digest[0].Type != alert.TypeDigest {
		t.Fatalf("tick at the window's end: %+v", digest)
	}
	g7, g0 := uint32(7), uint32(0)
	wantLocs := []alert.Tally{{Value: "ext4_lookup:1855", Errors: 4, Last: at(10 * sec)}, {Value: "htree_dirblock_to_tree:1087", Errors: 1, Last: at(20 * sec)}}
	wantFiles := []alert.DamagedFile{{Inode: 12, Generation: &g7, Path: "/srv/data/db", Errors: 4, Last: at(10 * sec)}, {Inode: 2, Generation: &g0, Errors: 1, Last: at(20 * sec)}}
	if a := digest[0]; !reflect.DeepEqual(a.TopLocations, wantLocs) || !reflect.DeepEqual(a.DamagedFiles, wantFiles) {
		t.Errorf("digest top %+v %+v\nwant %+v %+v", a.TopLocations, a.DamagedFiles, wantLocs, wantFiles)
	}
	rem := e.Tick(at(hr))
	if len(rem) != 1 || rem[0].Type != alert.TypeReminder || !reflect.DeepEqual(rem[0].TopLocations, wantLocs) || !reflect.DeepEqual(rem[0].DamagedFiles, wantFiles) {
		t.Errorf("reminder %+v", rem)
	}
	// The JSON alert has them under their documented names.
	j, _ := json.Marshal(rem[0])
	var m map[string]any
	json.Unmarshal(j, &m)
	if _, ok := m["top_locations"]; !ok {
		t.Errorf("reminder JSON has no top_locations: %s", j)
	}
	if _, ok := m["damaged_files"]; !ok {
		t.Errorf("reminder JSON has no damaged_files: %s", j)
	}
	// Restored after a restart, the counts go on.
	saved := e.Incidents()
	j, _ = json.Marshal(saved)
	var back []IncidentState
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	e2 := engine(t, "")
	e2.Restore(back)
	e2.Evaluate(ev(euclean, onInode(12, 7, lookupMsg)), at(2*hr))
	res := e2.Resolve("u1", at(3*hr))
	last := res[len(res)-1]
	if last.Type != alert.TypeResolved || len(last.TopLocations) != 2 || last.TopLocations[0].Errors != 5 || last.DamagedFiles[0].Path != "/srv/data/db" {
		t.Errorf("resolved alert after a restart: %+v %+v", last.TopLocations, last.DamagedFiles)
	}
}

// TestTopBounded: a storm over many files keeps at most maxTracked of
// them, the most frequent, and alerts carry at most MaxDamagedFiles.
func TestTopBounded(t *testing.T) {
	e := engine(t, "")
	for i := 0; i < 5; i++ {
		e.Evaluate(ev(euclean, onInode(7, 1, lookupMsg), count(100)), at(0))
	}
	for i := 0; i < 1000; i++ {
		e.Evaluate(ev(euclean, onInode(uint64(100+i), 1, fmt.Sprintf("EXT4-fs error (device sda1): f%d:1: comm x: y", i))), at(sec))
	}
	inc := e.Incidents()[0]
	if len(inc.Top.Files) != maxTracked || len(inc.Top.Locations) != maxTracked {
		t.Errorf("tracked %d files, %d locations; want %d", len(inc.Top.Files), len(inc.Top.Locations), maxTracked)
	}
	a := e.Tick(at(minute))[0]
	if len(a.DamagedFiles) != alert.MaxDamagedFiles || len(a.TopLocations) != alert.MaxTop || a.DamagedFiles[0].Inode != 7 || a.DamagedFiles[0].Errors != 500 ||
		a.TopLocations[0].Value != "ext4_lookup:1855" {
		t.Errorf("digest of the storm: %d files (first %+v), %d locations (first %+v)", len(a.DamagedFiles), a.DamagedFiles[0], len(a.TopLocations), a.TopLocations[0])
	}
}
