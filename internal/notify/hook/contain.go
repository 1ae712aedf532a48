package hook

import (
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/fshealth/fshealth/internal/cgroup"
	"github.com/fshealth/fshealth/internal/trust"
)

// cgroupRemoveTimeout is how long a hook's cgroup may take to empty after
// SIGKILL before it is left behind (a process stuck in the kernel).
const cgroupRemoveTimeout = 5 * time.Second

// useCgroups can be turned off by tests, to see what a process group alone
// contains.
var useCgroups = true

// groupFor returns a new cgroup for one hook run, or nil when cgroups
// cannot be used: then the hook only has its process group, and that is
// logged once per Notifier.
func (n *Notifier) groupFor() *cgroup.Group {
	err := errors.New("turned off")
	var g *cgroup.Group
	if useCgroups {
		g, err = cgroup.NewGroup("hook")
	}
	if err != nil {
		n.noCgroup.Do(func() {
			n.log.Warn("hooks run without a cgroup of their own: only their process group is killed, so descendants that leave it (setsid, daemons) are not contained",
				"error", err)
		})
		return nil
	}
	return g
}

// Credential returns the user (and group) hooks run as: name and group
// are user and group names or numeric ids; group "" means the user's
// primary group. Supplementary groups are the user's. It returns nil for
// name "" (hooks run as the daemon's user).
func Credential(name, group string) (*syscall.Credential, error) {
	if name == "" {
		if group != "" {
			return nil, fmt.Errorf("group %q needs a user", group)
		}
		return nil, nil
	}
	u, err := lookupUser(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		u, err := user.LookupId(name)
		if err != nil {
			return nil, fmt.Errorf("no user with id %s in the user database", name)
		}
		return u, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no user %q in the user database", name)
	}
	return u, nil
}

func lookupGroup(name string) (*user.Group, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		g, err := user.LookupGroupId(name)
		if err != nil {
			return nil, fmt.Errorf("no group with id %s in the group database", name)
		}
		return g, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, fmt.Errorf("no group %q in the group database", name)
	}
	return g, nil
}

// CheckDir returns the problems of the hooks directory dir that make the
// daemon refuse hooks: the directory itself (see trust.Check) and each hook
// in it (see CheckProgram), one message each naming the file.
func CheckDir(dir string) []string {
	if err := trust.Check(dir, nil); err != nil {
		return []string{"hooks directory " + err.Error()}
	}
	n := &Notifier{name: "hooks", dir: dir, log: slog.New(slog.DiscardHandler)}
	hooks, err := n.Hooks()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, h := range hooks {
		if h.Problem != "" {
			problems = append(problems, fmt.Sprintf("hook %q: %s", h.Path, h.Problem))
		}
	}
	return problems
}
