package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// nagiosLine matches the one line of the Nagios plugin protocol that
// `fshealth check` prints, with or without performance data.
var nagiosLine = regexp.MustCompile(`^FSHEALTH (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| ([a-z_]+=[0-9]+;[0-9]*;[0-9]*;0 ?)+)?\n$`)

// check runs `fshealth check` and returns its output and exit status,
// checking the output's form for the format.
func check(t *testing.T, state string, args ...string) (string, int) {
	t.Helper()
	out, errOut, code := run(t, append([]string{"check", "--state-dir", state}, args...)...)
	npd := strings.Contains(strings.Join(args, " "), "--format npd")
	if strings.Contains(strings.Join(args, " "), "--format json") {
		return out, code
	}
	switch {
	case npd && (strings.Count(out, "\n") != 1 || len(out) > 81):
		t.Errorf("check %v: the npd message must be one line of at most 80 bytes: %q", args, out)
	case !npd && !nagiosLine.MatchString(out):
		t.Errorf("check %v: not one Nagios status line: %q (stderr %q)", args, out, errOut)
	}
	return out, code
}

// wantCheck runs a check and fails the test unless it exits with code and
// prints every string of want.
func wantCheck(t *testing.T, state string, code int, want []string, args ...string) string {
	t.Helper()
	out, got := check(t, state, args...)
	if got != code {
		t.Errorf("check %v: exit %d, want %d: %q", args, got, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("check %v: output lacks %q: %q", args, w, out)
		}
	}
	return out
}

