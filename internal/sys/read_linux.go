package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadNonblock is read(2) on a non-blocking descriptor that is known to
// return at once (it has data, or fails with EAGAIN), made without telling
// the Go runtime a system call is under way. unix.Read does tell it, and
// when the runtime's monitor thread (sysmon) sleeps, as it does in an idle
// daemon, entering the call wakes that thread with a futex: a system call
// and a thread wake-up more for every read. That is right for a read that
// may wait, and a waste for one that cannot, such as the reads that follow
// a poll(2) or epoll_wait(2) saying the descriptor is readable. Never use
// it on a descriptor whose read can block: the goroutine would hold its
// thread and the garbage collector would wait for it.
func ReadNonblock(fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
