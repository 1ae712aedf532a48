package actions

import (
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/btrfs"
	"golang.org/x/sys/unix"
)

// btrfsProgressEvery is how often a running btrfs scrub's progress is
// read; a variable so that tests can shorten it.
var btrfsProgressEvery = time.Second

// watchBtrfsScrub reports the progress of the btrfs scrub of the file
// system mounted at mp until stop is closed; it returns when it has
// stopped. It reads nothing once the scrub is over on every device after
// having run on one. An error is logged once and ends the watching: the
// scrub itself goes on.
func (j *job) watchBtrfsScrub(mp string, stop <-chan struct{}) {
	fd, err := unix.Open(mp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		j.progressFailed(fmt.Errorf("opening %s: %w", quoteIfNeeded(mp), err))
		return
	}
	defer unix.Close(fd)
	t := time.NewTicker(btrfsProgressEvery)
	defer t.Stop()
	seen := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		st, err := btrfs.ReadScrub(fd)
		if err != nil {
			j.progressFailed(err)
			return
		}
		if st.Running == 0 {
			if seen {
				return // finished; the program says how it went
			}
			continue // not started yet
		}
		seen = true
		if p, ok := newProgress("", st.Scrubbed, st.Used, UnitBytes, time.Now()); ok {
			j.progress.report(p)
		}
	}
}
