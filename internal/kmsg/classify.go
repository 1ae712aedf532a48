package kmsg

import (
	"strconv"
	"strings"
	"syscall"
)

// Kind is the kind of error a kernel log message reports.
type Kind string

// The kinds of error Classify distinguishes.
const (
	// KindCorruption is metadata found inconsistent or invalid.
	KindCorruption Kind = "corruption"
	// KindIOError is a failed read or write of the device.
	KindIOError Kind = "io-error"
	// KindShutdown is the file system shutting down, aborting its journal
	// or turning itself read-only because of an error (or on request).
	KindShutdown Kind = "shutdown"
	// KindChecksum is data or metadata that failed checksum verification.
	KindChecksum Kind = "checksum"
	// KindDeviceError is a change of the per-device error counters btrfs
	// keeps (write, read, flush, corruption, generation), or a device
	// that md failed out of an array.
	KindDeviceError Kind = "device-error"
	// KindError is any other error.
	KindError Kind = "error"
)

// File system types of a Message.
const (
	FSExt4  = "ext4"
	FSXFS   = "xfs"
	FSBtrfs = "btrfs"
	// FSBlock marks messages of the block layer, about a device rather
	// than a file system.
	FSBlock = "block"
	// FSGeneric marks messages of the kernel's generic file system error
	// reporting (fs/fserror.c, Linux 7.0+), which name the file system's
	// device but not its type.
	FSGeneric = "generic"
)

// Message is a kernel log record recognised as a file system or block
// device error by Classify.
type Message struct {
	// Record is the record the message was read from.
	Record Record
	// FSType is FSExt4, FSXFS, FSBtrfs or FSBlock. Messages of the jbd2
	// journal count as ext4.
	FSType string
	// Device is the kernel's name of the device as the message prints it
	// ("loop0", "sda1", "dm-0"): the file system's device (the one named
	// in its "(device ...)" prefix) for file system messages, and the
	// device the I/O failed on for block layer messages, where "I/O error,
	// dev" messages name the whole disk ("sda") and "Buffer I/O error"
	// messages the partition ("sda1"). For jbd2 messages the journal's
	// "-<inode>" suffix ("loop0-8") is removed.
	Device string
	// DevicePath is the member device as a btrfs message prints it (the
	// path it was scanned under, "/dev/loop0"), for messages about one
	// device of the file system; "" otherwise.
	DevicePath string
	// Kind is the kind of error.
	Kind Kind
	// Errno is the error number the message prints ("error -5",
	// "errno=-117", "error 117", an ext4 error string such as "IO
	// failure"), as a positive value, or the error number of a block layer
	// status ("I/O" is EIO, and so is the BLK_STS_IOERR that ext4_end_bio
	// prints as "I/O error 10"); 0 when there is none.
	Errno syscall.Errno
	// Inode is the inode number the message names, 0 when it names none.
	Inode uint64
	// Function is the kernel function the message names, without offset
	// ("ext4_lookup", "xfs_dinode_verify.part.0"), or "".
	Function string
	// Op is the operation of a failed block request as printed ("READ",
	// "WRITE", "FLUSH", ...), or "".
	Op string
	// Sector is, for "I/O error, dev" messages, the first 512-byte sector
	// of the failed request, counted from the start of the whole disk;
	// 0 otherwise. PartitionOf maps it to a partition.
	Sector uint64
	// Text is the message text, Record.Message.
	Text string
	// LostReport is set on the kernel's notice that it could not deliver
	// the FAN_FS_ERROR report of an error ("loop0: lost filesystem error
	// report for type 2 error -5", Linux 7.0+): the message is then the
	// only report of that error.
	LostReport bool
}

// rule is one entry of the pattern table.
type rule struct {
	fstype string
	kind   Kind
	// levels are the log levels the kernel prints the message at; a
	// record of another level is not this message.
	levels levelSet
	// prefix is a literal the message must start with, checked before
	// the regular expression; contains, if set, must occur in it.
	prefix, contains string
	// byErrno refines kind from the printed errno (errnoKinds).
	byErrno bool
	re      *pattern
	// adjust, if set, completes the message from the submatches.
	adjust func(m *Message, sub map[string]string)
}

// levelSet is a set of log levels, bit n for level n.
type levelSet uint8

// levels returns the set of the given log levels.
func levels(l ...int) levelSet {
	var s levelSet
	for _, n := range l {
		s |= 1 << uint(n)
	}
	return s
}

