package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// checkState is the outcome of `fshealth check`, in increasing order of
// gravity except for unknown, which ranks between warning and critical.
type checkState int

const (
	checkOK checkState = iota
	checkWarning
	checkCritical
	checkUnknown
)

// rank orders states for "the worst wins": critical > unknown > warning > ok.
func (s checkState) rank() int { return [...]int{0, 1, 3, 2}[s] }

// nagiosNames are the states' names in the Nagios plugin protocol; the
// exit status is the state's value.
var nagiosNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// npdExit maps a state to node-problem-detector's custom plugin exit status:
// 0 OK, 1 NonOK, 2 Unknown (see finding.npdState for warnings).
var npdExit = [...]int{0, 0, 1, 2}

// Check conditions: which errors a check looks at (--condition). Each is one
// node-problem-detector condition in dist/npd/fshealth-plugin-monitor.json.
const (
	condAny       = "any"
	condCorrupted = "corrupted"
	condShutdown  = "shutdown"
	condIOError   = "io-error"
)

var checkConditions = []string{condAny, condCorrupted, condShutdown, condIOError, condRedundancy}

// errnoCondition says which condition an errno name belongs to: corruption
// (EUCLEAN is the kernel's EFSCORRUPTED, EBADMSG its EFSBADCRC), a shut down
// or aborted file system (ESHUTDOWN; EROFS is ext4's aborted journal), and
// every other error, I/O errors above all.
func errnoCondition(errno string) string {
	switch errno {
	case "EUCLEAN", "EBADMSG":
		return condCorrupted
	case "ESHUTDOWN", "EROFS":
		return condShutdown
	}
	return condIOError
}

// checkOptions are the flags of `fshealth check`.
type checkOptions struct {
	format     string
	fs         []string
	condition  string
	window     time.Duration
	backlogAge time.Duration
}

// checkResult is what a check found: its state and the findings behind it,
// the gravest first, and the performance data.
type checkResult struct {
	state    checkState
	findings []finding
	// okText is the message when there is nothing to say.
	okText string
	perf   []perfDatum
}

type finding struct {
	state checkState
	text  string
	// short is the finding in a few words, for NPD's short messages.
	short string
	// blind is set on a warning that means the history may miss errors
	// (no daemon, history not recorded): Unknown, not OK, to NPD.
	blind bool
}

type perfDatum struct {
	label      string
	value      uint64
	warn, crit string
}

func (r *checkResult) add(s checkState, short, text string) {
	r.addFinding(finding{state: s, text: text, short: short})
}

func (r *checkResult) addFinding(f finding) {
	s := f.state
	r.findings = append(r.findings, f)
	if s.rank() > r.state.rank() {
		r.state = s
	}
}

func newCheckCmd(g *globals) *cobra.Command {
	o := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [--fs MOUNTPOINT|UUID|DEVICE]... [--format nagios|npd|json] [--condition any|corrupted|shutdown|io-error|redundancy]",
		Short: "One-shot health check for Nagios, Icinga or node-problem-detector",
		Long: `Check the file systems' health in the daemon's history and exit with the
status a monitoring system expects.

The default format is the Nagios/Icinga plugin protocol: one status line
("FSHEALTH CRITICAL - ..." with performance data after "|") and exit status 0
OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. --format npd follows Kubernetes
node-problem-detector's custom plugin protocol: a short message and exit
status 0 OK, 1 NonOK, 2 Unknown. --format json prints one object (state,
message, findings with their state, perf) with the Nagios exit status.

CRITICAL: a file system has had errors since it was last healthy (of the
kind --condition names). It is OK again once the trouble is over: after
'fshealth resolve', or, for ext4, once e2fsck cleared its recorded errors.
With --condition any or redundancy, also: an md array under a file system
lost redundancy (a member faulty or removed, degraded, mismatches found),
until the array is whole again or 'fshealth resolve'.
WARNING: the daemon is not running, its history is not being recorded
(degraded mode), the kernel's event queue overflowed, alerts were given up
or wait too long, or a file system named by --fs is not watched.
UNKNOWN: the history cannot be read (missing, unreadable, corrupt, newer
than this fshealth) or --fs names no file system in it — never OK.`,
		Example: `  fshealth check
  fshealth check --fs /srv --fs /var/lib/mysql
  fshealth check --format npd --condition corrupted`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(checkConditions, o.condition) {
				return checkUsage(g.stdout, o.format, fmt.Errorf("--condition %q: want one of %s", o.condition, strings.Join(checkConditions, ", ")))
			}
			if o.format != "nagios" && o.format != "npd" && o.format != "json" {
				return checkUsage(g.stdout, "nagios", fmt.Errorf("--format %q: want nagios, npd or json", o.format))
			}
			r := runCheck(cmd.Context(), g.stateDir(), o, time.Now())
			code := r.write(g.stdout, o.format)
			if code != 0 {
				return &exitError{code: code, err: errSilent}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "nagios", "output protocol: nagios (Nagios, Icinga, Sensu, ...), npd (node-problem-detector) or json (one object, the Nagios exit status)")
	f.StringArrayVar(&o.fs, "fs", nil, "check only this file system (mount point, UUID or device); repeatable")
	f.StringVar(&o.condition, "condition", condAny, "only errors of this kind make it critical: "+strings.Join(checkConditions, ", "))
	f.DurationVar(&o.window, "window", 24*time.Hour, "warn of queue overflows and given-up alerts this recent")
	f.DurationVar(&o.backlogAge, "backlog-age", 15*time.Minute, "warn of alerts waiting for delivery longer than this")
	f.StringVar(&g.stateDirFlag, "state-dir", "", "the daemon's state directory (default "+DefaultStateDir+")")
	// A usage error must not look like CRITICAL (2) to Nagios.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		format := "nagios"
		if fl := c.Flags().Lookup("format"); fl != nil {
			format = fl.Value.String()
		}
		return checkUsage(g.stdout, format, err)
	})
	return cmd
}

