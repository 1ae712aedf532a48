package store

import (
	"encoding/json"
	"testing"
)

// TestIncidentState: the policy engine's state of an incident is returned
// as stored, and an incident stored without one has none.
func TestIncidentState(t *testing.T) {
	s := openTemp(t)
	state := json.RawMessage(`{"window":[1,2],"note":"x"}`)
	with := Incident{Key: IncidentKey(fs1.UUID, "EIO"), ErrorKind: "EIO", Opened: base, State: state}
	without := Incident{Key: IncidentKey(fs2.UUID, "EIO"), ErrorKind: "EIO", Opened: base}
	commit(t, s, &Batch{Incidents: []Incident{with, without}})
	got, ok, err := s.Incident(ctx, with.Key)
	if err != nil || !ok || string(got.State) != string(state) {
		t.Errorf("state %q (%v, %v), want %q", got.State, ok, err, state)
	}
	got, ok, err = s.Incident(ctx, without.Key)
	if err != nil || !ok || got.State != nil {
		t.Errorf("state of an incident stored without one: %q (nil %v; %v, %v), want none", got.State, got.State == nil, ok, err)
	}
}
