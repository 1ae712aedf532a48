package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestPrometheusRules runs promtool on the shipped alerting rules: they
// load (check rules) and their unit tests pass (test rules).
func TestPrometheusRules(t *testing.T) {
	testutil.RequireCommand(t, "promtool", "prometheus")
	promtool, err := loopfs.FindTool("promtool")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../dist/prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName finds the metric names in a PromQL expression: fshealth's, and
// any other selector (a name followed by { or [).
var metricName = regexp.MustCompile(`\b(fshealth_[a-z_]+|[a-z_:][a-z0-9_:]*)\s*[{\[]`)

// promQLWords are the names before "{" or "[" that are not metrics.
var promQLWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// exprMetrics returns the metric names exprs use.
func exprMetrics(exprs []string) map[string][]string {
	used := map[string][]string{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllStringSubmatch(e, -1) {
			if !promQLWords[m[1]] {
				used[m[1]] = append(used[m[1]], e)
			}
		}
		for _, m := range regexp.MustCompile(`\bfshealth_[a-z_]+\b`).FindAllString(e, -1) {
			used[m] = append(used[m], e)
		}
	}
	return used
}

// served returns the sample names of a scrape.
func served(body []byte) map[string]bool {
	s := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, _, _ := strings.Cut(l, "{")
		name, _, _ = strings.Cut(name, " ")
		s[name] = true
	}
	return s
}

// TestDashboardAndAlertsUseServedMetrics: every metric the Grafana dashboard
// and the alerting rules query is one a real daemon serves — scraped from a
// daemon that saw a real ext4 error, ran a (dry-run) recovery action and
// delivered an alert, and from one whose history is degraded. Before its
// first error, a watched file system's error counters are there, at 0.
func TestDashboardAndAlertsUseServedMetrics(t *testing.T) {
	im := newFS(t)
	uuid := ext4UUID(t, im)
	wh := newReceiver(t)
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s

[[rule]]
name = "all"
actions = [{name = "remount-ro", dry_run = true}]
`, tomlString(wh.URL())), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	fsLabels := fmt.Sprintf(`device=%q,errno="%%s",fstype="ext4",mountpoint=%q,uuid=%q`, im.Dev, im.Mountpoint, uuid)
	var zero []string
	for _, errno := range []string{"EIO", "EUCLEAN", "EBADMSG", "ESHUTDOWN", "EROFS"} {
		zero = append(zero, "fshealth_filesystem_errors_total{"+fmt.Sprintf(fsLabels, errno)+"} 0",
			"fshealth_filesystem_error_events_total{"+fmt.Sprintf(fsLabels, errno)+"} 0")
	}
	zero = append(zero, `fshealth_delivery_attempts_total{channel="hq"} 0`, `fshealth_delivery_failures_total{channel="hq"} 0`,
		`fshealth_queue_overflows_total 0`)
	scrape(t, d, zero, nil)

	trigger(t, im, "e2e: dashboard")
	waitErrors(t, state, 1)
	wh.waitAccepted(t, 1)
	body := scrape(t, d, []string{
		"fshealth_filesystem_errors_total{" + fmt.Sprintf(fsLabels, "EUCLEAN") + "} 1",
		`fshealth_delivery_attempts_total{channel="hq"} 1`,
		`fshealth_actions_total{action="remount-ro",result="dry_run"} 1`,
	}, []string{"fshealth_history_commit_duration_seconds_bucket{"})
	d.stop()
	have := served(body)

	// A daemon whose state directory is refused (group-writable): degraded.
	bad := filepath.Join(dir, "bad-state")
	if err := os.Mkdir(bad, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bad, 0o770); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, cfg, bad)
	body = scrape(t, d, nil, []string{"fshealth_history_degraded{"})
	d.stop()
	for n := range served(body) {
		have[n] = true
	}

	var exprs []string
	b, err := os.ReadFile("../../dist/prometheus/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	dashUsed := exprMetrics(exprs)
	if len(dashUsed) < 10 {
		t.Errorf("the dashboard queries only %d metrics: %v", len(dashUsed), dashUsed)
	}
	for m, in := range dashUsed {
		if !have[m] {
			t.Errorf("the dashboard queries %s, which the daemon does not serve (in %q)", m, in)
		}
	}

	rules, err := os.ReadFile("../../dist/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The rules' expressions: each "expr:" value, folded lines included.
	var ruleExprs []string
	lines := strings.Split(string(rules), "\n")
	for i := 0; i < len(lines); i++ {
		_, v, ok := strings.Cut(lines[i], "expr: ")
		if !ok {
			continue
		}
		if v == "|-" {
			v = ""
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "          ") {
				i++
				v += lines[i] + "\n"
			}
		}
		ruleExprs = append(ruleExprs, v)
	}
	if len(ruleExprs) < 10 {
		t.Fatalf("found %d rule expressions in alerts.yaml", len(ruleExprs))
	}
	var names []string
	for m, in := range exprMetrics(ruleExprs) {
		names = append(names, m)
		if !have[m] && m != "up" { // up is Prometheus's own
			t.Errorf("an alert queries %s, which the daemon does not serve (in %q)", m, in)
		}
	}
	sort.Strings(names)
	if !slices.Contains(names, "fshealth_filesystem_healthy") {
		t.Errorf("the rules' metrics %v lack fshealth_filesystem_healthy", names)
	}
}
