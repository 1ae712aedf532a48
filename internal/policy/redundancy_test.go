package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// redundancyEv is a redundancy event about md0 under the file system u1.
func redundancyEv(change, member string) *event.Event {
	r := &storage.Redundancy{Change: change, Array: "md0", Level: "raid1", Member: member, Degraded: 1, RaidDisks: 2}
	if change == storage.ChangeRestored {
		r.Degraded = 0
	}
	return ev(0, func(e *event.Event) {
		e.Kind, e.Source, e.Error, e.ErrorText = event.KindRedundancy, event.SourceMD, "", ""
		e.Redundancy, e.Message = r, r.String()
	})
}

// TestRedundancyIncidentResolvedWhenRestored: a leg lost opens an
// incident of its own beside the file system's error incident, alerted at
// once, with no recovery action run; the array whole again resolves it,
// and only it.
func TestRedundancyIncidentResolvedWhenRestored(t *testing.T) {
	e := engine(t, `
[[rule]]
name = "remount"
severity = "critical"
actions = [{name = "remount-ro"}]
`)
	e.Evaluate(ev(eio), t0)
	d := e.Evaluate(redundancyEv(storage.ChangeMemberFaulty, "sdb1"), at(sec))
	if len(d.Alerts) != 1 || d.Alerts[0].Type != alert.TypeError || d.Alerts[0].ErrorKind != KindRedundancy {
		t.Fatalf("alerts of the lost leg: %+v", d.Alerts)
	}
	if want := "redundancy on /dev/sda1 (/srv): md array md0 (raid1): member sdb1 faulty, 1 of 2 members missing"; !strings.HasPrefix(d.Alerts[0].Summary, want) {
		t.Errorf("summary %q, want %q", d.Alerts[0].Summary, want)
	}
	if len(d.Actions) != 0 || len(d.Withheld) != 0 {
		t.Errorf("recovery actions for a lost leg: %+v %+v", d.Actions, d.Withheld)
	}
	e.Evaluate(redundancyEv(storage.ChangeMemberRemoved, "sdb1"), at(2*sec))
	e.Changed()
	d = e.Evaluate(redundancyEv(storage.ChangeRestored, ""), at(time.Minute))
	var types []string
	for _, a := range d.Alerts {
		types = append(types, a.Type+"/"+a.ErrorKind)
	}
	if want := []string{"digest/redundancy", "resolved/redundancy"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("restored sent %q, want %q", types, want)
	}
	if ch := e.Changed(); len(ch) != 1 || ch[0].Resolved.IsZero() || ch[0].ErrorKind != KindRedundancy {
		t.Errorf("changed %+v", ch)
	}
	if inc := e.Incidents(); len(inc) != 1 || inc[0].ErrorKind != "EIO" {
		t.Errorf("open incidents %+v, want the EIO one only", inc)
	}
	if d := e.Evaluate(redundancyEv(storage.ChangeRestored, ""), at(2*time.Minute)); len(d.Alerts) != 0 {
		t.Errorf("a second restore alerted: %+v", d.Alerts)
	}
}