// checkUsage is a usage error of check: UNKNOWN in either protocol, said on
// stdout too (where the monitoring system looks).
func checkUsage(stdout io.Writer, format string, err error) error {
	code := int(checkUnknown)
	if format == "npd" {
		code = npdExit[checkUnknown]
		fmt.Fprintln(stdout, "fshealth check: usage error")
	} else {
		fmt.Fprintln(stdout, "FSHEALTH UNKNOWN - usage error: "+strings.ReplaceAll(event.Clean(err.Error()), "|", "/"))
	}
	return &exitError{code: code, err: fmt.Errorf("check: %w\nRun 'fshealth check --help' for usage.", err)}
}

// runCheck evaluates the history in dir.
func runCheck(ctx context.Context, dir string, o checkOptions, now time.Time) *checkResult {
	r := &checkResult{}
	pid, pidErr, rt, rtErr := daemon.DaemonPID(dir)
	switch {
	case pidErr != nil:
		r.add(checkUnknown, "cannot tell if the daemon runs", "cannot tell whether the daemon runs: "+event.Clean(pidErr.Error()))
	case pid == 0:
		r.addFinding(finding{state: checkWarning, blind: true, short: "daemon not running",
			text: "the fshealth daemon is not running (state in " + event.Safe(dir) + "): errors are not being watched"})
	}
	if rtErr != nil {
		r.add(checkWarning, "runtime status unreadable", "the daemon's runtime status: "+event.Clean(rtErr.Error()))
	}
	if rt != nil && rt.Degraded != nil {
		r.addFinding(finding{state: checkWarning, blind: true, short: "history not recorded (degraded)",
			text: "history " + event.Clean(rt.Degraded.Summary()) + "; the daemon still watches and alerts"})
	}

	st, err := store.OpenReadOnly(store.PathIn(dir))
	if err != nil {
		r.add(checkUnknown, "history unreadable", "cannot read the history: "+event.Clean(err.Error()))
		return r
	}
	defer st.Close()
	if err := r.evaluate(ctx, st, dir, o, now); err != nil {
		r.add(checkUnknown, "history unreadable", "cannot read the history: "+event.Clean(err.Error()))
	}
	return r
}

