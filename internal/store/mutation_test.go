package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStartActionChecksTheAction: StartAction on an action that does not
// exist, or that is already finished, fails and says which; the start time
// of a finished action is not changed.
func TestStartActionChecksTheAction(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "scrub"}}}
	commit(t, s, b)
	id := b.Actions[0].ID
	if err := s.StartAction(ctx, id+1, base); !errors.Is(err, ErrNotFound) {
		t.Errorf("starting an unknown action: %v, want ErrNotFound", err)
	}
	if err := s.FinishAction(ctx, id, StateDone, "ok", "", base, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.StartAction(ctx, id, base.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "already done") {
		t.Errorf("starting a finished action: %v, want \"already done\"", err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("Actions: %+v, %v", all, err)
	}
	if !all[0].Started.Equal(base) {
		t.Errorf("the finished action's start is %v, want %v", all[0].Started, base)
	}
}

// TestOutputOfExactlyMaxOutputIsKept: output of MaxOutput bytes is kept
// whole; one byte more is cut and marked.
func TestOutputOfExactlyMaxOutputIsKept(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{
		{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "a"},
		{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "b"},
	}}
	commit(t, s, b)
	fit := strings.Repeat("o", MaxOutput)
	if err := s.FinishAction(ctx, b.Actions[0].ID, StateDone, "", fit, base, base); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAction(ctx, b.Actions[1].ID, StateDone, "", fit+"x", base, base); err != nil {
		t.Fatal(err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("Actions: %d, %v", len(all), err)
	}
	if all[0].Output != fit {
		t.Errorf("output of exactly %d bytes stored as %d bytes ending %q", MaxOutput, len(all[0].Output), all[0].Output[len(all[0].Output)-20:])
	}
	if o := all[1].Output; len(o) != MaxOutput || !strings.HasSuffix(o, "\n[output truncated]") {
		t.Errorf("output of %d bytes stored as %d bytes ending %q", MaxOutput+1, len(o), o[len(o)-20:])
	}
}

// TestOutputThatIsNotTextIsCut: output longer than MaxOutput made only of
// UTF-8 continuation bytes (a command writing binary data) has no rune
// boundary to cut at: what is kept is the mark alone, not a panic.
func TestOutputThatIsNotTextIsCut(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "a"}}}
	commit(t, s, b)
	if err := s.FinishAction(ctx, b.Actions[0].ID, StateFailed, "", strings.Repeat("\x80", MaxOutput+1), base, base); err != nil {
		t.Fatal(err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("Actions: %d, %v", len(all), err)
	}
	if o := all[0].Output; o != "\n[output truncated]" {
		t.Errorf("output stored as %d bytes starting %q, want the mark alone", len(o), o[:min(len(o), 20)])
	}
}