// TestCheck: `fshealth check` against a real daemon's history, through a
// real ext4 corruption error, a real abort (ESHUTDOWN), `fshealth resolve`,
// a stopped daemon, a degraded daemon (state file system read-only) and a
// corrupt database: OK, CRITICAL, OK again, WARNING, UNKNOWN, in both the
// Nagios and the node-problem-detector protocols.
func TestCheck(t *testing.T) {
	im := newFS(t)
	sfs := testutil.NewImage(t, "ext4", 32<<20, "errors=continue")
	state := filepath.Join(sfs.Mountpoint, "state")
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	// A webhook nobody listens on: its alerts stay pending.
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf("\n[[webhook]]\nname = \"nowhere\"\nurl = %s\n",
		tomlString("http://"+freeAddr(t)+"/alerts")), 0o600)
	d := startDaemon(t, cfg, state)
	npd := []string{"--format", "npd"}
	npdCfg := shippedNPDConfig(t)
	healthy := map[string]int{"FilesystemCorrupted": 0, "FilesystemShutdown": 0, "FilesystemIOError": 0, "FilesystemRedundancyLost": 0}
	if v := npdVerdicts(t, npdCfg, state); !maps.Equal(v, healthy) {
		t.Errorf("node-problem-detector's rules before any error: %v, want %v", v, healthy)
	}

	wantCheck(t, state, 0, []string{"FSHEALTH OK - 1 file system(s) watched, none with errors", "unhealthy=0;;0;0", "watched=1;"})
	wantCheck(t, state, 0, []string{"1 file system(s) healthy"}, "--fs", im.Mountpoint)
	wantCheck(t, state, 0, nil, npd...)
	wantCheck(t, state, 3, []string{"FSHEALTH UNKNOWN - no file system known as /nowhere"}, "--fs", "/nowhere")
	wantCheck(t, state, 2, []string{"unknown /nowhere"}, "--format", "npd", "--fs", "/nowhere")

	trigger(t, im, "e2e: check")
	waitErrors(t, state, 1)
	crit := []string{"FSHEALTH CRITICAL - " + im.Mountpoint + " (" + im.Dev + " ext4): 1 error(s) since ", "EUCLEAN corrupted x1", "unhealthy=1;;0;0", "errors=1;"}
	wantCheck(t, state, 2, crit)
	wantCheck(t, state, 2, crit, "--fs", im.Dev)
	wantCheck(t, state, 2, crit, "--condition", "corrupted")
	wantCheck(t, state, 0, []string{"FSHEALTH OK"}, "--condition", "shutdown")
	wantCheck(t, state, 1, []string{im.Mountpoint + " EUCLEAN"}, "--format", "npd", "--condition", "corrupted")
	wantCheck(t, state, 0, nil, "--format", "npd", "--condition", "shutdown")
	// The alert cannot be delivered: it waits.
	wantCheck(t, state, 2, []string{"alert(s) to nowhere waiting since", "alerts_pending=1;"}, "--backlog-age", "1ns")
	wantCheck(t, state, 0, []string{"alerts stuck"}, "--format", "npd", "--condition", "shutdown", "--backlog-age", "1ns")

	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	waitErrors(t, state, 2)
	wantCheck(t, state, 2, []string{"ESHUTDOWN shutdown x1", "EUCLEAN corrupted x1"}, "--condition", "shutdown")
	wantCheck(t, state, 1, []string{"ESHUTDOWN"}, "--format", "npd", "--condition", "shutdown")
	wantCheck(t, state, 0, nil, "--format", "npd", "--condition", "io-error")
	out, code := check(t, state, "--format", "json")
	var doc struct {
		State    string
		Message  string
		Findings []struct{ State, Short, Text string }
		Perf     map[string]uint64
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 2 || doc.State != "CRITICAL" || len(doc.Findings) == 0 ||
		doc.Findings[0].State != "CRITICAL" || !strings.Contains(doc.Message, "ESHUTDOWN") || doc.Perf["unhealthy"] != 1 {
		t.Errorf("check --format json: exit %d (want 2), %v: %s", code, err, out)
	}
	want := map[string]int{"FilesystemCorrupted": 1, "FilesystemShutdown": 1, "FilesystemIOError": 0, "FilesystemRedundancyLost": 0}
	if v := npdVerdicts(t, npdCfg, state); !maps.Equal(v, want) {
		t.Errorf("node-problem-detector's rules after EUCLEAN and ESHUTDOWN: %v, want %v", v, want)
	}

	out = mustRun(t, "resolve", "--state-dir", state, im.Mountpoint)
	if !strings.Contains(out, "marked healthy") {
		t.Errorf("fshealth resolve said %q", out)
	}
	wantCheck(t, state, 0, []string{"FSHEALTH OK", "unhealthy=0;"})
	wantCheck(t, state, 0, nil, "--format", "npd")
	if v := npdVerdicts(t, npdCfg, state); !maps.Equal(v, healthy) {
		t.Errorf("node-problem-detector's rules after fshealth resolve: %v, want %v", v, healthy)
	}

	d.stop()
	wantCheck(t, state, 1, []string{"FSHEALTH WARNING - the fshealth daemon is not running"})
	wantCheck(t, state, 2, []string{"daemon not running"}, npd...)

	// The next daemon cannot record its history: its state is read-only.
	if out, err := exec.Command("mount", "-o", "remount,ro", sfs.Mountpoint).CombinedOutput(); err != nil {
		t.Fatalf("remounting the state read-only: %v\n%s", err, out)
	}
	d = startDaemon(t, cfg, state)
	degraded := func() bool {
		out, _ := check(t, state)
		return strings.Contains(out, "history degraded: history not recorded since")
	}
	eventually(t, func() string { out, _ := check(t, state); return "check does not say degraded: " + out }, degraded)
	wantCheck(t, state, 1, []string{"FSHEALTH WARNING - history degraded: history not recorded since", "read-only"})
	wantCheck(t, state, 2, []string{"history not recorded (degraded)"}, npd...)
	d.stop()
	if out, err := exec.Command("mount", "-o", "remount,rw", sfs.Mountpoint).CombinedOutput(); err != nil {
		t.Fatalf("remounting the state read-write: %v\n%s", err, out)
	}

	// A corrupt database is UNKNOWN, never OK.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "fshealth.db"), []byte(strings.Repeat("not a database\n", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, bad, 3, []string{"FSHEALTH UNKNOWN - cannot read the history: "})
	wantCheck(t, bad, 2, []string{"history unreadable"}, npd...)
	// So is a missing one.
	wantCheck(t, t.TempDir(), 3, []string{"FSHEALTH UNKNOWN - cannot read the history: no history at "})
}