// has reports whether level l is in s.
func (s levelSet) has(l int) bool { return l >= 0 && l < 8 && s&(1<<uint(l)) != 0 }

// The log levels of the kernel's message helpers: xfs_alert, ext4's
// KERN_CRIT errors, pr_err and the block layer's KERN_ERR, warnings.
var (
	lvAlert = levels(LevelAlert)
	lvCrit  = levels(LevelCrit)
	lvErr   = levels(LevelErr)
	lvWarn  = levels(LevelWarning)
	// lvErrOrWarn is for messages whose level differs between kernel
	// versions.
	lvErrOrWarn = levels(LevelErr, LevelWarning)
	// lvBtrfs allows every btrfs level; btrfsLevel then requires the
	// level word of the prefix to be the record's level.
	lvBtrfs = levels(LevelEmerg, LevelAlert, LevelCrit, LevelErr, LevelWarning, LevelNotice, LevelInfo)
)

// The named groups a rule's expression may use:
//
//	dev      the device name as printed
//	jdev     a jbd2 journal name ("loop0-8")
//	path     a btrfs member device path
//	errno    a decimal errno, negative or not
//	inode    a decimal inode number; inohex a hexadecimal one (no 0x)
//	func     a function name (a %pS symbol's name, without its offset)
//	op       a block request operation
//	sector   a decimal sector number
//	status   a block layer status name ("I/O", "critical medium")
//	bstatus  a numeric blk_status_t
//	errstr   an ext4 error string ("IO failure")
//	rest     what follows "comm " in an ext4 error: the process name,
//	         which user space chooses, then the message (ext4CommText)
//	blevel   the level word of a btrfs message ("warning")
//
// Every expression is anchored at both ends and spells out the kernel's
// format: a process or file name that user space chooses (and that kernel
// reports such as a segfault's print first) can never stand in for a part
// of the format, and no ".*" can skip over one.
const (
	devRE = `(?P<dev>[^\s(),:\[\]]+)`
	// symRE is a %pS symbol: "name+0xoff/0xsize", with " [module]" when
	// the code is in a module; a bare address without kallsyms.
	symRE  = `(?:(?P<func>[A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[\w+\])?|0x[0-9a-f]+)`
	hexRE  = `0x[0-9a-f]+`
	xfsPre = `^XFS \(` + devRE + `\): `
	ext4Er = `^EXT4-fs error \(device ` + devRE + `\)`
	ext4Ms = `^EXT4-fs \(` + devRE + `\): `
	btrPre = `^BTRFS (?P<blevel>emergency|alert|critical|error|warning|notice|info) \(device ` + devRE + `(?::? state [A-Za-z]+)?\): `
	// statusRE lists the block layer's status names (blk_errors).
	statusRE = `(?P<status>I/O|operation not supported|timeout|critical space allocation|recoverable transport|critical target|critical nexus|reservation conflict|critical medium|protection|kernel resource|device resource|nonblocking retry|device offline|invalid|open zones exceeded|active zones exceeded|duration limit exceeded|dm internal retry)`
	// opRE is a block request operation as blk_op_str prints it.
	opRE = `(?P<op>[A-Z_]+|UNKNOWN)`
)