// evaluate adds what the history says.
func (r *checkResult) evaluate(ctx context.Context, st *store.Store, dir string, o checkOptions, now time.Time) error {
	fss, err := st.Filesystems(ctx)
	if err != nil {
		return err
	}
	if len(o.fs) > 0 {
		var sel []store.FilesystemStatus
		for _, name := range o.fs {
			keys, err := st.FSKeys(ctx, name)
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				r.add(checkUnknown, "unknown "+event.Safe(name), "no file system known as "+event.Safe(name)+" in the history in "+event.Safe(dir))
			}
			for _, f := range fss {
				if slices.Contains(keys, f.Key) && !slices.ContainsFunc(sel, func(s store.FilesystemStatus) bool { return s.Key == f.Key }) {
					sel = append(sel, f)
				}
			}
		}
		fss = sel
	}
	errnos, err := st.ErrnosSinceHealthy(ctx)
	if err != nil {
		return err
	}
	var watched, unhealthy, errs uint64
	for _, f := range fss {
		if f.Watched {
			watched++
		}
		if len(o.fs) > 0 && !f.Watched {
			r.add(checkWarning, fsName(f)+" not watched", fsName(f)+" is not watched by the daemon (not mounted?)")
		}
		if f.Health == store.HealthOK {
			continue
		}
		// The errnos since it was last healthy; the last one if the
		// history no longer holds its events.
		kinds := errnos[f.Key]
		if len(kinds) == 0 && f.LastErrno != "" {
			kinds = map[string]uint64{f.LastErrno: f.Errors}
		}
		var names []string
		match := o.condition == condAny
		for e := range kinds {
			names = append(names, e)
			if errnoCondition(e) == o.condition {
				match = true
			}
		}
		sort.Strings(names)
		if !match {
			continue
		}
		unhealthy++
		errs += f.Errors
		what := make([]string, len(names))
		for i, e := range names {
			what[i] = fmt.Sprintf("%s %s x%d", e, errnoCondition(e), kinds[e])
		}
		r.add(checkCritical, fsName(f)+" "+strings.Join(names, ","),
			fmt.Sprintf("%s (%s %s): %d error(s) since %s (%s), last %s",
				fsName(f), event.Safe(f.Device), event.Safe(f.FSType), f.Errors,
				f.FirstError.UTC().Format(time.RFC3339), strings.Join(what, ", "), f.LastError.UTC().Format(time.RFC3339)))
	}

	if o.condition == condAny || o.condition == condRedundancy {
		n, err := r.addRedundancy(ctx, st, fss)
		if err != nil {
			return err
		}
		unhealthy += n
	}

	since := now.Add(-o.window)
	overflows, last, err := st.Overflows(ctx, since)
	if err != nil {
		return err
	}
	if overflows > 0 {
		r.add(checkWarning, "events lost", fmt.Sprintf("the kernel's event queue overflowed %d time(s) in the last %s, last at %s (errors may have been missed)",
			overflows, o.window, last.UTC().Format(time.RFC3339)))
	}
	backlog, err := st.Backlog(ctx)
	if err != nil {
		return err
	}
	givenUp, err := st.GivenUpSince(ctx, since)
	if err != nil {
		return err
	}
	var pending uint64
	for _, b := range backlog {
		pending += uint64(b.Pending)
		if b.Pending > 0 && now.Sub(b.Oldest) > o.backlogAge {
			r.add(checkWarning, "alerts stuck", fmt.Sprintf("%d alert(s) to %s waiting since %s (%s)", b.Pending, event.Safe(b.Channel),
				b.Oldest.UTC().Format(time.RFC3339), event.Clean(b.LastError)))
		}
	}
	var failed uint64
	chans := make([]string, 0, len(givenUp))
	for ch, n := range givenUp {
		failed += uint64(n)
		chans = append(chans, ch)
	}
	sort.Strings(chans)
	for _, ch := range chans {
		r.add(checkWarning, "alerts given up", fmt.Sprintf("%d alert(s) to %s given up in the last %s", givenUp[ch], event.Safe(ch), o.window))
	}
	for _, p := range store.MovedAside(dir) {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(since) {
			r.add(checkWarning, "history restarted", "a damaged history database was moved aside to "+event.Safe(p)+": earlier errors are not in the check")
		}
	}

	none := map[string]string{condAny: "with errors", condCorrupted: "corrupted", condShutdown: "shut down", condIOError: "with I/O errors",
		condRedundancy: "with redundancy lost"}[o.condition]
	switch {
	case len(o.fs) > 0 && o.condition == condAny:
		r.okText = fmt.Sprintf("%d file system(s) healthy", len(fss))
	case len(o.fs) > 0:
		r.okText = fmt.Sprintf("%d file system(s) checked, none %s", len(fss), none)
	default:
		r.okText = fmt.Sprintf("%d file system(s) watched, none %s", watched, none)
	}
	r.perf = []perfDatum{
		{label: "unhealthy", value: unhealthy, crit: "0"},
		{label: "errors", value: errs},
		{label: "watched", value: watched},
		{label: "overflows", value: uint64(overflows), warn: "0"},
		{label: "alerts_pending", value: pending},
		{label: "alerts_given_up", value: failed, warn: "0"},
	}
	return nil
}

