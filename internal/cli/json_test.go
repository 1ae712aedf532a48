package cli_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// configVerdict and testAlertResult are the documented JSON of
// check-config --json and test-alert --json.
type configVerdict struct {
	OK       bool
	File     string
	Channels []string
	Rules    int
	Warnings []string
	Problems []configProblem
}

type configProblem struct {
	File, Key, Message string
	Line               int
}

type testAlertResult struct {
	AlertID  string `json:"alert_id"`
	Channels []struct {
		Name  string
		OK    bool
		Error string
	}
}

// TestCheckConfigJSON: check-config --json prints one object with the
// verdict, the file, channels, rules and warnings; a refused configuration
// gives every problem with its line and key, exit status 1 and nothing on
// stderr.
func TestCheckConfigJSON(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(`[flood]
window = "0s"

[[webhook]]
name = "ops"
url = "http://127.0.0.1:9/x"

[[rule]]
name = "all"
channels = ["ops"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "check-config", "--config", good, "--json")
	var v configVerdict
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 0 || stderr != "" {
		t.Fatalf("check-config --json on a good file: exit %d, %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	if !v.OK || v.File != good || strings.Join(v.Channels, ",") != "journal,ops" || v.Rules != 1 ||
		len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "window") || len(v.Problems) != 0 {
		t.Errorf("verdict on a good file: %+v", v)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[webhook]]\nname = \"ops\"\nurl = \"ftp://x\"\n\n[flood]\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = run(t, "check-config", "--config", bad, "--json")
	v = configVerdict{}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 1 || stderr != "" {
		t.Fatalf("check-config --json on a bad file: exit %d, %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	if v.OK || len(v.Problems) != 2 {
		t.Fatalf("verdict on a bad file: %+v, want 2 problems", v)
	}
	for i, want := range []configProblem{{File: bad, Line: 3, Key: "webhook[1].url"}, {File: bad, Line: 6}} {
		p := v.Problems[i]
		if p.File != want.File || p.Line != want.Line || p.Key != want.Key || p.Message == "" {
			t.Errorf("problem %d: %+v, want file %s line %d key %q and a message", i+1, p, want.File, want.Line, want.Key)
		}
	}
	if !strings.Contains(v.Problems[1].Message, "bogus") {
		t.Errorf("unknown key problem %q does not name the key", v.Problems[1].Message)
	}

	missing := filepath.Join(dir, "missing.toml")
	stdout, _, code = run(t, "check-config", "--config", missing, "--json")
	v = configVerdict{}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 1 || v.OK || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Message, missing) {
		t.Errorf("check-config --json on a missing file: exit %d, %v, %+v", code, err, v)
	}
}

// TestTestAlertJSON: test-alert --json reports each channel's answer in one
// object and exits 1 when one failed; the receiver that answered got the
// alert whose id is reported.
func TestTestAlertJSON(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "f.toml")
	if err := os.WriteFile(cfg, []byte(`[journal]
mode = "stderr"

[[webhook]]
name = "up"
url = "`+srv.URL+`"

[[webhook]]
name = "down"
url = "http://`+closed+`/"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "test-alert", "--config", cfg, "--json", "--timeout", "10s")
	var r testAlertResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != 1 {
		t.Fatalf("test-alert --json: exit %d (want 1), %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	byName := map[string]struct {
		Name  string
		OK    bool
		Error string
	}{}
	for _, c := range r.Channels {
		byName[c.Name] = c
	}
	if len(r.Channels) != 3 || !byName["up"].OK || byName["down"].OK || byName["down"].Error == "" || !byName["journal"].OK {
		t.Errorf("channels: %+v; want journal and up ok, down failed with its error", r.Channels)
	}
	select {
	case b := <-got:
		if !strings.Contains(string(b), `"id":"`+r.AlertID+`"`) {
			t.Errorf("the webhook got %s, not alert %s", b, r.AlertID)
		}
	default:
		t.Error("the webhook that answered got nothing")
	}
}
