package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/demo"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/mountns"
)

func newDemoCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "demo [--json]",
		Short: "Show fshealth catching real errors on a scratch ext4 file system",
		Long: `Create a scratch ext4 file system on a loop device, watch it, and break it in
three real ways: a superblock-level error (trigger_fs_error), a corrupted inode
(its mode overwritten with debugfs) and an aborted file system (remount abort).
Each error is shown as 'fshealth watch' shows it. Everything runs in a private
mount namespace and is removed afterwards. Needs root and e2fsprogs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !mountns.Inside() && os.Geteuid() == 0 {
				code, err := mountns.Reexec()
				if err != nil {
					return err
				}
				if code != 0 {
					return &exitError{code: code, err: errSilent}
				}
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			format := event.AppendText
			if asJSON {
				format = func(b []byte, e *event.Event) []byte {
					b, _ = event.AppendJSON(b, e)
					return b
				}
			}
			return demo.Run(ctx, demo.Options{Out: g.stdout, Logger: g.logger(), Format: format})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print events as NDJSON, as 'watch --json' does")
	return cmd
}