// fsName names a file system by its first mount point, else its device or
// key, made safe to print.
func fsName(f store.FilesystemStatus) string {
	switch {
	case len(f.Mountpoints) > 0:
		return event.Safe(f.Mountpoints[0])
	case f.Device != "":
		return event.Safe(f.Device)
	}
	return event.Safe(f.Key)
}

// npdMaxMessage is the length node-problem-detector's default
// max_output_length keeps of a plugin's message.
const npdMaxMessage = 80

// write prints the result in format and returns the exit status.
func (r *checkResult) write(w io.Writer, format string) int {
	sort.SliceStable(r.findings, func(i, j int) bool { return r.findings[i].state.rank() > r.findings[j].state.rank() })
	if format == "npd" {
		return r.writeNPD(w)
	}
	if format == "json" {
		return r.writeJSON(w)
	}
	msg := r.okText
	if len(r.findings) > 0 {
		texts := make([]string, len(r.findings))
		for i, f := range r.findings {
			texts[i] = f.text
		}
		msg = strings.Join(texts, "; ")
	}
	// "|" separates the performance data: none may be in the text.
	msg = strings.ReplaceAll(msg, "|", "/")
	line := "FSHEALTH " + nagiosNames[r.state] + " - " + msg
	if len(r.perf) > 0 {
		var p []string
		for _, d := range r.perf {
			p = append(p, fmt.Sprintf("%s=%d;%s;%s;0", d.label, d.value, d.warn, d.crit))
		}
		line += " | " + strings.Join(p, " ")
	}
	fmt.Fprintln(w, line)
	return int(r.state)
}

// checkJSON is check --format json's output.
type checkJSON struct {
	// State is OK, WARNING, CRITICAL or UNKNOWN, as the exit status (the
	// Nagios one).
	State    string        `json:"state"`
	Message  string        `json:"message"`
	Findings []findingJSON `json:"findings"`
	// Perf are the figures of Nagios's performance data, by label.
	Perf map[string]uint64 `json:"perf"`
}

type findingJSON struct {
	State string `json:"state"`
	Short string `json:"short"`
	Text  string `json:"text"`
}

// writeJSON writes the result as one JSON object and returns the Nagios
// exit status.
func (r *checkResult) writeJSON(w io.Writer) int {
	doc := checkJSON{State: nagiosNames[r.state], Message: r.okText, Findings: []findingJSON{}, Perf: map[string]uint64{}}
	texts := make([]string, 0, len(r.findings))
	for _, f := range r.findings {
		doc.Findings = append(doc.Findings, findingJSON{State: nagiosNames[f.state], Short: f.short, Text: f.text})
		texts = append(texts, f.text)
	}
	if len(texts) > 0 {
		doc.Message = strings.Join(texts, "; ")
	}
	for _, d := range r.perf {
		doc.Perf[d.label] = d.value
	}
	if err := printJSON(w, doc); err != nil {
		return int(checkUnknown)
	}
	return int(r.state)
}

// npdState is a finding's state to node-problem-detector: a warning is no
// problem of the node (OK) unless it means the history may miss errors
// (Unknown).
func (f finding) npdState() checkState {
	if f.state == checkWarning {
		if f.blind {
			return checkUnknown
		}
		return checkOK
	}
	return f.state
}

// writeNPD prints the result as a node-problem-detector custom plugin and
// returns the exit status: a message of at most npdMaxMessage bytes.
func (r *checkResult) writeNPD(w io.Writer) int {
	state := checkOK
	for _, f := range r.findings {
		if s := f.npdState(); s.rank() > state.rank() {
			state = s
		}
	}
	var parts []string
	if state == checkOK {
		parts = append(parts, r.okText)
		if r.okText == "" {
			parts[0] = "ok"
		}
	}
	for _, f := range r.findings {
		if s := f.npdState(); s == state || state == checkOK && f.state == checkWarning {
			parts = append(parts, f.short)
		}
	}
	msg := strings.Join(parts, "; ")
	if len(msg) > npdMaxMessage {
		msg = msg[:npdMaxMessage-3] + "..."
	}
	fmt.Fprintln(w, msg)
	return npdExit[state]
}
