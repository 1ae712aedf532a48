package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/storage"
)

// TestRedundancyEventText: a redundancy event's text line and summary say
// what changed in which array, and its JSON carries the change.
func TestRedundancyEventText(t *testing.T) {
	r := &storage.Redundancy{Change: storage.ChangeMemberFaulty, Array: "md0", Level: "raid1", Member: "sdb2\nforged", Degraded: 1, RaidDisks: 2}
	e := &Event{Kind: KindRedundancy, Source: SourceMD, Time: Time{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, ErrorCount: 1,
		Device: "/dev/md0", FSType: "ext4", Mountpoints: []string{"/srv"}, Redundancy: r, Message: r.String()}
	line := string(AppendText(nil, e))
	if !strings.Contains(line, " REDUNDANCY member-faulty on /dev/md0 ext4 at /srv") || strings.Count(line, "\n") != 1 {
		t.Errorf("text line %q", line)
	}
	if !strings.Contains(line, `member sdb2\nforged faulty, 1 of 2 members missing`) {
		t.Errorf("text line %q lacks the escaped description", line)
	}
	if s := Summary(e); !strings.HasPrefix(s, "redundancy member-faulty: md array md0 (raid1): member ") || strings.Contains(s, "\n") {
		t.Errorf("summary %q", s)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"redundancy"`) || !strings.Contains(string(b), `"redundancy":{"change":"member-faulty","array":"md0"`) {
		t.Errorf("JSON %s", b)
	}
}
