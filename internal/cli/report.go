package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

func newReportCmd(g *globals) *cobra.Command {
	var since, fs string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report [--since DUR|TIME] [--fs MOUNTPOINT|UUID|DEVICE] [--json]",
		Short: "Summarise the error history: where errors come from, which files, how the rate moves",
		Long: `Summarise the errors the daemon has recorded, per file system, grouped the
ways an admin asks: by the kernel code that reported them (ext4's
function:line, the function an XFS, btrfs or block layer message names), by
errno, by source, by inode and path, by device, by disk and by 1 GiB region
of sectors where a failed request names one; each group with its errors,
events, first and last time. A chart shows the errors per hour (per day for
periods over three days, in UTC).

It reads a summary the daemon keeps up to date as it records each event, so
it is fast on any history, and works while the daemon runs. The chart uses
Unicode block characters on a UTF-8 terminal (by LC_ALL, LC_CTYPE or LANG)
and plain ASCII otherwise. --json prints one object.`,
		Example: `  fshealth report --since 24h
  fshealth report --fs /srv --since 7d --json | jq '.filesystems[].groups.location'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			from, err := parseSince(since, now)
			if err != nil {
				return err
			}
			st, err := store.OpenReadOnly(store.PathIn(g.stateDir()))
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := st.Report(cmd.Context(), store.ReportQuery{Since: from, FS: fs, Until: now})
			if err != nil {
				return err
			}
			fss, err := st.Filesystems(cmd.Context())
			if err != nil {
				return err
			}
			doc := reportJSON(r, fss, from, now)
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(doc)
			}
			return writeReport(g.stdout, doc, reportStyle{unicode: unicodeTerminal(os.Getenv), loc: time.Local})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only errors since this long ago (24h, 7d) or this time (2026-11-23)")
	cmd.Flags().StringVar(&fs, "fs", "", "only the file system with this mount point, UUID or device")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

// unicodeTerminal reports whether the locale the environment names is a
// UTF-8 one (LC_ALL, else LC_CTYPE, else LANG, as setlocale reads them).
func unicodeTerminal(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
}

// reportDoc is the JSON form of `fshealth report`.
type reportDoc struct {
	// Since is the start of the period (absent: the whole history); Until
	// its end, when the report was made.
	Since       *time.Time    `json:"since,omitempty"`
	Until       time.Time     `json:"until"`
	Filesystems []reportFSDoc `json:"filesystems"`
}

// reportFSDoc is one file system of a report.
type reportFSDoc struct {
	UUID        string   `json:"uuid"`
	Device      string   `json:"device"`
	FSType      string   `json:"fstype"`
	Mountpoints []string `json:"mountpoints"`
	// Errors and Events are the totals of the period.
	Errors uint64 `json:"errors"`
	Events uint64 `json:"events"`
	// Groups are, by grouping (store.Dims), its groups, most errors first.
	Groups map[string][]groupDoc `json:"groups"`
	// Rate is the errors per hour or per day.
	Rate rateDoc `json:"rate"`
}

type groupDoc struct {
	Value  string    `json:"value"`
	Path   string    `json:"path,omitempty"`
	Errors uint64    `json:"errors"`
	Events uint64    `json:"events"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
}

// rateDoc is a file system's errors per bucket (an hour, or a day in UTC),
// every bucket of the period, oldest first.
type rateDoc struct {
	Bucket string      `json:"bucket"` // "hour" or "day"
	Counts []bucketDoc `json:"counts"`
}

type bucketDoc struct {
	Start  time.Time `json:"start"`
	Errors uint64    `json:"errors"`
}

// reportJSON assembles the report of r, for the period from since (zero:
// from the first error) to now.
func reportJSON(r *store.Report, fss []store.FilesystemStatus, since, now time.Time) reportDoc {
	doc := reportDoc{Until: now, Filesystems: []reportFSDoc{}}
	if !since.IsZero() {
		doc.Since = &since
	}
	byKey := map[string]*reportFSDoc{}
	var order []string
	fsOf := func(key string) *reportFSDoc {
		if d := byKey[key]; d != nil {
			return d
		}
		d := &reportFSDoc{Groups: map[string][]groupDoc{}, Mountpoints: []string{}}
		for _, f := range fss {
			if f.Key == key {
				d.UUID, d.Device, d.FSType = f.UUID, f.Device, f.FSType
				if f.Mountpoints != nil {
					d.Mountpoints = f.Mountpoints
				}
			}
		}
		if d.UUID == "" && d.Device == "" {
			d.Device = key
		}
		for _, dim := range store.Dims {
			d.Groups[dim] = []groupDoc{}
		}
		byKey[key] = d
		order = append(order, key)
		return d
	}
	for _, g := range r.Groups {
		d := fsOf(g.FSKey)
		d.Groups[g.Dim] = append(d.Groups[g.Dim], groupDoc{Value: g.Value, Path: g.Label, Errors: g.Errors, Events: g.Events, First: g.First, Last: g.Last})
		if g.Dim == store.DimErrno {
			d.Errors += g.Errors
			d.Events += g.Events
		}
	}
	start := since
	for _, g := range r.Groups {
		if start.IsZero() || g.First.Before(start) {
			start = g.First
		}
	}
	bucket := "hour"
	if r.Bucket == 24*time.Hour {
		bucket = "day"
	}
	for _, key := range order {
		d := byKey[key]
		d.Rate = rateDoc{Bucket: bucket, Counts: buckets(r.Rate, key, start, now, r.Bucket)}
		doc.Filesystems = append(doc.Filesystems, *d)
	}
	return doc
}

