package store

import (
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// TestAttachPath: a path found later is attached to exactly the events
// about its inode (and generation) on its file system whose path was
// pending; the others are left as they were, byte for byte.
func TestAttachPath(t *testing.T) {
	s := openTemp(t)
	inode := func(id string, f int, ino uint64, gen uint32, pending bool) *eventSpec {
		return &eventSpec{id, f, ino, gen, pending}
	}
	specs := []*eventSpec{
		inode("a", 1, 13, 7, true),  // attached
		inode("b", 1, 13, 7, true),  // attached
		inode("c", 1, 13, 8, true),  // another generation: another file
		inode("d", 1, 14, 7, true),  // another inode
		inode("e", 3, 13, 7, true),  // another file system
		inode("f", 1, 13, 7, false), // not pending: has its own answer
	}
	b := &Batch{}
	for i, sp := range specs {
		f := fs1
		if sp.fs == 3 {
			f = fs3
		}
		e := errEvent(sp.id, base.Add(time.Duration(i)*time.Second), f, "EUCLEAN", 1)
		ino, gen := sp.ino, sp.gen
		e.Inode, e.Generation, e.PathPending = &ino, &gen, sp.pending
		if !sp.pending {
			e.PathError = "earlier answer"
		}
		b.Events = append(b.Events, e)
	}
	commit(t, s, b)
	before, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	hostile := "/data/a \"b\"\n$(x)"
	got, err := s.AttachPath(ctx, FSKey(fs1.UUID, fs1.Device), 13, 7, hostile, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("changed %q, want a and b", got)
	}
	after, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		a, bf := after[i], before[i]
		switch a.ID {
		case "a", "b":
			if a.Path != hostile || a.PathPending || a.PathError != "" {
				t.Errorf("%s: path %q pending %v error %q", a.ID, a.Path, a.PathPending, a.PathError)
			}
			a.Path, a.PathPending = bf.Path, bf.PathPending
			if string(mustJSON(t, a)) != string(mustJSON(t, bf)) {
				t.Errorf("%s: more than the path changed:\n%s\n%s", a.ID, mustJSON(t, a), mustJSON(t, bf))
			}
		default:
			if string(mustJSON(t, a)) != string(mustJSON(t, bf)) {
				t.Errorf("%s changed:\n%s\n%s", a.ID, mustJSON(t, a), mustJSON(t, bf))
			}
		}
	}
	// A lookup that failed says why, and nothing is pending any more.
	if got, err := s.AttachPath(ctx, FSKey(fs1.UUID, fs1.Device), 14, 7, "", "not found"); err != nil || len(got) != 1 || got[0] != "d" {
		t.Errorf("failed lookup changed %q, %v; want d", got, err)
	}
	if got, err := s.AttachPath(ctx, FSKey(fs1.UUID, fs1.Device), 13, 7, "/again", ""); err != nil || len(got) != 0 {
		t.Errorf("attached twice: %q, %v", got, err)
	}
}

// TestPendingPaths: the inodes whose path is still pending, newest first,
// each once, at most the limit.
func TestPendingPaths(t *testing.T) {
	s := openTemp(t)
	b := &Batch{}
	for i, sp := range []eventSpec{{"a", 1, 13, 7, true}, {"b", 1, 14, 7, true}, {"c", 1, 13, 7, true}, {"d", 3, 15, 1, true}, {"e", 1, 16, 1, false}} {
		f := fs1
		if sp.fs == 3 {
			f = fs3
		}
		e := errEvent(sp.id, base.Add(time.Duration(i)*time.Second), f, "EUCLEAN", 1)
		ino, gen := sp.ino, sp.gen
		e.Inode, e.Generation, e.PathPending = &ino, &gen, sp.pending
		b.Events = append(b.Events, e)
	}
	commit(t, s, b)
	k1, k3 := FSKey(fs1.UUID, fs1.Device), FSKey(fs3.UUID, fs3.Device)
	got, err := s.PendingPaths(ctx, 10)
	want := []PendingPath{{k3, 15, 1}, {k1, 13, 7}, {k1, 14, 7}}
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("PendingPaths = %v, %v; want %v", got, err, want)
	}
	if got, err := s.PendingPaths(ctx, 1); err != nil || len(got) != 1 || got[0] != want[0] {
		t.Errorf("PendingPaths(1) = %v, %v", got, err)
	}
}

type eventSpec struct {
	id      string
	fs      int
	ino     uint64
	gen     uint32
	pending bool
}

// TestAttachPathWithoutGeneration: an event known from the kernel log
// alone names an inode and no generation; the lookup asked for it with
// generation 0 attaches to it, a lookup of the inode with a generation does
// not, and the pending lookup resumes with generation 0.
func TestAttachPathWithoutGeneration(t *testing.T) {
	s := openTemp(t)
	e := errEvent("k", base, fs1, "EUCLEAN", 1)
	ino := uint64(131)
	e.Inode, e.PathPending = &ino, true
	commit(t, s, &Batch{Events: []event.Event{e}})
	key := FSKey(fs1.UUID, fs1.Device)
	pend, err := s.PendingPaths(ctx, 10)
	if err != nil || len(pend) != 1 || pend[0] != (PendingPath{FSKey: key, Inode: ino, Generation: 0}) {
		t.Fatalf("pending %+v, %v; want inode 131 generation 0", pend, err)
	}
	if got, err := s.AttachPath(ctx, key, ino, 9, "/srv/other", ""); err != nil || len(got) != 0 {
		t.Errorf("a lookup with a generation attached to the event without one: %q, %v", got, err)
	}
	if got, err := s.AttachPath(ctx, key, ino, 0, "/srv/a/b", ""); err != nil || len(got) != 1 || got[0] != "k" {
		t.Fatalf("attached to %q, %v; want k", got, err)
	}
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 1 || evs[0].Path != "/srv/a/b" || evs[0].PathPending || evs[0].Generation != nil {
		t.Errorf("events %+v, %v; want the path attached and no generation invented", evs, err)
	}
}
