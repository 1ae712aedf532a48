// Package kmsg reads the kernel log from /dev/kmsg and recognises the file
// system and block device error messages in it.
//
// The kernel log is fshealth's second source of file system errors, next to
// fanotify FAN_FS_ERROR: up to Linux 6.19 only ext4 emits FAN_FS_ERROR, so
// XFS shutdowns and corruption, btrfs checksum and device errors and block
// layer I/O errors are only visible here.
//
// A Reader returns the log's records one by one, as Record values, and
// reports the records it could not read because the kernel's ring buffer
// overwrote them before they were read as Gap values. Classify recognises
// the error messages of ext4 (and its journal, jbd2), XFS, btrfs and the
// block layer and extracts the device, the kind of error, the errno and the
// inode. DeviceNumber maps a device name printed in a message to its
// major:minor device number.
//
// The record format is the one documented in the kernel's
// Documentation/ABI/testing/dev-kmsg:
//
//	prio,seq,timestamp_us,flags[,more];message text
//	 KEY=value
//
// where prio is facility<<3 | level, seq the record's sequence number,
// timestamp_us the time of logging in microseconds since boot, flags "-" or
// "c" (a continuation fragment), and the optional continuation lines, each
// starting with a space, carry the record's dictionary (SUBSYSTEM=block,
// DEVICE=b7:1, ...). Non-printable bytes and backslashes in the text and in
// the values are escaped as \xNN.
package kmsg

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Facility values of a Record. Records logged by the kernel itself have
// facility 0 (LOG_KERN). Anything written to /dev/kmsg from user space gets
// another facility (LOG_USER unless the writer asks for one): the kernel
// refuses to let user space log with facility 0.
const (
	FacilityKern = 0
	FacilityUser = 1
)

// Log levels of a Record (the syslog severities used by printk).
const (
	LevelEmerg   = 0
	LevelAlert   = 1
	LevelCrit    = 2
	LevelErr     = 3
	LevelWarning = 4
	LevelNotice  = 5
	LevelInfo    = 6
	LevelDebug   = 7
)

// Record is one record of the kernel log.
type Record struct {
	// Facility is the syslog facility: FacilityKern (0) for messages of
	// the kernel, anything else for messages written by user space.
	Facility int
	// Level is the log level, LevelEmerg (0) to LevelDebug (7).
	Level int
	// Seq is the record's sequence number; the kernel numbers its records
	// consecutively from 0 at boot.
	Seq uint64
	// Time is when the record was logged, as the time since boot of the
	// kernel's log clock (local_clock, which does not count suspend), with
	// microsecond resolution.
	Time time.Duration
	// Continued is set for a record whose flags field is "c": a fragment
	// that the kernel could not merge with the rest of its line.
	Continued bool
	// Caller is the printk caller id ("T1234" for a task, "C0" for a CPU)
	// when the kernel is built with CONFIG_PRINTK_CALLER, otherwise "".
	Caller string
	// Message is the text of the record, with \xNN escapes undone.
	Message string
	// Fields holds the record's dictionary (SUBSYSTEM, DEVICE, ...), with
	// \xNN escapes undone in the values; nil when there is none.
	Fields map[string]string
	// Received is when a Reader read the record from the kernel; it is the
	// zero time for records parsed with ParseRecord.
	Received time.Time
}

// Kernel reports whether the record was logged by the kernel (facility 0)
// rather than written to /dev/kmsg by a user space program.
func (r Record) Kernel() bool { return r.Facility == FacilityKern }

// String formats the record the way /dev/kmsg does, escaping the message and
// field values again, so that ParseRecord(r.String()) returns r (except for
// Received). Fields are written in sorted key order.
func (r Record) String() string {
	var b strings.Builder
	flag := '-'
	if r.Continued {
		flag = 'c'
	}
	fmt.Fprintf(&b, "%d,%d,%d,%c", r.Facility<<3|r.Level, r.Seq, r.Time.Microseconds(), flag)
	if r.Caller != "" {
		b.WriteString(",caller=")
		b.WriteString(r.Caller)
	}
	b.WriteByte(';')
	b.WriteString(escape(r.Message))
	b.WriteByte('\n')
	for _, k := range sortedKeys(r.Fields) {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(escape(k), "=", `\x3d`))
		b.WriteByte('=')
		b.WriteString(escape(r.Fields[k]))
		b.WriteByte('\n')
	}
	return b.String()
}

