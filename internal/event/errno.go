package event

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxErrno is the largest error number the kernel returns (MAX_ERRNO).
const MaxErrno = 4095

// errnoNumbers maps every known errno name, aliases included, to its
// number; errnoNames maps numbers to the name fshealth prints.
var errnoNumbers, errnoNames = buildErrnoTables()

// preferredErrnoNames fixes the printed name of errnos that have aliases,
// matching the names events carry: file systems say EFSCORRUPTED and
// EFSBADCRC inside the kernel, but userspace knows them as EUCLEAN and
// EBADMSG.
var preferredErrnoNames = map[syscall.Errno]string{
	syscall.EUCLEAN:    "EUCLEAN",
	syscall.EBADMSG:    "EBADMSG",
	syscall.EAGAIN:     "EAGAIN",
	syscall.EDEADLK:    "EDEADLK",
	syscall.EOPNOTSUPP: "EOPNOTSUPP",
}

// errnoAliases are further names accepted in rules.
var errnoAliases = map[string]syscall.Errno{
	"EFSCORRUPTED": syscall.EUCLEAN,
	"EFSBADCRC":    syscall.EBADMSG,
	"EWOULDBLOCK":  syscall.EAGAIN,
	"EDEADLOCK":    syscall.EDEADLK,
	"ENOTSUP":      syscall.EOPNOTSUPP,
}

func buildErrnoTables() (map[string]int, map[int]string) {
	byName := make(map[string]int)
	byNumber := make(map[int]string)
	for i := 1; i < 256; i++ {
		e := syscall.Errno(i)
		n := unix.ErrnoName(e)
		if n == "" {
			continue
		}
		byName[n] = i
		if p, ok := preferredErrnoNames[e]; ok {
			n = p
		}
		byName[n] = i
		byNumber[i] = n
	}
	for n, e := range errnoAliases {
		byName[n] = int(e)
	}
	return byName, byNumber
}

// ErrnoNumber returns the number of the errno called name ("EUCLEAN",
// "EIO", or an alias such as "EFSCORRUPTED"), and whether the name is known.
func ErrnoNumber(name string) (int, bool) {
	n, ok := errnoNumbers[name]
	return n, ok
}

// ErrnoName returns the symbolic name of errno n as events carry it
// ("EUCLEAN"), or "E<n>" for numbers without one (errnoNames holds every
// name unix.ErrnoName knows: they all lie below 256).
func ErrnoName(n int) string {
	if s, ok := errnoNames[n]; ok {
		return s
	}
	return "E" + strconv.Itoa(n)
}
