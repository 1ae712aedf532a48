package testutil

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RefuseSyscalls puts every thread of this process, for the rest of its
// life, under a seccomp filter that makes the system calls nrs fail with
// errno and allows everything else (as a service manager's
// SystemCallFilter= does). Tests call it in a child they start for it.
func RefuseSyscalls(errno unix.Errno, nrs ...uintptr) error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("testutil: the seccomp filter is written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	// struct seccomp_data: int nr; __u32 arch; ...
	const (
		offNR   = 0
		offArch = 4
		ld      = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret     = unix.BPF_RET | unix.BPF_K
	)
	n := uint8(len(nrs))
	prog := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, K: arch, Jf: n + 1}, // another ABI: allow
		{Code: ld, K: offNR},
	}
	for i, nr := range nrs {
		// Matched: jump over the remaining comparisons and the allow.
		prog = append(prog, unix.SockFilter{Code: jeq, K: uint32(nr), Jt: n - uint8(i)})
	}
	prog = append(prog,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(errno)})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	// TSYNC: every thread of the process, not only the calling one.
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", e)
	}
	runtime.KeepAlive(prog)
	return nil
}
