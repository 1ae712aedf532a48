package watch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mdEvents waits for md's events: /proc/mdstat signals POLLPRI whenever
// md counts an event (a member failed, removed or added; a resync,
// recovery or check started or ended), once it was read since the last
// one — the notification mdadm --monitor waits for. One descriptor for all
// arrays, however many file systems are on them.
type mdEvents struct {
	f    *os.File
	wake int // eventfd that makes wait return
	buf  []byte
}

// openMDEvents opens mdstat under procRoot; an error when md is not in
// the kernel (no file).
func openMDEvents(procRoot string) (*mdEvents, error) {
	path := filepath.Join(procRoot, "mdstat")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	m := &mdEvents{f: f, wake: wake, buf: make([]byte, 4096)}
	if err := m.consume(); err != nil {
		m.close()
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return m, nil
}

// consume reads mdstat to its end, which acknowledges the events so far.
func (m *mdEvents) consume() error {
	if _, err := m.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	for {
		_, err := m.f.Read(m.buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wait calls onEvent after each md event until stop is called.
func (m *mdEvents) wait(onEvent func()) error {
	for {
		fds := []unix.PollFd{{Fd: int32(m.f.Fd()), Events: unix.POLLPRI | unix.POLLERR}, {Fd: int32(m.wake), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll %s: %w", m.f.Name(), err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0 {
			if err := m.consume(); err != nil {
				return fmt.Errorf("reading %s: %w", m.f.Name(), err)
			}
			onEvent()
		}
	}
}

// stop makes wait return.
func (m *mdEvents) stop() { unix.Write(m.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }

// close releases the descriptors once wait has returned.
func (m *mdEvents) close() {
	m.f.Close()
	unix.Close(m.wake)
}
