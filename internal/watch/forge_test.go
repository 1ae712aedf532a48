package watch

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestForgedKernelLogErrorsAreIgnored is the attack of a local user
// without privileges on a watched XFS file system: programs named like XFS
// messages ("Shutting down filesystem") that name themselves like XFS's
// prefix ("XFS (loop3): ") and segfault, so that the kernel logs
// "XFS (loop3): [PID]: segfault at ... in Shutting down filesystem[...]".
// No event may come of it. A real ext4 error raised afterwards is the
// sentinel: by its event the watcher has read the forged records, and a
// hold later any event they made would have come.
func TestForgedKernelLogErrorsAreIgnored(t *testing.T) {
	testutil.CheckNoLeaks(t)
	s := testutil.NewSegfaulter(t)
	x := testutil.NewImage(t, "xfs", 300<<20, "")
	sentinel := testutil.NewExt4(t, 0)
	c := startConfig(t, Config{Paths: []string{x.Mountpoint, sentinel.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)

	r, err := kmsg.Open(kmsg.DefaultPath, kmsg.Options{Start: kmsg.StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	prefix := "XFS (" + x.Name + "): "
	if len(prefix) > 15 {
		t.Fatalf("device name %q too long for a process name", x.Name)
	}
	for _, file := range []string{"Shutting down filesystem", "User initiated shutdown received.", "Corruption detected. Unmount and run xfs_repair"} {
		waitForRecord(t, r, prefix, func() int { return s.Fault(prefix, file) })
	}
	// Sentinel: ext4 reports this through FAN_FS_ERROR; the watcher reads
	// the kernel log before each batch of fanotify events.
	if err := os.WriteFile("/sys/fs/ext4/"+sentinel.Name+"/trigger_fs_error", []byte("sentinel\n"), 0); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	if e.Device != sentinel.Dev || e.Source != event.SourceFanotify {
		t.Fatalf("first event is not the sentinel: %s", event.AppendText(nil, &e))
	}
	select {
	case e := <-c.events:
		t.Errorf("a forged kernel log record made an event: %s", event.AppendText(nil, &e))
	case <-time.After(testHold + 2*time.Second):
	}
}

// waitForRecord runs fault, which returns the pid of a process that
// segfaulted, and reads the kernel log until its segfault report, which
// must start with comm. The kernel rate-limits these reports (10 every 5
// seconds), so fault runs again every 2 seconds, for up to 30 seconds.
func waitForRecord(t *testing.T, r *kmsg.Reader, comm string, fault func() int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var marks []string
	for time.Now().Before(deadline) {
		marks = append(marks, comm+"["+strconv.Itoa(fault())+"]: segfault at ")
		retry := time.Now().Add(2 * time.Second)
		for {
			r.SetReadDeadline(retry)
			it, err := r.Next()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatalf("reading the kernel log: %v", err)
			}
			rec, ok := it.(kmsg.Record)
			if !ok || !rec.Kernel() {
				continue
			}
			for _, m := range marks {
				if strings.HasPrefix(rec.Message, m) {
					return
				}
			}
		}
	}
	t.Fatalf("no segfault report of a process named %q in the kernel log within 30s", comm)
}