// rules is the pattern table: the first rule that matches a record decides.
// Each rule requires the device; messages that only follow up on an error
// already reported (XFS "Please unmount the filesystem", "Unmount and run
// xfs_repair" alone, hex dumps; btrfs "read error corrected") and reports
// of errors recorded earlier (ext4 "mounting fs with errors", "error count
// since last fsck") are deliberately not matched. The formats and levels
// are those of Linux 6.1 to 7.x (seen on 6.18, see testdata/messages.txt)
// plus older variants from the kernel sources.
var rules = []rule{
	// fs/fserror.c (Linux 7.0+): a FAN_FS_ERROR report that could not be
	// delivered (the kernel was short of memory); %s is the super block's
	// s_id, its device name.
	{fstype: FSGeneric, kind: KindError, levels: lvErrOrWarn, byErrno: true, contains: ": lost ",
		re:     compile(`^` + devRE + `: lost (?:file I/O error report for ino (?P<inode>\d+) type \d+ pos ` + hexRE + ` len ` + hexRE + `|filesystem error report for type \d+) error (?P<errno>-?\d+)$`),
		adjust: func(m *Message, _ map[string]string) { m.LostReport = true }},
	// fs/iomap/buffered-io.c (iomap_finish_ioend): write-back of a file's
	// data failed on a file system that writes through iomap (XFS,
	// zonefs, gfs2), printed rate-limited at KERN_ERR; %s is the super
	// block's s_id, its device name. Before Linux 7.0 it is the only
	// report of such an error (seen on 6.1: XFS on a device-mapper device
	// refusing writes).
	{fstype: FSGeneric, kind: KindIOError, levels: lvErr, contains: ": writeback error on inode ",
		re: compile(`^` + devRE + `: writeback error on inode (?P<inode>\d+), offset \d+, sector \d+$`)},
	// ext4, fs/ext4/super.c: __ext4_error, __ext4_error_inode,
	// __ext4_error_file (KERN_CRIT). The process name ("comm") is the
	// task's, which any user sets; ext4CommText finds the text after it.
	{fstype: FSExt4, kind: KindError, levels: lvCrit, contains: " comm ", prefix: "EXT4-fs error (device ",
		re:     compile(ext4Er + `: (?P<func>\w+):\d+: (?:inode #(?P<inode>\d+): )?(?:block \d+: )?comm (?P<rest>.+)$`),
		adjust: ext4ErrorKind},
	// __ext4_std_error.
	{fstype: FSExt4, kind: KindError, levels: lvCrit, contains: ") in ", prefix: "EXT4-fs error (device ",
		re:     compile(ext4Er + ` in (?P<func>\w+):\d+: (?P<errstr>IO failure|Out of memory|Readonly filesystem|Journal has aborted|Corrupt filesystem|Filesystem failed CRC|error -?\d+)$`),
		adjust: ext4StdError},
	{fstype: FSExt4, kind: KindShutdown, levels: lvCrit, contains: "Remounting filesystem read-only", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `Remounting filesystem read-only$`)},
	{fstype: FSExt4, kind: KindShutdown, levels: lvAlert, contains: "shut down requested (", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `shut down requested \(\d+\)$`)},
	{fstype: FSExt4, kind: KindIOError, levels: lvWarn, contains: " writing to inode ", prefix: "EXT4-fs warning (device ",
		re:     compile(`^EXT4-fs warning \(device ` + devRE + `\): (?P<func>ext4_end_bio):\d+: I/O error (?P<bstatus>\d+) writing to inode (?P<inode>\d+) starting block \d+\)$`),
		adjust: blkStatusNumber},
	{fstype: FSExt4, kind: KindIOError, levels: levels(LevelEmerg), byErrno: true, contains: "failed to convert unwritten extents", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `failed to convert unwritten extents to written extents -- potential data loss!  \(inode (?P<inode>\d+), error (?P<errno>-?\d+)\)$`)},
	{fstype: FSExt4, kind: KindIOError, levels: lvErr, contains: "I/O error while writing superblock", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `I/O error while writing superblock$`)},
	{fstype: FSExt4, kind: KindError, levels: lvCrit, byErrno: true, contains: "Delayed block allocation failed", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `Delayed block allocation failed for inode (?P<inode>\d+) at logical offset \d+ with max blocks \d+ with error (?P<errno>-?\d+)$`)},
	// Writeback that could not start a journal handle (the journal has
	// aborted: err -30, EROFS).
	{fstype: FSExt4, kind: KindError, levels: lvCrit, byErrno: true, contains: ": jbd2_start: ", prefix: "EXT4-fs (",
		re: compile(ext4Ms + `(?P<func>ext4_\w*writepages): jbd2_start: \d+ pages, ino (?P<inode>\d+); err (?P<errno>-?\d+)$`)},
	// jbd2, fs/jbd2/journal.c and commit.c.
	{fstype: FSExt4, kind: KindShutdown, levels: lvErr, prefix: "Aborting journal on device ",
		re: compile(`^Aborting journal on device (?P<jdev>[^\s\[\]]+?)\.$`)},
	{fstype: FSExt4, kind: KindIOError, levels: lvErr, contains: "I/O error when updating journal superblock", prefix: "JBD2: ",
		re: compile(`^JBD2: I/O error when updating journal superblock for (?P<jdev>[^\s\[\]]+?)\.$`)},
	{fstype: FSExt4, kind: KindIOError, levels: lvErr, byErrno: true, contains: " detected when updating journal superblock", prefix: "JBD2: ",
		re: compile(`^JBD2: Error (?P<errno>-?\d+) detected when updating journal superblock for (?P<jdev>[^\s\[\]]+?)\.$`)},
	{fstype: FSExt4, kind: KindIOError, levels: lvErrOrWarn, contains: "Detected IO errors ", prefix: "JBD2: ",
		re: compile(`^JBD2: Detected IO errors (?:\d+ )?while flushing file data on (?P<jdev>[^\s\[\]]+?)$`)},

	// XFS, fs/xfs/xfs_fsops.c, xfs_log.c, xfs_error.c, xfs_buf.c, ...
	// xfs_alert prints at KERN_ALERT, xfs_warn at KERN_WARNING.
	{fstype: FSXFS, kind: KindShutdown, levels: lvAlert, contains: "User initiated shutdown", prefix: "XFS (",
		re: compile(xfsPre + `User initiated shutdown received\.?$`)},
	{fstype: FSXFS, kind: KindShutdown, levels: lvAlert, contains: ".  Shutting down filesystem", prefix: "XFS (",
		re: compile(xfsPre + `[A-Z][A-Za-z/ -]* \(` + hexRE + `\) detected at ` + symRE + ` \([\w/.-]+:\d+\)\.  Shutting down filesystem\.?$`)},
	{fstype: FSXFS, kind: KindShutdown, levels: lvAlert, contains: "Shutting down filesystem", prefix: "XFS (",
		re: compile(xfsPre + `(?:Corruption of in-memory data detected\.|Corruption of on-disk metadata detected\.|Log I/O Error Detected\.|I/O Error Detected\.|All device paths lost\.) {1,2}Shutting down filesystem\.?$`)},
	{fstype: FSXFS, kind: KindShutdown, levels: lvAlert, contains: "shut down due to log error", prefix: "XFS (",
		re: compile(xfsPre + `Filesystem has been shut down due to log error \(` + hexRE + `\)\.?$`)},
	{fstype: FSXFS, kind: KindShutdown, levels: levels(LevelAlert, LevelNotice), contains: "xfs_do_force_shutdown(", prefix: "XFS (",
		re: compile(xfsPre + `xfs_do_force_shutdown\(` + hexRE + `\) called from line \d+ of file [\w/.-]+\.  ?Return address = (?:` + hexRE + `|[A-Za-z_][\w.]*\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[\w+\])?)$`)},
	{fstype: FSXFS, kind: KindChecksum, levels: lvAlert, contains: "Metadata CRC error detected at ", prefix: "XFS (",
		re: compile(xfsPre + `Metadata CRC error detected at ` + symRE + `, (?:inode 0x(?P<inohex>[0-9a-f]+) \w*|[\w.]+ block ` + hexRE + ` ?\w*)\s*$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvAlert, contains: "Metadata corruption detected at ", prefix: "XFS (",
		re: compile(xfsPre + `Metadata corruption detected at ` + symRE + `, (?:inode 0x(?P<inohex>[0-9a-f]+) \w*|[\w.]+ block ` + hexRE + ` ?\w*)\s*$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvAlert, contains: "Corruption detected. Unmount", prefix: "XFS (",
		re: compile(xfsPre + `Corruption detected\. Unmount and run xfs_repair$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvAlert, contains: "Internal error ", prefix: "XFS (",
		re: compile(xfsPre + `Internal error [\w()!=<>&|. -]+ at line \d+ of file [\w/.-]+\.  Caller ` + symRE + `$`)},
	{fstype: FSXFS, kind: KindIOError, levels: lvAlert, byErrno: true, contains: "metadata I/O error in \"", prefix: "XFS (",
		re: compile(xfsPre + `metadata I/O error in "` + symRE + `" at daddr ` + hexRE + ` len \d+ error (?P<errno>\d+)$`)},
	{fstype: FSXFS, kind: KindIOError, levels: lvAlert, byErrno: true, contains: "metadata I/O error: block ", prefix: "XFS (",
		re: compile(xfsPre + `metadata I/O error: block ` + hexRE + ` \("(?P<func>\w+)"\) error (?P<errno>\d+)(?: numblks \d+)?$`)},
	{fstype: FSXFS, kind: KindIOError, levels: lvAlert, byErrno: true, contains: "log I/O error ", prefix: "XFS (",
		re: compile(xfsPre + `log I/O error (?P<errno>-?\d+)$`)},
	{fstype: FSXFS, kind: KindIOError, levels: levels(LevelAlert, LevelWarning), contains: "Failing async write", prefix: "XFS (",
		re: compile(xfsPre + `Failing async write on buffer block ` + hexRE + `\. Retrying async write\.$`)},
	{fstype: FSXFS, kind: KindIOError, levels: lvAlert, contains: "page discard on page ", prefix: "XFS (",
		re: compile(xfsPre + `page discard on page \w+, inode 0x(?P<inohex>[0-9a-f]+), pos \d+\.?$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvWarn, byErrno: true, contains: "Failed to read root inode ", prefix: "XFS (",
		re: compile(xfsPre + `Failed to read root inode 0x(?P<inohex>[0-9a-f]+), error (?P<errno>\d+)$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvWarn, contains: "Uncorrected metadata errors detected", prefix: "XFS (",
		re: compile(xfsPre + `Uncorrected metadata errors detected; please run xfs_repair\.$`)},
	{fstype: FSXFS, kind: KindCorruption, levels: lvWarn, contains: "Corruption warning: Metadata has LSN", prefix: "XFS (",
		re: compile(xfsPre + `Corruption warning: Metadata has LSN \(\d+:\d+\) ahead of current LSN \(\d+:\d+\)\. Please unmount and run xfs_repair \(>= v4\.3\) to resolve\.$`)},

	// btrfs, fs/btrfs/*.c. The level word of the prefix must be the
	// record's level (btrfsLevel).
	{fstype: FSBtrfs, kind: KindChecksum, levels: lvBtrfs, contains: "csum failed ", prefix: "BTRFS ",
		re: compile(btrPre + `csum failed (?:root -?\d+ )?ino (?P<inode>\d+) off \d+ csum ` + hexRE + ` expected csum ` + hexRE + ` mirror \d+$`)},
	{fstype: FSBtrfs, kind: KindDeviceError, levels: lvBtrfs, contains: " errs: wr ", prefix: "BTRFS ",
		re: compile(btrPre + `bdev (?P<path>/\S+) errs: wr \d+, rd \d+, flush \d+, corrupt \d+, gen \d+$`)},
	{fstype: FSBtrfs, kind: KindChecksum, levels: lvBtrfs, contains: "checksum verify failed on ", prefix: "BTRFS ",
		re: compile(btrPre + `checksum verify failed on (?:logical )?\d+ (?:mirror \d+ )?wanted (?:csum )?` + hexRE + ` found (?:csum )?` + hexRE + ` level \d+$`)},
	{fstype: FSBtrfs, kind: KindCorruption, levels: lvBtrfs, prefix: "BTRFS ",
		re: compile(btrPre + `(?:bad tree block start, (?:mirror \d+ )?want \d+ have \d+|bad tree block level,? .+|bad fsid on (?:logical|block) \d+(?: mirror \d+)?|parent transid verify failed on (?:logical )?\d+ (?:mirror \d+ )?wanted \d+ found \d+|level verify failed on (?:logical )?\d+ (?:mirror \d+ )?wanted \d+ found \d+|tree first key mismatch .+|tree level mismatch .+)$`)},
	{fstype: FSBtrfs, kind: KindCorruption, levels: lvBtrfs, contains: "corrupt ", prefix: "BTRFS ",
		re: compile(btrPre + `corrupt (?:leaf|node)[:,] (?:root|block)=.+$`)},
	{fstype: FSBtrfs, kind: KindCorruption, levels: lvBtrfs, contains: "time tree block corruption detected", prefix: "BTRFS ",
		re: compile(btrPre + `(?:block=\d+ )?(?:read|write) time tree block corruption detected$`)},
	{fstype: FSBtrfs, kind: KindError, levels: lvBtrfs, byErrno: true, contains: "Transaction aborted (error ", prefix: "BTRFS ",
		re: compile(btrPre + `Transaction aborted \(error (?P<errno>-?\d+)\)$`)},
	{fstype: FSBtrfs, kind: KindShutdown, levels: lvBtrfs, contains: "forced readonly", prefix: "BTRFS ",
		re: compile(btrPre + `forced readonly$`)},
	{fstype: FSBtrfs, kind: KindChecksum, levels: lvBtrfs, contains: "checksum error at logical ", prefix: "BTRFS ",
		re: compile(btrPre + `(?:scrub: )?checksum error at logical \d+ on dev (?P<path>/[^,\s]+)(?:,? physical \d+,? root \d+,? inode (?P<inode>\d+),? offset \d+,? length \d+,? links \d+ \(path: .*\)|,? physical \d+(?:,? root \d+.*)?)?$`)},
	{fstype: FSBtrfs, kind: KindIOError, levels: lvBtrfs, contains: "i/o error at logical ", prefix: "BTRFS ",
		re: compile(btrPre + `(?:scrub: )?i/o error at logical \d+ on dev (?P<path>/[^,\s]+)(?:,? physical \d+(?:,? root \d+.*)?)?$`)},
	{fstype: FSBtrfs, kind: KindError, levels: lvBtrfs, contains: "unable to fixup ", prefix: "BTRFS ",
		re: compile(btrPre + `(?:scrub: )?unable to fixup \(regular\) error at logical \d+ on dev (?P<path>/[^,\s]+)(?:,? physical \d+)?$`)},
	{fstype: FSBtrfs, kind: KindIOError, levels: lvBtrfs, byErrno: true, contains: " write due to IO error on ", prefix: "BTRFS ",
		re: compile(btrPre + `lost (?:page|super block) write due to IO error on (?P<path>/[^\s(]+)(?: \((?P<errno>-?\d+)\))?$`)},
	// fs/btrfs/direct-io.c: "err no" is the bio's blk_status_t, not an
	// errno; newer kernels print the root before the inode.
	{fstype: FSBtrfs, kind: KindIOError, levels: lvBtrfs, contains: "direct IO failed ", prefix: "BTRFS ",
		re:     compile(btrPre + `direct IO failed (?:root \d+ )?ino (?P<inode>\d+) op 0x[0-9a-f]+ offset 0x[0-9a-f]+ len \d+ err no (?P<bstatus>\d+)$`),
		adjust: blkStatusNumber},
	{fstype: FSBtrfs, kind: KindIOError, levels: lvBtrfs, contains: "error writing primary super block", prefix: "BTRFS ",
		re: compile(btrPre + `error writing primary super block to device \d+$`)},
	{fstype: FSBtrfs, kind: KindError, levels: lvBtrfs, contains: "failed to read ", prefix: "BTRFS ",
		re: compile(btrPre + `failed to read (?:[a-z]+ )*tree: (?P<errno>-?\d+)$`)},
	{fstype: FSBtrfs, kind: KindError, levels: lvBtrfs, contains: "open_ctree failed", prefix: "BTRFS ",
		re: compile(btrPre + `open_ctree failed(?::? (?P<errno>-?\d+))?$`)},
	// btrfs_handle_fs_error, __btrfs_abort_transaction (KERN_CRIT).
	{fstype: FSBtrfs, kind: KindError, levels: lvCrit, byErrno: true, contains: ": errno=", prefix: "BTRFS: error (device ",
		re: compile(`^BTRFS: error \(device ` + devRE + `(?::? state [A-Za-z]+)?\) in (?P<func>\w+):\d+: errno=(?P<errno>-?\d+) [A-Za-z /]+(?: \(.*\))?$`)},

	// Block layer, block/blk-mq.c (blk_print_req_error; older kernels
	// prefixed it with the function name) and fs/buffer.c (KERN_ERR).
	{fstype: FSBlock, kind: KindIOError, levels: lvErr, contains: " error, dev ",
		re:     compile(`^(?:blk_update_request: |print_req_error: |end_request: )?` + statusRE + ` error, dev (?P<dev>[^\s,\[\]]+), sector (?P<sector>\d+)(?: op 0x[0-9a-f]+:\(` + opRE + `\) flags 0x[0-9a-f]+ phys_seg \d+(?: prio class \d+)?)?$`),
		adjust: blkStatusName},
	{fstype: FSBlock, kind: KindIOError, levels: lvErr, prefix: "Buffer I/O error on dev",
		re:     compile(`^Buffer I/O error on dev(?:ice)? (?P<dev>[^\s,\[\]]+), logical block \d+(?P<what>, (?:lost (?:sync |async )?page write|async page read))?$`),
		adjust: bufferOp},
}

// maxTextLen bounds the messages Classify looks at: the kernel stores at
// most 1 KiB of text per record, so anything longer did not come from it.
const maxTextLen = 4096

// Classify reports whether the record is a file system or block layer
// error message of the kernel and, if it is, describes it.
//
// Only what the kernel itself wrote, in the kernel's own words, is
// recognised: records not logged by the kernel (facility other than 0:
// written to /dev/kmsg by user space) never are, nor are texts longer than
// the kernel writes, continuation fragments, or records at a log level
// other than the one the kernel prints that message at. Every pattern
// spells out its message from start to end, so kernel records that begin
// with or embed text a user chooses (a process name, a file name: "COMM[PID]:
// segfault at ... in FILE[...]") cannot pass for a file system error.
func Classify(r Record) (Message, bool) {
	if !r.Kernel() || r.Continued || len(r.Message) > maxTextLen {
		return Message{}, false
	}
	text := r.Message
	for i := range rules {
		ru := &rules[i]
		if !ru.levels.has(r.Level) {
			continue
		}
		if ru.prefix != "" && !strings.HasPrefix(text, ru.prefix) {
			continue
		}
		if ru.contains != "" && !strings.Contains(text, ru.contains) {
			continue
		}
		sub := ru.re.get().FindStringSubmatch(text)
		if sub == nil {
			continue
		}
		groups := make(map[string]string, len(sub))
		for j, name := range ru.re.get().SubexpNames() {
			if name != "" && sub[j] != "" {
				groups[name] = sub[j]
			}
		}
		if w, ok := groups["blevel"]; ok && btrfsLevels[w] != r.Level {
			continue
		}
		m := Message{Record: r, FSType: ru.fstype, Kind: ru.kind, Text: text}
		if m.fill(groups) && ru.byErrno {
			if k, ok := errnoKinds[m.Errno]; ok {
				m.Kind = k
			}
		}
		if ru.adjust != nil {
			ru.adjust(&m, groups)
		}
		if m.Device == "" {
			continue
		}
		return m, true
	}
	return Message{}, false
}

// fill sets the fields of m found in the named groups; it reports whether
// an errno was found.
func (m *Message) fill(g map[string]string) bool {
	m.Device = g["dev"]
	if j, ok := g["jdev"]; ok {
		m.Device = journalDevice(j)
	}
	m.DevicePath = g["path"]
	if f, ok := g["func"]; ok {
		m.Function, _, _ = strings.Cut(f, "+")
	}
	if v, ok := g["inode"]; ok {
		m.Inode, _ = strconv.ParseUint(v, 10, 64)
	} else if v, ok := g["inohex"]; ok {
		m.Inode, _ = strconv.ParseUint(v, 16, 64)
	}
	m.Op = g["op"]
	if v, ok := g["sector"]; ok {
		m.Sector, _ = strconv.ParseUint(v, 10, 64)
	}
	if v, ok := g["errno"]; ok {
		n, err := strconv.ParseInt(strings.TrimPrefix(v, "-"), 10, 32)
		if err == nil && n > 0 && n < 4096 {
			m.Errno = syscall.Errno(n)
			return true
		}
	}
	return false
}

// journalDevice returns the device of a jbd2 journal name: "loop0-8" (the
// device and the journal's inode number, for a journal inside the file
// system) is "loop0"; an external journal is named after its device alone,
// so the suffix is removed only when what remains is not itself just a
// prefix that needs it ("dm-3" stays "dm-3").
func journalDevice(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return name
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return name
		}
	}
	if base := name[:i]; base != "dm" {
		return base
	}
	return name
}

// errnoKinds maps the errno of a message to its kind, for rules with
// byErrno. EUCLEAN is the kernel's EFSCORRUPTED and EBADMSG its EFSBADCRC.
var errnoKinds = map[syscall.Errno]Kind{
	syscall.EIO:       KindIOError,
	syscall.EUCLEAN:   KindCorruption,
	syscall.EBADMSG:   KindChecksum,
	syscall.ESHUTDOWN: KindShutdown,
}

// btrfsLevels maps the level words of btrfs messages to the log levels
// btrfs_printk prints them at.
var btrfsLevels = map[string]int{
	"emergency": LevelEmerg, "alert": LevelAlert, "critical": LevelCrit, "error": LevelErr,
	"warning": LevelWarning, "notice": LevelNotice, "info": LevelInfo,
}

// maxComm is the longest process name the kernel prints (TASK_COMM_LEN
// less its NUL).
const maxComm = 15

// ext4CommText returns the text of an ext4 error from what follows "comm ":
// the process name, ": ", the text. The name is the task's own, which any
// user can set to anything up to 15 bytes, ": " included, so the text is
// taken after the last ": " that can still end a name: what is returned is
// then always a part of the kernel's text, never of the name.
func ext4CommText(rest string) string {
	cut := -1
	for i := 0; i <= maxComm && i+2 <= len(rest); i++ {
		if rest[i] == ':' && rest[i+1] == ' ' {
			cut = i + 2
		}
	}
	if cut < 0 {
		return ""
	}
	return rest[cut:]
}

// ext4ErrorKind refines the kind of an "EXT4-fs error" message from the
// words of its text (the part after "comm NAME: ", see ext4CommText).
func ext4ErrorKind(m *Message, g map[string]string) {
	text := strings.ToLower(ext4CommText(g["rest"]))
	switch {
	case strings.Contains(text, "abort forced by user"), strings.Contains(text, "detected aborted journal"):
		m.Kind = KindShutdown
	case strings.Contains(text, "checksum"), strings.Contains(text, "csum"):
		m.Kind = KindChecksum
	case strings.Contains(text, "i/o error"), strings.Contains(text, "io failure"),
		strings.Contains(text, "error reading"), strings.Contains(text, "reading directory"),
		strings.Contains(text, "unable to read"), strings.Contains(text, "write back"):
		m.Kind = KindIOError
	case strings.Contains(text, "bogus"), strings.Contains(text, "corrupt"),
		strings.Contains(text, "bad "), strings.Contains(text, "invalid"),
		strings.Contains(text, "inconsistent"), strings.Contains(text, "mismatch"),
		strings.Contains(text, "deleted inode"), strings.Contains(text, "not in use"),
		strings.Contains(text, "out of range"), strings.Contains(text, "unexpected"),
		strings.Contains(text, "negative"), strings.Contains(text, "overlap"):
		m.Kind = KindCorruption
	}
}

// ext4Errstr maps the error strings of ext4_decode_error to errnos.
var ext4Errstr = map[string]syscall.Errno{
	"IO failure":            syscall.EIO,
	"Out of memory":         syscall.ENOMEM,
	"Readonly filesystem":   syscall.EROFS,
	"Journal has aborted":   syscall.EROFS,
	"Corrupt filesystem":    syscall.EUCLEAN,
	"Filesystem failed CRC": syscall.EBADMSG,
}

// ext4StdError completes an "EXT4-fs error (device X) in func:line: errstr"
// message from its error string.
func ext4StdError(m *Message, g map[string]string) {
	s := g["errstr"]
	if e, ok := ext4Errstr[s]; ok {
		m.Errno = e
	} else if v, ok := strings.CutPrefix(s, "error "); ok {
		if n, err := strconv.ParseInt(strings.TrimPrefix(v, "-"), 10, 32); err == nil && n > 0 && n < 4096 {
			m.Errno = syscall.Errno(n)
		}
	}
	if k, ok := errnoKinds[m.Errno]; ok {
		m.Kind = k
	}
	if s == "Journal has aborted" {
		m.Kind = KindShutdown
	}
}

// blkStatusNames maps the block layer status names printed by
// blk_print_req_error (block/blk-core.c, blk_errors) to errnos.
var blkStatusNames = map[string]syscall.Errno{
	"I/O":                       syscall.EIO,
	"operation not supported":   syscall.EOPNOTSUPP,
	"timeout":                   syscall.ETIMEDOUT,
	"critical space allocation": syscall.ENOSPC,
	"recoverable transport":     syscall.ENOLINK,
	"critical target":           syscall.EREMOTEIO,
	"critical nexus":            syscall.EBADE,
	"reservation conflict":      syscall.EBADE,
	"critical medium":           syscall.ENODATA,
	"protection":                syscall.EILSEQ,
	"kernel resource":           syscall.ENOMEM,
	"device resource":           syscall.EBUSY,
	"nonblocking retry":         syscall.EAGAIN,
	"device offline":            syscall.ENODEV,
	"invalid":                   syscall.EINVAL,
	"open zones exceeded":       syscall.ETOOMANYREFS,
	"active zones exceeded":     syscall.EOVERFLOW,
	"duration limit exceeded":   syscall.ETIME,
	"dm internal retry":         syscall.EREMCHG,
}

// blkStatusName sets the errno of a block layer request error from its
// status name.
func blkStatusName(m *Message, g map[string]string) {
	m.Errno = blkStatusNames[g["status"]]
}

// blkStatusIOErr is BLK_STS_IOERR, the blk_status_t ext4_end_bio prints
// for an ordinary I/O error.
const blkStatusIOErr = "10"

// blkStatusNumber sets EIO for an ext4_end_bio message printing
// BLK_STS_IOERR.
func blkStatusNumber(m *Message, g map[string]string) {
	if g["bstatus"] == blkStatusIOErr {
		m.Errno = syscall.EIO
	}
}

// bufferOp sets the operation of a "Buffer I/O error" message from its
// tail (", lost async page write", ", async page read").
func bufferOp(m *Message, g map[string]string) {
	switch w := g["what"]; {
	case strings.Contains(w, "write"):
		m.Op = "WRITE"
	case strings.Contains(w, "read"):
		m.Op = "READ"
	}
}