// npdConfig is the part of node-problem-detector's custom plugin monitor
// configuration that dist/npd/fshealth-plugin-monitor.json uses, decoded
// strictly (an unknown or misspelt key is an error).
type npdConfig struct {
	Plugin       string `json:"plugin"`
	PluginConfig struct {
		InvokeInterval  string `json:"invoke_interval"`
		Timeout         string `json:"timeout"`
		MaxOutputLength int    `json:"max_output_length"`
		Concurrency     int    `json:"concurrency"`
		MessageChange   bool   `json:"enable_message_change_based_condition_update"`
	} `json:"pluginConfig"`
	Source           string `json:"source"`
	MetricsReporting bool   `json:"metricsReporting"`
	Conditions       []struct {
		Type, Reason, Message string
	} `json:"conditions"`
	Rules []struct {
		Type      string   `json:"type"`
		Condition string   `json:"condition"`
		Reason    string   `json:"reason"`
		Path      string   `json:"path"`
		Args      []string `json:"args"`
		Timeout   string   `json:"timeout"`
	} `json:"rules"`
}

// shippedNPDConfig reads and checks dist/npd/fshealth-plugin-monitor.json
// the way node-problem-detector validates it: plugin "custom", durations
// that parse, no rule timeout above the global one, a default condition for
// every permanent rule; and that it runs the packaged binary's check.
func shippedNPDConfig(t *testing.T) npdConfig {
	t.Helper()
	b, err := os.ReadFile("../../dist/npd/fshealth-plugin-monitor.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c npdConfig
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("dist/npd/fshealth-plugin-monitor.json: %v", err)
	}
	if c.Plugin != "custom" {
		t.Errorf("plugin %q, want custom", c.Plugin)
	}
	global, err := time.ParseDuration(c.PluginConfig.Timeout)
	if err != nil {
		t.Errorf("timeout: %v", err)
	}
	if _, err := time.ParseDuration(c.PluginConfig.InvokeInterval); err != nil {
		t.Errorf("invoke_interval: %v", err)
	}
	if c.PluginConfig.MaxOutputLength < 80 {
		t.Errorf("max_output_length %d cuts check's messages (up to 80 bytes)", c.PluginConfig.MaxOutputLength)
	}
	conds := map[string]bool{}
	for _, cd := range c.Conditions {
		if !regexp.MustCompile(`^Filesystem[A-Z][A-Za-z]+$`).MatchString(cd.Type) || cd.Reason == "" || cd.Message == "" {
			t.Errorf("condition %+v: want a FilesystemXxx type, a reason and a message", cd)
		}
		conds[cd.Type] = true
	}
	if len(c.Rules) != len(c.Conditions) {
		t.Errorf("%d rules for %d conditions", len(c.Rules), len(c.Conditions))
	}
	for _, r := range c.Rules {
		if r.Type != "permanent" || !conds[r.Condition] {
			t.Errorf("rule %+v: want a permanent rule of a declared condition", r)
		}
		if d, err := time.ParseDuration(r.Timeout); err != nil || d > global {
			t.Errorf("rule %s: timeout %q: %v (global %v)", r.Condition, r.Timeout, err, global)
		}
		if r.Path != "/usr/bin/fshealth" || len(r.Args) < 3 || r.Args[0] != "check" || !slices.Contains(r.Args, "npd") {
			t.Errorf("rule %s runs %s %q, want /usr/bin/fshealth check --format npd ...", r.Condition, r.Path, r.Args)
		}
	}
	return c
}

// npdVerdicts runs every rule of the shipped NPD configuration against the
// history in state and returns each condition's exit status.
func npdVerdicts(t *testing.T, c npdConfig, state string) map[string]int {
	t.Helper()
	v := map[string]int{}
	for _, r := range c.Rules {
		out, code := check(t, state, append(r.Args[1:], "--state-dir", state)...)
		t.Logf("%s: exit %d: %s", r.Condition, code, strings.TrimSpace(out))
		v[r.Condition] = code
	}
	return v
}
