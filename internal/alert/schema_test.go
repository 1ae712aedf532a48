package alert_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/webhook"
	"github.com/fshealth/fshealth/internal/policy"
)

// events returns the events of internal/event's golden file (every kind
// and optional part an event has, as fshealth prints them) and the event
// of webhook.HostileAlert, whose every string is hostile.
func events(t *testing.T) []*event.Event {
	f, err := os.Open("../event/testdata/events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, &e)
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("%d events: %v", len(out), err)
	}
	// fshealth formats or picks these itself, never from what a file
	// system or the kernel log says: they stay valid.
	h := webhook.HostileAlert().Event
	h.DeviceNumber, h.Handle.Bytes, h.CorroboratedBy = "7:0", "0a1b", event.CorroboratedExt4Count
	h.Redundancy.Change, h.Btrfs.Counter = "member-faulty", "write"
	return append(out, h)
}

// alerts runs events through the policy engine with the default rules and
// returns every alert it raises: first alerts, digests of the errors
// folded after them, reminders and, when the file systems are resolved,
// the last digests and the resolved alerts.
func alerts(t *testing.T, evs []*event.Event) []alert.Alert {
	c, err := config.Parse("t.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	flood := config.Flood{Window: time.Minute, ReminderInitial: time.Hour, ReminderMax: 4 * time.Hour}
	e := policy.New(c.Rules, flood, policy.Options{Host: "host1", Channels: c.ChannelNames()})
	now := time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC)
	var out []alert.Alert
	for range 2 { // the second round is folded into digests
		for _, ev := range evs {
			now = now.Add(time.Second)
			out = append(out, e.Evaluate(ev, now).Alerts...)
		}
	}
	out = append(out, e.Tick(now.Add(2*time.Minute))...)
	out = append(out, e.Tick(now.Add(2*time.Hour))...)
	now = now.Add(3 * time.Hour)
	for _, inc := range e.Incidents() {
		out = append(out, e.Resolve(inc.FSKey, now)...)
	}
	return out
}

// TestAlertsMatchSchema checks that every kind of alert the policy engine
// raises from fshealth's events, and the test alert, sent as a webhook's
// default body to a real HTTP server, is valid against
// docs/alert.schema.json.
func TestAlertsMatchSchema(t *testing.T) {
	schema := notifytest.AlertSchema(t)
	as := alerts(t, events(t))
	test := webhook.SampleAlert()
	test.Type, test.Event = alert.TypeTest, nil
	as = append(as, *test)

	types := map[string]int{}
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	n, err := webhook.New(webhook.Config{URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for i := range as {
		types[as[i].Type]++
		if err := n.Send(context.Background(), &as[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, typ := range []string{alert.TypeError, alert.TypeDigest, alert.TypeReminder, alert.TypeResolved, alert.TypeTest} {
		if types[typ] == 0 {
			t.Errorf("no %s alert among %v", typ, types)
		}
	}
	for i, r := range rcv.Requests() {
		notifytest.CheckAlertJSON(t, schema, as[i].Type+" alert "+as[i].ID, r.Body)
	}
	t.Logf("%d alerts checked: %v", len(as), types)
}

// TestSchemaRejects checks that the schema is strict: a valid alert with
// a key missing, a key it does not know, a wrong type or a summary of two
// lines is refused.
func TestSchemaRejects(t *testing.T) {
	schema := notifytest.AlertSchema(t)
	good, err := json.Marshal(alerts(t, events(t)[:1])[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := notifytest.ValidateAlertJSON(schema, good); err != nil {
		t.Fatalf("a valid alert is refused: %v", err)
	}
	for name, edit := range map[string]func(m map[string]any){
		"missing id":           func(m map[string]any) { delete(m, "id") },
		"unknown key":          func(m map[string]any) { m["extra"] = 1 },
		"unknown type":         func(m map[string]any) { m["type"] = "panic" },
		"count as string":      func(m map[string]any) { m["count"] = "1" },
		"summary of two lines": func(m map[string]any) { m["summary"] = "a\nb" },
		"time not a time":      func(m map[string]any) { m["time"] = "yesterday" },
		"unknown event key":    func(m map[string]any) { m["event"].(map[string]any)["extra"] = true },
		"event without errno":  func(m map[string]any) { delete(m["event"].(map[string]any), "errno") },
	} {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		err := notifytest.ValidateAlertJSON(schema, b)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "alert.schema.json") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
