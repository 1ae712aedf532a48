// Package cli implements the fshealth command line: one cobra command per
// subcommand, each a thin layer over the package that does the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/notify/journal"
)

// Version is the fshealth version, set at build time with
// -ldflags "-X github.com/fshealth/fshealth/internal/cli.Version=...".
var Version = "dev"

// globals are the flags every subcommand has.
type globals struct {
	// stateDirFlag is --state-dir; see stateDir.
	stateDirFlag string
	verbose      bool
	quiet        bool
	stdout       io.Writer
	stderr       io.Writer
	// journal sends log records to the journal (made on first use, under
	// systemd only).
	journal *journal.LogHandler
}

// DefaultStateDir is where the daemon keeps its history by default.
const DefaultStateDir = config.DefaultStateDir

// stateDir returns the state directory: --state-dir, else the one the
// default configuration file names, else the default.
func (g *globals) stateDir() string {
	if g.stateDirFlag != "" {
		return g.stateDirFlag
	}
	// Parsed, not loaded: the secrets it may take from files or systemd
	// credentials (only the service has those) do not matter here.
	if data, err := os.ReadFile(config.DefaultPath); err == nil {
		if c, err := config.Parse(config.DefaultPath, data); err == nil {
			return c.StateDir
		}
	}
	return DefaultStateDir
}

// logger returns a logger writing structured text to stderr.
func (g *globals) logger() *slog.Logger {
	level := slog.LevelInfo
	switch {
	case g.verbose:
		level = slog.LevelDebug
	case g.quiet:
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	if journalStream(g.stderr) {
		// Under systemd: each record goes to the journal with its
		// priority and its attributes as fields; should the journal's
		// socket refuse it, to stderr with a priority prefix, which
		// journald reads.
		prefixed := newPriorityHandler(g.stderr, opts)
		if g.journal == nil {
			g.journal, _ = journal.NewLogHandler("", slog.LevelDebug, prefixed)
		}
		if g.journal != nil {
			return slog.New(&levelHandler{Handler: g.journal, level: level})
		}
		return slog.New(prefixed)
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// levelHandler is Handler with records below level dropped.
type levelHandler struct {
	slog.Handler
	level slog.Level
}

func (h *levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{Handler: h.Handler.WithAttrs(as), level: h.level}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{Handler: h.Handler.WithGroup(name), level: h.level}
}

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// errSilent is for failures already reported (by a child process).
var errSilent = errors.New("")

// NewRoot builds the command tree, writing to the given streams.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "fshealth",
		Short: "Linux file system health monitor",
		Long: `fshealth reports Linux file system errors the moment the kernel sees them.

It listens for FAN_FS_ERROR events (Linux 5.16+), which the kernel sends when
a file system such as ext4 detects corruption, an I/O error or an abort, and
turns each into a report naming the device, mount points, UUID, inode, path
and the error the file system recorded.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(versionText())
	// Usage errors (a bad flag, a wrong number of arguments, an unknown
	// command) exit with status 2 and say where the usage is.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(c, err) })
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debugging detail")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "log only warnings and errors")
	root.MarkFlagsMutuallyExclusive("verbose", "quiet")
	root.AddCommand(newWatchCmd(g), newDemoCmd(g), newDaemonCmd(g), newCheckConfigCmd(g), newTestAlertCmd(g),
		newReloadCmd(g), newIPAllowCmd(g), newCheckCmd(g))
	for _, c := range []*cobra.Command{newEventsCmd(g), newStatusCmd(g), newResolveCmd(g), newReportCmd(g)} {
		c.Flags().StringVar(&g.stateDirFlag, "state-dir", "", "the daemon's state directory (default "+DefaultStateDir+")")
		root.AddCommand(c)
	}
	for _, c := range root.Commands() {
		withUsageArgs(c)
	}
	return root
}

// usageError is err, a usage error of c: exit status 2, with a pointer to
// c's help.
func usageError(c *cobra.Command, err error) error {
	return &exitError{code: 2, err: fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
}

// withUsageArgs makes c's argument check a usage error.
func withUsageArgs(c *cobra.Command) {
	if c.Args == nil {
		return
	}
	check := c.Args
	c.Args = func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError(c, err)
		}
		return nil
	}
}

// Main runs the command line and returns the process exit status.
func Main(args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || ee.err != errSilent {
			msg := fmt.Sprintf("fshealth: %v\n", err)
			if journalStream(os.Stderr) {
				msg = prefixLines(syslogPrefixes[3], msg)
			}
			os.Stderr.WriteString(msg)
		}
		if errors.As(err, &ee) {
			return ee.code
		}
		if strings.HasPrefix(err.Error(), "unknown command ") {
			fmt.Fprintf(os.Stderr, "Run 'fshealth --help' for usage.\n")
			return 2
		}
		return 1
	}
	return 0
}
