package sys

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadNonblock(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer func() {
		if p[1] >= 0 {
			unix.Close(p[1])
		}
	}()
	buf := make([]byte, 8)
	if n, err := ReadNonblock(p[0], buf); !errors.Is(err, unix.EAGAIN) || n != 0 {
		t.Errorf("empty pipe: %d, %v; want 0, EAGAIN", n, err)
	}
	if _, err := unix.Write(p[1], []byte("fanotify event")); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadNonblock(p[0], buf); err != nil || string(buf[:n]) != "fanotify" {
		t.Errorf("got %q, %v; want the first 8 bytes", buf[:n], err)
	}
	if n, err := ReadNonblock(p[0], nil); err != nil || n != 0 {
		t.Errorf("empty buffer: %d, %v; want 0, nil", n, err)
	}
	if n, err := ReadNonblock(p[0], buf); err != nil || string(buf[:n]) != " event" {
		t.Errorf("got %q, %v; want the rest", buf[:n], err)
	}
	unix.Close(p[1])
	p[1] = -1
	if n, err := ReadNonblock(p[0], buf); err != nil || n != 0 {
		t.Errorf("closed pipe: %d, %v; want 0, nil (end of file)", n, err)
	}
	if _, err := ReadNonblock(-1, buf); !errors.Is(err, unix.EBADF) {
		t.Errorf("fd -1: %v, want EBADF", err)
	}
}
