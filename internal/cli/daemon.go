package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/event"
)

// daemonFlags are the flags that override the configuration file.
type daemonFlags struct {
	config        string
	stateDir      string
	webhooks      []string
	alertmanagers []string
	hooksDir      string
	metricsListen string
	hostname      string
}

func (f *daemonFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "configuration file (default "+config.DefaultPath+"; without it the defaults apply)")
	fl.StringVar(&f.stateDir, "state-dir", "", "where history and the delivery outbox live (default "+config.DefaultStateDir+")")
	fl.StringArrayVar(&f.webhooks, "webhook", nil, "also POST alerts to this URL (repeatable)")
	fl.StringArrayVar(&f.alertmanagers, "alertmanager", nil, "also send alerts to this Alertmanager (repeatable)")
	fl.StringVar(&f.hooksDir, "hooks-dir", "", "run every executable in this directory for each alert")
	fl.StringVar(&f.metricsListen, "metrics-listen", config.DefaultMetricsListen, `serve Prometheus metrics here ("" = off)`)
	fl.StringVar(&f.hostname, "hostname", "", "the host name alerts carry (default: the machine's; in a container, pass the node's)")
}

// overrides turns the flags the user gave into config overrides.
func (f *daemonFlags) overrides(cmd *cobra.Command) config.Overrides {
	var o config.Overrides
	fl := cmd.Flags()
	if fl.Changed("state-dir") {
		o.StateDir = &f.stateDir
	}
	if fl.Changed("hooks-dir") {
		o.HooksDir = &f.hooksDir
	}
	if fl.Changed("metrics-listen") {
		o.MetricsListen = &f.metricsListen
	}
	if fl.Changed("hostname") {
		o.Hostname = &f.hostname
	}
	o.Webhooks, o.Alertmanagers = f.webhooks, f.alertmanagers
	return o
}

func newDaemonCmd(g *globals) *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon [flags]",
		Short: "Run the file system health monitor service",
		Long: `Run fshealth as a service: watch every file system that can report errors,
record each error in a history database before anything else happens, log it
to the journal, deliver alerts (webhooks, e-mail, Alertmanager, hook programs)
through a durable outbox that retries until they arrive, and run recovery
actions by policy.

With no configuration file it watches everything, keeps history in
` + config.DefaultStateDir + `, logs to the journal and serves metrics on
` + config.DefaultMetricsListen + `. Flags override the file. SIGHUP reloads the
configuration (a bad one is refused and the old one kept); SIGINT and SIGTERM
stop it. It tells systemd READY=1 once every file system is watched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.Run(cmd.Context(), daemon.Options{ConfigPath: f.config, Overrides: f.overrides(cmd),
				Version: Version, Logger: g.logger(), Stderr: g.stderr})
		},
	}
	f.add(cmd)
	return cmd
}

func newCheckConfigCmd(g *globals) *cobra.Command {
	var f daemonFlags
	var show, asJSON bool
	cmd := &cobra.Command{
		Use:   "check-config [--config FILE] [--show] [--json]",
		Short: "Check a configuration file without starting anything",
		Long: `Check the configuration as the daemon would read it (the file, then the
flags), including that every channel can be built (templates, addresses).
--show prints the resulting configuration with secrets redacted. --json
prints the verdict as one JSON object: ok, file, channels, rules, warnings
and problems (each with file, line, key and message); the exit status is 1
when the configuration is refused, as without it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemon.LoadConfig(f.config, f.overrides(cmd))
			var chans *daemon.Channels
			if err == nil {
				chans, err = daemon.BuildChannels(c, Version, g.stderr, g.logger())
			}
			if asJSON {
				return printConfigVerdict(g, f.config, c, chans, err)
			}
			if err != nil {
				return err
			}
			chans.Close()
			for _, w := range c.Warnings {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			if show {
				fmt.Fprint(g.stdout, c.Redacted())
				return nil
			}
			src := c.File
			if src == "" {
				src = "built-in defaults (no configuration file)"
			}
			fmt.Fprintf(g.stdout, "configuration OK: %s: %d channels (%s), %d rules\n", src,
				len(chans.ByName), strings.Join(c.ChannelNames(), ", "), len(c.Rules))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&show, "show", false, "print the effective configuration, secrets redacted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as one JSON object")
	cmd.MarkFlagsMutuallyExclusive("show", "json")
	return cmd
}

