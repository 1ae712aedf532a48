package cli

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/smart"
)

// writeDiskStatus adds to the status the disks' own health, as the daemon
// last read it with smartctl.
func writeDiskStatus(w io.Writer, disks map[string]*smart.Health) {
	if len(disks) == 0 {
		return
	}
	names := make([]string, 0, len(disks))
	for n := range disks {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK\tMODEL\tSERIAL\tHEALTH (smartctl)\tCHECKED")
	for _, n := range names {
		h := disks[n]
		if h == nil {
			continue
		}
		or := func(s string) string {
			if s == "" {
				return "-"
			}
			return event.Safe(s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", event.Safe(n), or(h.Model), or(h.Serial), event.Clean(h.Summary()),
			h.Checked.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
}
