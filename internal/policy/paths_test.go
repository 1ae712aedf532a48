package policy

import (
	"testing"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

// TestAttachPath: a path found after the first alert reaches the
// incident's later alerts (here its reminder), and only for the inode it
// belongs to.
func TestAttachPath(t *testing.T) {
	e := engine(t, "")
	ino, gen := uint64(13), uint32(7)
	d := e.Evaluate(ev(euclean, func(x *event.Event) { x.Inode, x.Generation, x.PathPending = &ino, &gen, true }), t0)
	if len(d.Alerts) != 1 || !d.Alerts[0].Event.PathPending {
		t.Fatalf("first alert %+v, want one with the path pending", d.Alerts)
	}
	e.Changed()
	fsKey := ev(euclean).FSKey()
	if e.AttachPath(fsKey, ino, gen+1, "/srv/other", "") || e.AttachPath(fsKey, ino+1, gen, "/srv/other", "") || e.AttachPath("u2", ino, gen, "/srv/other", "") {
		t.Error("a path of another inode or file system was attached")
	}
	if !e.AttachPath(fsKey, ino, gen, "/srv/dir/bad", "") {
		t.Fatal("the path was not attached")
	}
	if ch := e.Changed(); len(ch) != 1 || ch[0].LastEvent.Path != "/srv/dir/bad" || ch[0].LastEvent.PathPending {
		t.Errorf("changed incidents %+v, want the one with the path", ch)
	}
	if e.AttachPath(fsKey, ino, gen, "/srv/dir/bad", "") {
		t.Error("attached twice")
	}
	var reminders []alert.Alert
	for len(reminders) == 0 {
		reminders = e.Tick(e.NextDeadline())
	}
	if r := reminders[0]; r.Type != alert.TypeReminder || r.Event == nil || r.Event.Path != "/srv/dir/bad" || r.Event.PathPending {
		t.Errorf("reminder %+v (event %+v), want the path", r, r.Event)
	}
	// The first alert, already sent, is not changed.
	if d.Alerts[0].Event.Path != "" {
		t.Errorf("the first alert's event changed: %+v", d.Alerts[0].Event)
	}
}

// TestAttachPathWithoutGeneration: an incident whose last event is known
// from the kernel log alone (an inode, no generation) gets the path of
// the lookup asked with generation 0, not one asked with a generation.
func TestAttachPathWithoutGeneration(t *testing.T) {
	e := engine(t, "")
	ino := uint64(131)
	d := e.Evaluate(ev(euclean, func(x *event.Event) { x.Inode, x.PathPending = &ino, true }), t0)
	if len(d.Alerts) != 1 {
		t.Fatalf("alerts %+v, want one", d.Alerts)
	}
	e.Changed()
	fsKey := ev(euclean).FSKey()
	if e.AttachPath(fsKey, ino, 5, "/srv/other", "") {
		t.Error("a lookup with a generation was attached to an event without one")
	}
	if !e.AttachPath(fsKey, ino, 0, "/srv/x", "") {
		t.Fatal("the path was not attached")
	}
	if ch := e.Changed(); len(ch) != 1 || ch[0].LastEvent.Path != "/srv/x" || ch[0].LastEvent.PathPending || ch[0].LastEvent.Generation != nil {
		t.Errorf("changed incidents %+v, want the one with the path and still no generation", ch)
	}
}