// configVerdict is check-config --json's output.
type configVerdict struct {
	OK bool `json:"ok"`
	// File is the configuration file read; "" for the built-in defaults.
	File     string          `json:"file"`
	Channels []string        `json:"channels"`
	Rules    int             `json:"rules"`
	Warnings []string        `json:"warnings"`
	Problems []configProblem `json:"problems"`
}

// configProblem is one reason a configuration is refused.
type configProblem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// printConfigVerdict prints check-config's verdict on c (nil when loading
// it failed) as JSON, returning exit status 1 when err refused it.
func printConfigVerdict(g *globals, path string, c *config.Config, chans *daemon.Channels, err error) error {
	v := configVerdict{OK: err == nil, File: path, Channels: []string{}, Warnings: []string{}, Problems: []configProblem{}}
	if c != nil {
		v.File, v.Rules = c.File, len(c.Rules)
		v.Channels = append(v.Channels, c.ChannelNames()...)
		v.Warnings = append(v.Warnings, c.Warnings...)
	}
	if chans != nil {
		chans.Close()
	}
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		for _, p := range cerr.Problems {
			v.Problems = append(v.Problems, configProblem{File: p.File, Line: p.Line, Key: p.Key, Message: p.Message})
		}
	case err != nil:
		v.Problems = append(v.Problems, configProblem{File: path, Message: err.Error()})
	}
	if perr := printJSON(g.stdout, v); perr != nil {
		return perr
	}
	if err != nil {
		return &exitError{code: 1, err: errSilent}
	}
	return nil
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func newTestAlertCmd(g *globals) *cobra.Command {
	var f daemonFlags
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test-alert [flags]",
		Short: "Send a test alert through every configured channel",
		Long: `Send a clearly marked test alert (type "test", severity info, test=true)
through every channel of the configuration and report, per channel, whether
the receiver accepted it. It does not go through the daemon or its history.
--json prints the result as one JSON object: the alert's id and, per
channel, its name, ok and the error. The exit status is 1 when a channel
failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemon.LoadConfig(f.config, f.overrides(cmd))
			if err != nil {
				return err
			}
			chans, err := daemon.BuildChannels(c, Version, g.stderr, g.logger())
			if err != nil {
				return err
			}
			defer chans.Close()
			a := testAlert(c.Host())
			names := make([]string, 0, len(chans.ByName))
			for n := range chans.ByName {
				names = append(names, n)
			}
			sort.Strings(names)
			failed := 0
			result := testAlertResult{AlertID: a.ID, Channels: []channelResult{}}
			for _, n := range names {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				err := chans.ByName[n].Send(ctx, a)
				cancel()
				r := channelResult{Name: n, OK: err == nil}
				if err != nil {
					failed++
					r.Error = event.Clean(err.Error())
				}
				result.Channels = append(result.Channels, r)
				switch {
				case asJSON:
				case err != nil:
					fmt.Fprintf(g.stdout, "%-20s FAILED: %s\n", n, r.Error)
				default:
					fmt.Fprintf(g.stdout, "%-20s ok\n", n)
				}
			}
			if asJSON {
				if err := printJSON(g.stdout, result); err != nil {
					return err
				}
				if failed > 0 {
					return &exitError{code: 1, err: errSilent}
				}
				return nil
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d channels failed", failed, len(names))}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for each channel")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// testAlertResult is test-alert --json's output.
type testAlertResult struct {
	AlertID  string          `json:"alert_id"`
	Channels []channelResult `json:"channels"`
}

// channelResult is one channel's answer to the test alert.
type channelResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// testAlert is the alert test-alert sends.
func testAlert(host string) *alert.Alert {
	now := time.Now()
	id := daemon.NewID(now)
	ev := &event.Event{ID: id, Kind: event.KindError, Time: event.Time{Time: now}, Source: "test", Errno: 117,
		Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 1, PID: os.Getpid(),
		Device: "/dev/fshealth-test", FSType: "ext4", UUID: "00000000-0000-0000-0000-000000000000",
		Mountpoints: []string{"/fshealth-test"}, Message: "TEST ALERT from fshealth test-alert: no file system is affected"}
	return &alert.Alert{ID: "test-" + id, Type: alert.TypeTest, Severity: alert.SeverityInfo, Rule: "test", Host: host,
		Time: now, Summary: "TEST: fshealth test alert from " + host + " (no file system is affected)",
		Filesystem: alert.Filesystem{UUID: ev.UUID, Device: ev.Device, FSType: ev.FSType, Mountpoints: ev.Mountpoints},
		ErrorKind:  "EUCLEAN", Count: 1, Since: now, Event: ev, Test: true}
}
