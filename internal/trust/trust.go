// Package trust decides whether a file that fshealth reads or runs with its
// privileges can be changed by someone else: the configuration file, secret
// files, the hooks directory, hook programs and the programs of command
// actions.
//
// A path is trusted when the file and every directory on the way to it —
// symbolic links followed, each link itself included — belong to root or to
// the user fshealth runs as, and none of them can be written by anyone else
// (group or other write permission). A world-writable directory with the
// sticky bit (/tmp) is accepted on the way, because only the owner of an
// entry can replace it there, and that owner is checked next.
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks bounds the symbolic links followed in one path, like the
// kernel's MAXSYMLINKS.
const maxLinks = 40

// Error says why a path is not trusted: which file, who owns it and its
// mode.
type Error struct {
	// Path is the path that was checked.
	Path string
	// File is the file or directory at fault, a component of Path (or the
	// target of a symbolic link in it).
	File string
	// Reason says what is wrong with File.
	Reason string
}

// Error formats e as "PATH: FILE REASON" (FILE is left out when it is the
// path itself).
func (e *Error) Error() string {
	if e.File == e.Path {
		return fmt.Sprintf("%q %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%q: %q %s", e.Path, e.File, e.Reason)
}

// Owners returns the user ids trusted to own files: root and the effective
// user fshealth runs as.
func Owners() []int {
	if euid := os.Geteuid(); euid != 0 {
		return []int{0, euid}
	}
	return []int{0}
}

// Check returns nil when path and every directory above it are owned by one
// of owners and writable by nobody else; otherwise an *Error naming the
// offending file with its owner and mode, or the error met looking at it.
// owners nil means Owners().
func Check(path string, owners []int) error {
	if owners == nil {
		owners = Owners()
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		path = abs
	}
	bad := func(file string, st *syscall.Stat_t, what string) error {
		return &Error{Path: path, File: file, Reason: fmt.Sprintf("is %s (owner %s, mode %s): only root (or the user fshealth runs as) may be able to change what fshealth reads or runs",
			what, OwnerName(int(st.Uid)), modeString(st.Mode))}
	}
	trusted := func(uid uint32) bool {
		for _, o := range owners {
			if uint32(o) == uid {
				return true
			}
		}
		return false
	}
	// checkDir checks a directory that the walk goes through.
	checkDir := func(dir string) error {
		st, err := lstat(dir)
		if err != nil {
			return err
		}
		if !trusted(st.Uid) {
			return bad(dir, st, "a directory owned by another user")
		}
		if st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0 {
			return bad(dir, st, "a directory writable by its group or by every user")
		}
		return nil
	}
	if err := checkDir("/"); err != nil {
		return err
	}
	rest := components(path)
	cur := "/"
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur has no symbolic links: already checked
			continue
		}
		next := filepath.Join(cur, c)
		st, err := lstat(next)
		if err != nil {
			return err
		}
		if !trusted(st.Uid) {
			what := "owned by another user"
			switch st.Mode & syscall.S_IFMT {
			case syscall.S_IFLNK:
				what = "a symbolic link owned by another user"
			case syscall.S_IFDIR:
				what = "a directory owned by another user"
			}
			return bad(next, st, what)
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			links++
			if links > maxLinks {
				return &Error{Path: path, File: next, Reason: "has too many levels of symbolic links"}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(components(target), rest...)
			continue
		case syscall.S_IFDIR:
			if err := checkDir(next); err != nil {
				return err
			}
		default:
			if len(rest) > 0 {
				return &Error{Path: path, File: next, Reason: "is not a directory"}
			}
			if st.Mode&0o022 != 0 {
				return bad(next, st, "writable by its group or by every user")
			}
		}
		cur = next
	}
	return nil
}

func components(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

func lstat(p string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return &st, nil
}

// OwnerName returns "name (uid N)" for a user id, or "uid N" when the user
// is unknown.
func OwnerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username + " (uid " + strconv.Itoa(uid) + ")"
	}
	return "uid " + strconv.Itoa(uid)
}

// modeString formats a raw st_mode's permission bits like "0755", with the
// set-id and sticky bits when set.
func modeString(m uint32) string {
	return fmt.Sprintf("%04o", m&0o7777)
}

// IsUntrusted reports whether err is an *Error (as opposed to a failure to
// look at the file).
func IsUntrusted(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
