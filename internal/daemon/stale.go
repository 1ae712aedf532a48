package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/store"
)

// ErrStale is wrapped by the error Lock.Current returns when the state
// directory's path no longer leads to the directory the lock holds.
var ErrStale = errors.New("the state directory's path leads elsewhere")

// Current checks that the state directory's path still leads to the
// directory l holds (same device and inode), and the database file in it
// to the one opened (NoteDB): they do not once the file system holding it
// was unmounted (lazily, while fshealth held files in it) or another was
// mounted over it, or the database file was replaced or removed. Three
// system calls, no I/O.
func (l *Lock) Current() error {
	var held, now unix.Stat_t
	if err := unix.Fstat(l.DirFD, &held); err != nil {
		return fmt.Errorf("state directory %s: %w", l.Dir, err)
	}
	if err := unix.Stat(l.Dir, &now); errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("state directory %s: gone from its path (%w): its file system was unmounted or another was mounted over it (%w)",
			l.Dir, err, ErrStale)
	} else if err != nil {
		return fmt.Errorf("state directory %s: %w", l.Dir, err)
	}
	if held.Dev == now.Dev && held.Ino == now.Ino && l.db != [2]uint64{} {
		db := filepath.Join(l.Dir, store.FileName)
		var st unix.Stat_t
		err := unix.Fstatat(l.DirFD, store.FileName, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case errors.Is(err, unix.ENOENT):
			return fmt.Errorf("history database %s: gone from its path (%w): the one fshealth held is no longer there (%w)", db, err, ErrStale)
		case err != nil:
			return fmt.Errorf("history database %s: %w", db, err)
		case [2]uint64{uint64(st.Dev), st.Ino} != l.db:
			return fmt.Errorf("history database %s: replaced by another file: the one fshealth held is no longer at its path (%w)", db, ErrStale)
		}
		return nil
	}
	if held.Dev != now.Dev || held.Ino != now.Ino {
		return fmt.Errorf("state directory %s: its file system was unmounted or another was mounted over it: "+
			"the directory fshealth holds (device %d:%d inode %d) is no longer the one its path leads to (device %d:%d inode %d) (%w)",
			l.Dir, unix.Major(uint64(held.Dev)), unix.Minor(uint64(held.Dev)), held.Ino,
			unix.Major(uint64(now.Dev)), unix.Minor(uint64(now.Dev)), now.Ino, ErrStale)
	}
	return nil
}

// NoteDB records which file the database opened in the state directory
// is, for Current. It is called right after the open.
func (l *Lock) NoteDB() error {
	var st unix.Stat_t
	if err := unix.Fstatat(l.DirFD, store.FileName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("history database %s: %w", filepath.Join(l.Dir, store.FileName), err)
	}
	l.db = [2]uint64{uint64(st.Dev), st.Ino}
	return nil
}

// parentDev returns the device of dir's parent directory, or 0.
func parentDev(dir string) uint64 {
	var st unix.Stat_t
	if unix.Stat(filepath.Dir(dir), &st) != nil {
		return 0
	}
	return uint64(st.Dev)
}

// mayCreate reports whether a retry of the history may create the missing
// state directory dir, whose parent was on the device parent when fshealth
// first used it: only if the parent still is, or is now the root of a
// mounted file system. A parent on another device that is no mount point
// is the directory a file system is mounted on while it is not: creating
// the state there would record the history where nobody looks once it is
// mounted again.
func mayCreate(dir string, parent uint64) bool {
	if _, err := os.Lstat(dir); err == nil {
		return false
	}
	p := filepath.Dir(dir)
	var a, b unix.Stat_t
	if unix.Stat(p, &a) != nil {
		return false
	}
	if uint64(a.Dev) == parent {
		return true
	}
	if unix.Stat(filepath.Dir(p), &b) != nil {
		return false
	}
	return a.Dev != b.Dev || p == "/"
}

// staleEvery is how often the history checks that the state directory it
// holds is still the one at its path.
var staleEvery = 2 * time.Second

// checkStale checks that the state directory the history holds is still
// the one at its path (Lock.Current). If it is not, that is a storage
// fault: the history moves to memory, carrying what the database it held
// has (it can still be read), and the retry then opens the directory at
// the path and commits it there.
func (h *history) checkStale() {
	h.use.RLock()
	s, l := h.cur, h.lock
	var err error
	if h.degraded == nil && l != nil {
		err = l.Current()
	}
	h.use.RUnlock()
	if err == nil {
		return
	}
	if errors.Is(err, ErrStale) {
		h.log.Error("the state directory fshealth holds is no longer the one at its path; moving to the one there", "err", err)
	}
	h.toMemory(s, err, false, true)
}
