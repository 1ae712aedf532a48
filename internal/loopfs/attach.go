package loopfs

import (
	"fmt"
	"os"
)

// Attach attaches file to a free loop device with LO_FLAGS_AUTOCLEAR, as
// Mount does, without mounting it, and returns the device's path
// ("/dev/loopN") and a read-only handle that keeps it attached. Whatever
// opens the device before the handle is closed (a device-mapper table, a
// mount) keeps it attached after; once the last user closes it, the kernel
// detaches it.
func Attach(file string) (dev string, hold *os.File, err error) {
	n, fd, err := attachLoop(file)
	if err != nil {
		return "", nil, err
	}
	dev = fmt.Sprintf("/dev/loop%d", n)
	return dev, os.NewFile(uintptr(fd), dev), nil
}
