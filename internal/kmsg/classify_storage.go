package kmsg

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// storageRules are the messages about the storage under a file system
// beyond the block layer's request errors: ext4's warning about a
// directory block it could not read, md failing a member device out of an
// array, and the sense data of a SCSI disk reporting a medium or hardware
// error. Like every rule they are anchored at both ends and checked
// against the level the kernel prints them at.
var storageRules = []rule{
	// fs/ext4/namei.c, __ext4_read_dirblock through __ext4_warning
	// (KERN_WARNING): "%s:%d: " is the caller's function and line; the
	// process name (comm) is the task's own, which any user sets, so it
	// is only skipped over: what follows it is the kernel's fixed text,
	// anchored at the end, and the errno is in it: a number ("error -5",
	// 6.1), or its name where the kernel prints it with %pe ("error -EIO",
	// 7.3). A process name is at most 15 bytes.
	{fstype: FSExt4, kind: KindIOError, levels: lvWarn, byErrno: true, contains: " reading directory block", prefix: "EXT4-fs warning (device ",
		re:     compile(`^EXT4-fs warning \(device ` + devRE + `\): (?P<func>\w+):\d+: inode #(?P<inode>\d+): lblock \d+: comm .{0,15}: error (?:(?P<errno>-?\d+)|-(?P<errname>E[A-Z0-9]+)) reading directory block$`),
		adjust: errnoByName},
	// drivers/md/raid1.c, raid10.c, raid5.c (raid1_error, raid10_error,
	// raid5_error; pr_crit): one record, two lines, the second from Linux
	// 4.x on. The device is the member that was failed out of the array.
	{fstype: FSBlock, kind: KindDeviceError, levels: lvCrit, contains: ": Disk failure on ", prefix: "md/",
		re:     compile(`^md/(?P<personality>raid1|raid10|raid):(?P<array>[^\s:/]+): Disk failure on (?P<dev>[^\s,\[\]]+), disabling device\.(?:\nmd/(?:raid1|raid10|raid):[^\s:/]+: Operation continuing on \d+ devices\.)?$`),
		adjust: func(m *Message, _ map[string]string) { m.Errno = syscall.EIO }},
	// drivers/scsi/scsi_logging.c, scsi_log_print_sense_hdr through
	// dev_printk (KERN_INFO): "sd H:C:T:L: [disk] tag#N Sense Key : KEY
	// [current] " for a command of the disk that failed. Only the keys
	// that mean the disk itself failed the I/O are errors.
	{fstype: FSBlock, kind: KindIOError, levels: levels(LevelInfo), contains: "Sense Key : ", prefix: "sd ",
		re:     compile(`^sd (?P<hctl>\d+:\d+:\d+:\d+): \[(?P<dev>[^\s\[\]]+)\] (?:tag#\d+ )?Sense Key : (?P<sense>Medium Error|Hardware Error) \[(?:current|deferred)\] (?:\[descriptor\] )?$`),
		adjust: scsiSense},
}

func init() { rules = append(rules, storageRules...) }

// scsiSense sets EIO for a SCSI sense line, and refuses (clears the
// device of) a record without the structured DEVICE field or whose field
// names another SCSI device than its text. dev_printk, which prints these
// lines, always attaches the field, and it prints them at KERN_INFO, the
// level of reports that start with a user's process name: the field is
// what no such report has.
func scsiSense(m *Message, g map[string]string) {
	m.Errno = syscall.EIO
	if d, ok := m.Record.Fields["DEVICE"]; !ok || d != "+scsi:"+g["hctl"] {
		m.Device = ""
	}
}

// errnoNames maps errno names ("EIO") to their numbers, for messages that
// print an error with %pe.
var errnoNames = func() map[string]syscall.Errno {
	m := map[string]syscall.Errno{}
	for e := syscall.Errno(1); e < 4096; e++ {
		if n := unix.ErrnoName(e); n != "" {
			m[n] = e
		}
	}
	// The names the kernel prints where x/sys knows a number by another.
	for n, e := range map[string]syscall.Errno{"EUCLEAN": syscall.EUCLEAN, "EAGAIN": syscall.EAGAIN,
		"EDEADLK": syscall.EDEADLK, "EOPNOTSUPP": syscall.EOPNOTSUPP} {
		m[n] = e
	}
	return m
}()

// errnoByName sets the errno, and the kind it stands for, of a message
// that printed the error's name.
func errnoByName(m *Message, g map[string]string) {
	if n, ok := g["errname"]; ok {
		if e, ok := errnoNames[n]; ok {
			m.Errno = e
			if k, ok := errnoKinds[e]; ok {
				m.Kind = k
			}
		}
	}
}
