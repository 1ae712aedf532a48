package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockName is the file in the state directory that the running daemon
// holds an exclusive flock(2) on; it contains the daemon's pid.
const lockName = "fshealth.pid"

// ErrLocked is wrapped by the error AcquireLock returns when another daemon
// holds the state directory.
var ErrLocked = errors.New("state directory in use")

// Lock is the running daemon's hold on its state directory: a descriptor of
// the verified directory, and the locked pid file, opened read-only so that
// holding it does not keep the file system from being remounted read-only.
type Lock struct {
	// Dir is the state directory's path; DirFD a descriptor of it, which
	// every file in it is opened relative to.
	Dir   string
	DirFD int
	lock  int
	// db is the device and inode of the database file opened in Dir
	// (NoteDB), checked by Current; zero if none.
	db [2]uint64
}

// AcquireLock verifies the state directory, creating it (mode 0700) if
// needed, and takes its lock. The directory must be owned by root (or the
// user fshealth runs as) and writable by nobody else; it is opened without
// following a symbolic link, and so is the pid file in it. It fails,
// wrapping ErrLocked and naming its pid, if another daemon holds the lock.
func AcquireLock(stateDir string) (*Lock, error) {
	return acquireLock(stateDir, true)
}

// acquireLock is AcquireLock; it creates the state directory only if
// create is set (else a missing one is an error wrapping fs.ErrNotExist).
func acquireLock(stateDir string, create bool) (*Lock, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", stateDir, err)
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	l := &Lock{Dir: dir, DirFD: dfd, lock: -1}
	if err := l.verifyDir(); err != nil {
		l.Release()
		return nil, err
	}
	path := filepath.Join(dir, lockName)
	fd, err := unix.Openat(dfd, lockName, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	if err != nil {
		l.Release()
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link: refusing to follow it", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.lock = fd
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		l.Release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || !trustedOwner(st.Uid) {
		l.Release()
		return nil, fmt.Errorf("%s: not a regular file of root's with one link: refusing to use it (%w)", path, os.ErrPermission)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		l.Release()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := RunningPID(dir)
			return nil, fmt.Errorf("another fshealth daemon (pid %d) is using the state directory %s (%w)", pid, dir, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// The pid is written through a second descriptor, closed at once: the
	// lock's own is read-only.
	w, err := unix.Openat(dfd, lockName, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
		err = unix.Ftruncate(w, 0)
		if err == nil {
			var n int
			n, err = unix.Pwrite(w, pid, 0)
			if err == nil && n != len(pid) {
				err = errors.New("short write")
			}
		}
		// Synced: a file system that fails writes (EIO) shows it
		// here, before anything is recorded on it.
		if err == nil {
			err = unix.Fsync(w)
		}
		unix.Close(w)
	}
	if err != nil {
		l.Release()
		return nil, fmt.Errorf("writing the pid to %s: %w", path, err)
	}
	return l, nil
}

// trustedOwner reports whether uid may own fshealth's state: root, or the
// user fshealth runs as.
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// verifyDir checks the state directory's owner and mode.
func (l *Lock) verifyDir() error {
	var st unix.Stat_t
	if err := unix.Fstat(l.DirFD, &st); err != nil {
		return fmt.Errorf("state directory %s: %w", l.Dir, err)
	}
	if !trustedOwner(st.Uid) {
		return fmt.Errorf("state directory %s is owned by uid %d, not root: refusing to use it (%w)", l.Dir, st.Uid, os.ErrPermission)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("state directory %s is writable by group or others (mode %04o): refusing to use it; chmod go-w it (%w)",
			l.Dir, st.Mode&0o7777, os.ErrPermission)
	}
	return nil
}

// Release drops the lock and the directory descriptor.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	var err error
	if l.lock >= 0 {
		err = unix.Close(l.lock)
		l.lock = -1
	}
	if l.DirFD >= 0 {
		if e := unix.Close(l.DirFD); err == nil {
			err = e
		}
		l.DirFD = -1
	}
	return err
}

// RunningPID reports the pid of the daemon holding the state directory's
// lock, or 0 if no daemon runs there.
func RunningPID(stateDir string) (int, error) {
	path := filepath.Join(stateDir, lockName)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// If we can take a shared lock, nobody holds the exclusive one.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0, nil
	}
	b := make([]byte, 32)
	n, err := f.ReadAt(b, 0)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0, fmt.Errorf("%s: no pid in it", path)
	}
	return pid, nil
}
