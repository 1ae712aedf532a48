package actions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// Progress is how far a running action has got, as the kernel or the
// program it runs tells: a btrfs scrub's bytes scrubbed (read from the
// kernel), or the lines e2fsck writes to its progress descriptor (-C fd)
// in a command action that passes it {progress_fd}.
type Progress struct {
	// Phase names the step it is in, e.g. "pass 3 of 5" (e2fsck); empty
	// when the action has only one.
	Phase string `json:"phase,omitempty"`
	// Done and Total measure how far it has got, in Unit; Total is never
	// zero and Done never more than Total.
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
	// Unit is "bytes" (btrfs scrub) or "" for the program's own units
	// (e2fsck's: inodes, groups, ... depending on the pass).
	Unit string `json:"unit,omitempty"`
	// Percent is 100 × Done / Total, rounded down to hundredths: of the
	// whole action when Phase is empty, else of the phase.
	Percent float64 `json:"percent"`
	// Updated is when this was read.
	Updated time.Time `json:"updated"`
}

// UnitBytes is Progress.Unit for bytes.
const UnitBytes = "bytes"

// newProgress returns the Progress of done out of total, or false when
// total is zero; done is capped at total (a btrfs file system written to
// while it is scrubbed can grow past the total read at the start).
func newProgress(phase string, done, total uint64, unit string, now time.Time) (Progress, bool) {
	if total == 0 {
		return Progress{}, false
	}
	done = min(done, total)
	// Rounded down to hundredths: 100 only when done.
	pct := math.Floor(float64(done)*10000/float64(total)) / 100
	if done < total && pct >= 100 {
		pct = 99.99 // beyond float64's precision
	}
	return Progress{Phase: phase, Done: done, Total: total, Unit: unit, Percent: pct, Updated: now}, true
}

// String formats p for people: "41% (12.3 GiB of 30.0 GiB)", or
// "pass 3 of 5: 40% (1234 of 3085)".
func (p Progress) String() string {
	var amount string
	if p.Unit == UnitBytes {
		amount = FormatBytes(p.Done) + " of " + FormatBytes(p.Total)
	} else {
		amount = strconv.FormatUint(p.Done, 10) + " of " + strconv.FormatUint(p.Total, 10)
	}
	s := fmt.Sprintf("%d%% (%s)", int(p.Percent), amount)
	if p.Phase != "" {
		s = p.Phase + ": " + s
	}
	return s
}

// FormatBytes formats n bytes with a binary unit and one decimal:
// "512 B", "12.3 GiB".
func FormatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	const units = "KMGTPE"
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// progressEvery is the least time between two progress reports of one
// action (the last one, at its end, excepted); a variable so that tests
// can shorten it.
var progressEvery = time.Second

// reporter passes an action's progress to Runner.Progress, at most once
// every progressEvery, and never after stop.
type reporter struct {
	mu      sync.Mutex
	fn      func(Progress)
	last    time.Time
	pending *Progress // held back by the rate limit
	stopped bool
}

// report passes p on, or holds it back if the last report was less than
// progressEvery ago.
func (r *reporter) report(p Progress) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.fn == nil {
		return
	}
	if now := time.Now(); now.Sub(r.last) >= progressEvery {
		r.last, r.pending = now, nil
		r.fn(p)
		return
	}
	r.pending = &p
}

// stop passes on the report held back, if any, and ends reporting.
func (r *reporter) stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped && r.pending != nil && r.fn != nil {
		r.fn(*r.pending)
	}
	r.stopped, r.pending = true, nil
}

// maxProgressLine bounds a progress line; longer lines are dropped whole.
const maxProgressLine = 4096

// errLineTooLong is returned by readLines for a line over the bound.
var errLineTooLong = errors.New("progress line too long")

// readLines reads lines from r, passing each (without its newline) to fn,
// until r ends or fails. A line longer than maxProgressLine bytes is not
// passed: it is skipped up to its newline. A last line without a newline
// is dropped (it may be cut).
func readLines(r io.Reader, fn func(line []byte)) error {
	br := bufio.NewReaderSize(r, maxProgressLine+1)
	skipping := false
	var lineErr error
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if !skipping {
				fn(line[:len(line)-1])
			}
			skipping = false
		case errors.Is(err, bufio.ErrBufferFull):
			skipping, lineErr = true, errLineTooLong
		case errors.Is(err, io.EOF):
			return lineErr
		default:
			return err
		}
	}
}

// e2fsckPasses is how many passes e2fsck makes.
const e2fsckPasses = 5

// parseE2fsckProgress parses one line e2fsck writes to its progress
// descriptor (-C fd): "PASS CURRENT MAX DEVICE", e.g. "3 1234 3085
// /dev/sdb1", with PASS 1 to 5 and CURRENT at most MAX. The device name is
// not kept: the action knows which device it checks. Anything else is
// refused.
func parseE2fsckProgress(line []byte, now time.Time) (Progress, bool) {
	fields := make([]uint64, 3)
	rest := line
	for i := range fields {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 || n > 20 || n > 1 && rest[0] == '0' {
			return Progress{}, false
		}
		v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
		if err != nil {
			return Progress{}, false
		}
		fields[i] = v
		rest = rest[n:]
		if len(rest) == 0 || rest[0] != ' ' {
			return Progress{}, false
		}
		rest = rest[1:]
	}
	// The device name: present, one line.
	if len(rest) == 0 || bytes.IndexByte(rest, '\n') >= 0 {
		return Progress{}, false
	}
	pass, cur, max := fields[0], fields[1], fields[2]
	if pass < 1 || pass > e2fsckPasses || cur > max {
		return Progress{}, false
	}
	return newProgress(fmt.Sprintf("pass %d of %d", pass, e2fsckPasses), cur, max, "", now)
}
