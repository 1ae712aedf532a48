package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// addDamagedFiles gives each file system of the status its damaged files.
func addDamagedFiles(d *statusDoc, fss []store.FilesystemStatus, files []store.DamagedFile) {
	for i := range d.Filesystems {
		for _, f := range files {
			if f.FSKey == fss[i].Key {
				d.Filesystems[i].DamagedFiles = append(d.Filesystems[i].DamagedFiles, f)
			}
		}
	}
}

// damagedPath is what the status shows for a damaged file's path.
func damagedPath(f *store.DamagedFile) string {
	p := "-"
	switch {
	case f.Path != "":
		p = event.Safe(f.Path)
	case f.PathPending:
		p = "(path pending)"
	case f.PathError != "":
		p = "(no path: " + event.Clean(f.PathError) + ")"
	}
	switch f.State {
	case store.FileDeleted:
		p = "DELETED " + p
	case store.FileReplaced:
		p = "REPLACED (inode reused) " + p
	}
	return p
}

// writeDamagedFiles writes, for each file system with any, the files that
// reported errors since it was last healthy.
func writeDamagedFiles(w io.Writer, fss []store.FilesystemStatus, files []store.DamagedFile, loc *time.Location) {
	const stamp = "2006-01-02 15:04:05"
	for _, fs := range fss {
		var mine []store.DamagedFile
		for _, f := range files {
			if f.FSKey == fs.Key {
				mine = append(mine, f)
			}
		}
		if len(mine) == 0 {
			continue
		}
		mp := "-"
		if len(fs.Mountpoints) > 0 {
			mp = event.Safe(fs.Mountpoints[0])
		}
		since := "ever"
		if !fs.HealthySince.IsZero() {
			since = "it was last healthy (" + fs.HealthySince.In(loc).Format(stamp) + ")"
		}
		fmt.Fprintf(w, "\ndamaged files on %s at %s, since %s:\n", event.Safe(fs.Device), mp, since)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  INODE\tGENERATION\tERRNO\tERRORS\tFIRST\tLAST\tPATH")
		for i := range mine {
			f := &mine[i]
			gen := "-"
			if f.Generation != nil {
				gen = strconv.FormatUint(uint64(*f.Generation), 10)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\t%s\n", f.Inode, gen, event.Safe(f.Errno), f.Errors,
				f.First.In(loc).Format(stamp), f.Last.In(loc).Format(stamp), damagedPath(f))
		}
		tw.Flush()
	}
}