// buckets returns the errors of the file system key in each bucket of
// length size (an hour, or a UTC day) from the one start is in to the one
// end is in.
func buckets(rate []store.RateCount, key string, start, end time.Time, size time.Duration) []bucketDoc {
	var out []bucketDoc
	index := map[int64]int{}
	for b := start.Truncate(size); !b.After(end); b = b.Add(size) {
		index[b.Unix()] = len(out)
		out = append(out, bucketDoc{Start: b})
	}
	for _, c := range rate {
		if c.FSKey != key {
			continue
		}
		if i, ok := index[c.Start.Truncate(size).Unix()]; ok {
			out[i].Errors += c.Errors
		}
	}
	return out
}

// reportStyle is how a report is written.
type reportStyle struct {
	// unicode selects block characters for the chart, else ASCII.
	unicode bool
	// loc is the time zone times are shown in.
	loc *time.Location
}

// Chart levels, from none to full: the eighths of a block, and their ASCII
// stand-ins.
var (
	unicodeLevels = []rune(" ▁▂▃▄▅▆▇█")
	asciiLevels   = []rune(" .,:-=+*#")
)

// chartWidth is how many bars one line of the chart holds.
const chartWidth = 48

// writeChart draws the rate as lines of bars, each line labelled with the
// start of its first bucket, scaled to the busiest bucket; every bucket
// with errors shows at least the lowest bar.
func writeChart(w io.Writer, rate rateDoc, st reportStyle) {
	levels := asciiLevels
	edge := "|"
	if st.unicode {
		levels, edge = unicodeLevels, "│"
	}
	var top uint64
	for _, c := range rate.Counts {
		top = max(top, c.Errors)
	}
	layout, per, loc := "2006-01-02 15:04", "hour", st.loc
	if rate.Bucket == "day" {
		// Days are UTC days: the summary counts them so.
		layout, per, loc = "2006-01-02", "day (UTC)", time.UTC
	}
	fmt.Fprintf(w, "  errors per %s (a full bar: %d)\n", per, top)
	pad := strings.Repeat(" ", len(layout)+1)
	for i := 0; i < len(rate.Counts); i += chartWidth {
		line := rate.Counts[i:min(i+chartWidth, len(rate.Counts))]
		var bars strings.Builder
		for _, c := range line {
			lv := 0
			if c.Errors > 0 {
				lv = max(1, int((c.Errors*uint64(len(levels)-1)+top-1)/top))
			}
			bars.WriteRune(levels[lv])
		}
		fmt.Fprintf(w, "  %s %s%s%s\n", line[0].Start.In(loc).Format(layout), edge, bars.String(), edge)
		fmt.Fprintf(w, "  %s %s\n", pad, strings.TrimRight(axis(line, rate.Bucket, loc), " "))
	}
}

// axis labels a line of the chart under its bars: the hour (00, 06, 12,
// 18) under the bars of those hours, or the day of the month under the
// bars of days, where there is room.
func axis(line []bucketDoc, bucket string, loc *time.Location) string {
	b := []byte(strings.Repeat(" ", len(line)+2))
	free := 0
	for i, c := range line {
		t := c.Start.In(loc)
		n := t.Day()
		if bucket == "hour" {
			if t.Hour()%6 != 0 {
				continue
			}
			n = t.Hour()
		}
		if i < free {
			continue
		}
		copy(b[i:], fmt.Sprintf("%02d", n))
		free = i + 3
	}
	return string(b)
}

// dimTitles are the column titles of each grouping.
var dimTitles = map[string]string{
	store.DimLocation: "LOCATION",
	store.DimErrno:    "ERRNO",
	store.DimSource:   "SOURCE",
	store.DimFile:     "INODE",
	store.DimDevice:   "DEVICE",
	store.DimDisk:     "DISK",
	store.DimRegion:   "SECTOR REGION",
}

// writeReport writes the report as text.
func writeReport(w io.Writer, doc reportDoc, st reportStyle) error {
	const stamp = "2006-01-02 15:04:05"
	period := "the whole history"
	if doc.Since != nil {
		period = "since " + doc.Since.In(st.loc).Format(stamp)
	}
	fmt.Fprintf(w, "error report, %s, until %s\n", period, doc.Until.In(st.loc).Format(stamp))
	if len(doc.Filesystems) == 0 {
		fmt.Fprintln(w, "\nno errors recorded")
		return nil
	}
	for _, f := range doc.Filesystems {
		mp := "-"
		if len(f.Mountpoints) > 0 {
			mp = event.Safe(f.Mountpoints[0])
		}
		fmt.Fprintf(w, "\n%s %s at %s", event.Safe(f.Device), event.Safe(f.FSType), mp)
		if f.UUID != "" {
			fmt.Fprintf(w, " uuid %s", event.Safe(f.UUID))
		}
		fmt.Fprintf(w, ": %s in %d event(s)\n", countText(f.Errors), f.Events)
		writeChart(w, f.Rate, st)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, dim := range store.Dims {
			gs := f.Groups[dim]
			if len(gs) == 0 {
				continue
			}
			title := dimTitles[dim]
			if dim == store.DimFile {
				title += "\tPATH"
			}
			fmt.Fprintf(tw, "\n  %s\tERRORS\tEVENTS\tFIRST\tLAST\n", title)
			for _, g := range gs {
				v := event.Safe(g.Value)
				if dim == store.DimFile {
					p := "-"
					if g.Path != "" {
						p = event.Safe(g.Path)
					}
					v += "\t" + p
				}
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", v, g.Errors, g.Events, g.First.In(st.loc).Format(stamp), g.Last.In(st.loc).Format(stamp))
			}
			// Columns line up within each grouping.
			tw.Flush()
			tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		}
		tw.Flush()
	}
	return nil
}

// countText says "1 error" or "N errors".
func countText(n uint64) string {
	if n == 1 {
		return "1 error"
	}
	return strconv.FormatUint(n, 10) + " errors"
}
