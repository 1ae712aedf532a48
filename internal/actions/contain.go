package actions

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fshealth/fshealth/internal/cgroup"
)

// useCgroups can be turned off by tests.
var useCgroups = true

// noCgroupOnce logs once per process that programs run without a cgroup;
// noClone3Once that clone3, which starting in one takes, is refused.
var noCgroupOnce, noClone3Once sync.Once

// cgroupRemoveTimeout is how long a program's cgroup may take to empty
// after SIGKILL before it is left behind.
const cgroupRemoveTimeout = 5 * time.Second

// newGroup returns a new cgroup for one program, or nil when cgroups cannot
// be used, which is logged once, to the first non-nil log.
func newGroup(log *slog.Logger) *cgroup.Group {
	err := errors.New("turned off")
	var g *cgroup.Group
	if useCgroups {
		g, err = cgroup.NewGroup("action")
	}
	if err != nil {
		if log == nil {
			return nil
		}
		noCgroupOnce.Do(func() {
			log.Warn("recovery action programs run without a cgroup of their own: only their process group is killed, so descendants that leave it (setsid, daemons) are not contained",
				"error", err)
		})
		return nil
	}
	return g
}

// killCgroup kills everything in g, if not nil.
func killCgroup(g *cgroup.Group) {
	if g != nil {
		_ = g.Kill()
	}
}

// removeGroup kills what is left in g and removes it; a failure is logged.
func removeGroup(g *cgroup.Group, log *slog.Logger) {
	if g == nil {
		return
	}
	if err := g.Remove(cgroupRemoveTimeout); err != nil && log != nil {
		log.Warn("a recovery action's cgroup could not be removed", "error", err)
	}
}