// maxPrio is the largest prio field the kernel writes: facility and level
// are stored in 5 and 3 bits.
const maxPrio = 255

// ErrMalformed is wrapped by the errors ParseRecord returns for data that
// is not a kernel log record.
var ErrMalformed = errors.New("kmsg: malformed record")

// ParseRecord parses one record in the /dev/kmsg format: the header line
// "prio,seq,timestamp_us,flags[,more];message" and the continuation lines
// " KEY=value" that follow it. The trailing newline is optional. Header
// fields after the flags other than "caller=..." are ignored, as the format
// allows new fields to be added; continuation lines without "=" and lines
// not starting with a space are ignored too. ParseRecord never panics; for
// anything that is not a record it returns an error wrapping ErrMalformed.
func ParseRecord(data []byte) (Record, error) {
	var r Record
	header, rest, _ := bytes.Cut(data, []byte{'\n'})
	prefix, text, ok := bytes.Cut(header, []byte{';'})
	if !ok {
		return r, fmt.Errorf("%w: no ';' after the header in %q", ErrMalformed, clip(header))
	}
	fields := bytes.Split(prefix, []byte{','})
	if len(fields) < 4 {
		return r, fmt.Errorf("%w: header %q has %d fields, want at least 4", ErrMalformed, clip(prefix), len(fields))
	}
	prio, err := strconv.ParseUint(string(fields[0]), 10, 32)
	if err != nil || prio > maxPrio {
		return r, fmt.Errorf("%w: bad priority %q", ErrMalformed, clip(fields[0]))
	}
	r.Facility, r.Level = int(prio>>3), int(prio&7)
	if r.Seq, err = strconv.ParseUint(string(fields[1]), 10, 64); err != nil {
		return r, fmt.Errorf("%w: bad sequence number %q", ErrMalformed, clip(fields[1]))
	}
	us, err := strconv.ParseUint(string(fields[2]), 10, 64)
	if err != nil || us > uint64(maxDurationMicros) {
		return r, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, clip(fields[2]))
	}
	r.Time = time.Duration(us) * time.Microsecond
	switch string(fields[3]) {
	case "-":
	case "c":
		r.Continued = true
	default:
		// Unknown flags are tolerated: the ABI reserves the field for
		// more of them.
		if len(fields[3]) == 0 {
			return r, fmt.Errorf("%w: empty flags field", ErrMalformed)
		}
		r.Continued = bytes.IndexByte(fields[3], 'c') >= 0
	}
	for _, f := range fields[4:] {
		if v, ok := bytes.CutPrefix(f, []byte("caller=")); ok {
			r.Caller = string(v)
		}
	}
	r.Message = unescape(text)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		kv, ok := bytes.CutPrefix(line, []byte{' '})
		if !ok {
			continue
		}
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok || len(k) == 0 {
			continue
		}
		if r.Fields == nil {
			r.Fields = make(map[string]string)
		}
		r.Fields[unescape(k)] = unescape(v)
	}
	return r, nil
}

// sortedKeys returns the keys of m in increasing order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// maxDurationMicros is the largest timestamp, in microseconds, that fits
// in a time.Duration.
const maxDurationMicros = int64(1<<63-1) / int64(time.Microsecond)

// clip shortens b for inclusion in an error message.
func clip(b []byte) []byte {
	const max = 64
	if len(b) > max {
		return b[:max]
	}
	return b
}

// unescape undoes the kernel's \xNN escaping. A backslash not followed by
// "x" and two hexadecimal digits is kept as it is.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			hi, ok1 := unhex(b[i+2])
			lo, ok2 := unhex(b[i+3])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}

// unhex returns the value of the hexadecimal digit c.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// escape applies the kernel's escaping: bytes below space, from 127 up, and
// the backslash become \xNN.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c >= 127 || c == '\\' {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
