package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// resolveWait is how long `fshealth resolve` waits for the daemon.
const resolveWait = 10 * time.Second

func newResolveCmd(g *globals) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "resolve MOUNTPOINT|UUID|DEVICE [--note TEXT]",
		Short: "Mark a file system healthy again and resolve its open incidents",
		Long: `Tell the daemon that a file system's trouble is over — it was repaired
(xfs_repair, btrfs scrub, a replaced disk) or the errors were understood — so
that it is marked healthy, its open incidents end, and their "resolved"
alerts go out (Alertmanager alerts stop firing).

fshealth ends incidents by itself only where it can see the repair: ext4 after
e2fsck cleared its recorded errors, and an md array under the file system whole
again (its redundancy incident). The request is recorded in the daemon's
history database and carried out at once if the daemon runs, else when it
starts. The history keeps every event.`,
		Example: `  fshealth resolve /srv --note "xfs_repair run, disk replaced"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.stateDir()
			if _, err := os.Stat(store.PathIn(dir)); err != nil {
				return fmt.Errorf("no history to resolve in: %w", err)
			}
			st, err := store.Open(store.PathIn(dir))
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			keys, err := st.FSKeys(ctx, args[0])
			if err != nil {
				return err
			}
			switch len(keys) {
			case 0:
				return fmt.Errorf("no file system known as %s in the history in %s (see fshealth status)", event.Safe(args[0]), dir)
			case 1:
			default:
				return fmt.Errorf("%s names %d file systems (%s): give a UUID or device", event.Safe(args[0]), len(keys), strings.Join(keys, ", "))
			}
			id, err := st.AddRequest(ctx, store.RequestResolve, keys[0], note)
			if err != nil {
				return err
			}
			pid, err := daemon.RunningPID(dir)
			if err != nil {
				return err
			}
			if pid == 0 {
				fmt.Fprintf(g.stdout, "recorded: the daemon is not running; it resolves %s when it starts\n", keys[0])
				return nil
			}
			if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
				return fmt.Errorf("telling the daemon (pid %d): %w", pid, err)
			}
			deadline := time.Now().Add(resolveWait)
			for {
				r, err := st.Request(ctx, id)
				if err != nil {
					return err
				}
				if !r.Done.IsZero() {
					fmt.Fprintf(g.stdout, "%s: %s\n", keys[0], r.Outcome)
					if strings.HasPrefix(r.Outcome, "not done") {
						return &exitError{code: 1, err: errSilent}
					}
					return nil
				}
				if time.Now().After(deadline) {
					return errors.New("the daemon did not answer within " + resolveWait.String() + "; the request stays recorded and is carried out when it does")
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why, for the daemon's log")
	return cmd
}
