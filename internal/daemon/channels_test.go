package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/notify/notifytest"
	"github.com/fshealth/fshealth/internal/notify/webhook"
)

// TestWebhookFormatFromConfig checks that a webhook's format key, read
// from a configuration, selects the built-in message the channel sends.
func TestWebhookFormatFromConfig(t *testing.T) {
	rcv := notifytest.NewReceiver(t, http.StatusOK, "")
	c, err := config.Parse("f.toml", []byte("[journal]\nmode = \"stderr\"\n[[webhook]]\nname = \"d\"\nurl = \""+rcv.URL+"\"\nformat = \"discord\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := BuildChannels(c, "test", io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	if err := ch.ByName["d"].Send(context.Background(), webhook.SampleAlert()); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Content string `json:"content"`
		Embeds  []any  `json:"embeds"`
	}
	r := rcv.Requests()[0]
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Content == "" || len(body.Embeds) != 1 {
		t.Errorf("body is not a Discord message (%v): %s", err, r.Body)
	}
}
