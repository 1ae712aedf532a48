package watch

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/storage"
)

// dmEvents waits for device-mapper's events: once armed (DM_DEV_ARM_POLL),
// /dev/mapper/control polls readable after any device-mapper device raised
// an event — a dm-raid target does when a leg fails and when a recovery
// ends. One descriptor for every device, as /proc/mdstat is for md.
type dmEvents struct {
	ctl  *storage.DMControl
	wake int // eventfd that makes wait return
}

// openDMEvents opens device-mapper's control device and arms it; an error
// when the kernel has no device-mapper or is older than Linux 4.13.
func openDMEvents() (*dmEvents, error) {
	ctl, err := storage.OpenDMControl("")
	if err != nil {
		return nil, err
	}
	if err := ctl.ArmPoll(); err != nil {
		ctl.Close()
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &dmEvents{ctl: ctl, wake: wake}, nil
}

// wait calls onEvent after each device-mapper event until stop is called.
// It re-arms before calling onEvent, so that an event raised while the
// arrays are read wakes it again.
func (d *dmEvents) wait(onEvent func()) error {
	for {
		fds := []unix.PollFd{{Fd: int32(d.ctl.Fd()), Events: unix.POLLIN}, {Fd: int32(d.wake), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll /dev/mapper/control: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if err := d.ctl.ArmPoll(); err != nil {
				return err
			}
			onEvent()
		} else if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return fmt.Errorf("poll /dev/mapper/control: revents %#x", fds[0].Revents)
		}
	}
}

// stop makes wait return.
func (d *dmEvents) stop() { unix.Write(d.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }

// close releases the descriptors once wait has returned.
func (d *dmEvents) close() {
	d.ctl.Close()
	unix.Close(d.wake)
}

// dmRaidCandidate reports whether a layer may be a dm-raid or multipath
// target: a multipath device (uuid "mpath-"), or a device-mapper device
// built on at least two others (a raid logical volume sits on a metadata
// and a data sub-volume per leg; a multipath device made by other tools
// on its paths).
func dmRaidCandidate(l *storage.Layer) bool {
	switch l.Kind {
	case storage.KindMultipath:
		return l.Dev != ""
	case storage.KindLVM, storage.KindDM:
		return len(l.On) >= 2 && l.Dev != ""
	}
	return false
}
