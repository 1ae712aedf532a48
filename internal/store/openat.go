package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fileSuffixes are the files SQLite keeps next to the database.
var fileSuffixes = []string{"", "-wal", "-shm", "-journal"}

// OpenIn opens (creating it if needed) the database in the state directory
// dirFD, a descriptor of the already verified directory dir, as Open does.
// The database and the files SQLite keeps beside it must be regular files
// owned by root (or the user fshealth runs as), or absent: a symbolic link
// or another user's file there is refused, never followed. SQLite opens
// them through /proc/self/fd/dirFD, so the directory checked is the one
// used.
func OpenIn(dirFD int, dir string) (*Store, error) {
	if err := CheckFiles(dirFD, dir); err != nil {
		return nil, err
	}
	return openRW("/proc/self/fd/"+strconv.Itoa(dirFD)+"/"+FileName, filepath.Join(dir, FileName))
}

// CheckFiles checks the database files in the directory dirFD (named dir in
// errors): each must be absent or a regular file owned by root or the
// user fshealth runs as.
func CheckFiles(dirFD int, dir string) error { return checkFiles(dirFD, dir, FileName) }

// checkFiles is CheckFiles for the database file name.
func checkFiles(dirFD int, dir, db string) error {
	for _, suffix := range fileSuffixes {
		name := db + suffix
		var st unix.Stat_t
		err := unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		path := filepath.Join(dir, name)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s: not a regular file (a symbolic link or special file): refusing to open it (%w)", path, unix.ELOOP)
		}
		if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%s: owned by uid %d, not root: refusing to open it (%w)", path, st.Uid, os.ErrPermission)
		}
	}
	return nil
}

// MoveAside renames a damaged database in the directory dirFD (named dir)
// and its write-ahead log out of the way, keeping them for forensics as
// fshealth.db.corrupt-<UTC time> (and its -wal), and removes its shared
// memory file, so that a new database can be started. It returns the new
// name's path.
func MoveAside(dirFD int, dir string, now time.Time) (string, error) {
	aside := FileName + ".corrupt-" + now.UTC().Format("20060102T150405.000000Z")
	if err := unix.Renameat2(dirFD, FileName, dirFD, aside, unix.RENAME_NOREPLACE); err != nil {
		return "", fmt.Errorf("moving the damaged %s aside: %w", filepath.Join(dir, FileName), err)
	}
	if err := unix.Renameat2(dirFD, FileName+"-wal", dirFD, aside+"-wal", unix.RENAME_NOREPLACE); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", fmt.Errorf("moving the damaged %s aside: %w", filepath.Join(dir, FileName+"-wal"), err)
	}
	for _, suffix := range []string{"-shm", "-journal"} {
		if err := unix.Unlinkat(dirFD, FileName+suffix, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return "", fmt.Errorf("removing %s: %w", filepath.Join(dir, FileName+suffix), err)
		}
	}
	return filepath.Join(dir, aside), nil
}

// MovedAside lists the damaged databases MoveAside kept in dir, oldest
// first.
func MovedAside(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, FileName+".corrupt-*"))
	var out []string
	for _, p := range m {
		if !strings.HasSuffix(p, "-wal") {
			out = append(out, p)
		}
	}
	return out
}
