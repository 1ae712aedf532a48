package event

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fshealth/fshealth/internal/ext4"
)

// AppendText appends a one-line human description of e to b, ending in a
// newline. Strings that come from the kernel or the file system (paths,
// labels, function names) are quoted when they hold anything but plain
// printable text, so a hostile file name cannot forge or split lines.
func AppendText(b []byte, e *Event) []byte {
	b = e.Time.AppendFormat(b, TimeLayout)
	if e.Kind == KindOverflow {
		b = append(b, " QUEUE OVERFLOW: "...)
		b = append(b, Clean(e.Message)...)
		return append(b, '\n')
	}
	if e.Kind == KindPath {
		return appendPathText(b, e)
	}
	if e.Kind == KindExt4 {
		return appendExt4Text(b, e)
	}
	if e.Kind == KindRedundancy {
		b = appendRedundancyText(b, e)
	} else if b = fmt.Appendf(b, " %s (%s)", e.Error, e.ErrorText); e.ErrorCount != 1 {
		b = fmt.Appendf(b, " ×%d", e.ErrorCount)
	}
	b = append(b, " on "...)
	if e.Device != "" {
		if len(e.Storage) > 0 && e.Storage[0].MountedAs != "" {
			b = append(b, Safe(e.Storage[0].MountedAs)...)
		} else {
			b = append(b, Safe(e.Device)...)
		}
		if len(e.Storage) > 0 {
			b = append(b, " ("...)
			b = append(b, StorageText(e.Storage)...)
			b = append(b, ')')
		}
	} else {
		b = append(b, "unknown device (fsid "+e.FSID+")"...)
	}
	if e.FSType != "" {
		b = append(b, ' ')
		b = append(b, Safe(e.FSType)...)
	}
	if len(e.Mountpoints) > 0 {
		b = append(b, " at "...)
		for i, m := range e.Mountpoints {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, Safe(m)...)
		}
		if e.Unmounted {
			b = append(b, " (unmounted since)"...)
		}
	}
	if e.Inode != nil {
		b = fmt.Appendf(b, " inode %d", *e.Inode)
		if e.Generation != nil {
			b = fmt.Appendf(b, " (generation %d)", *e.Generation)
		}
		switch {
		case e.Path != "":
			b = append(b, " path "...)
			b = append(b, Safe(e.Path)...)
		case e.PathError != "":
			b = append(b, " (path unknown: "...)
			b = append(b, Clean(e.PathError)...)
			b = append(b, ')')
		case e.PathPending:
			b = append(b, " (path pending: looked up read-only from the device)"...)
		}
	} else if e.Handle != nil {
		b = fmt.Appendf(b, " file handle type %d %s", e.Handle.Type, e.Handle.Bytes)
		if e.Path != "" {
			b = append(b, " path "...)
			b = append(b, Safe(e.Path)...)
		}
	} else {
		b = append(b, " (whole file system)"...)
	}
	if e.UUID != "" {
		b = append(b, " uuid "...)
		b = append(b, Safe(e.UUID)...)
	}
	b = fmt.Appendf(b, " pid %d", e.PID)
	if e.Message != "" {
		b = append(b, " ("...)
		b = append(b, Clean(e.Message)...)
		b = append(b, ')')
	}
	if s := e.Ext4; s != nil && s.LastError != nil {
		b = appendExt4Record(append(b, "; "...), s)
	}
	if e.Btrfs != nil {
		b = append(b, "; btrfs device "...)
		b = strconv.AppendUint(b, e.Btrfs.DevID, 10)
		if e.Btrfs.Path != "" {
			b = append(b, ' ')
			b = append(b, Safe(e.Btrfs.Path)...)
		}
		b = fmt.Appendf(b, " %s errors %d -> %d", e.Btrfs.Counter, e.Btrfs.From, e.Btrfs.To)
	}
	if e.KernelMessage != "" {
		b = append(b, "; kernel: "...)
		b = append(b, strconv.Quote(e.KernelMessage)...)
	}
	return append(b, '\n')
}

func orUnknown(s string) string {
	if s == "" || s == `""` {
		return "unknown device"
	}
	return s
}

// Safe returns s unchanged when it is non-empty, valid UTF-8 of printable
// characters with no spaces or quotes; otherwise it returns s Go-quoted, so
// that control characters, newlines and invalid bytes are escaped.
func Safe(s string) string {
	if s == "" {
		return `""`
	}
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' || r == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

// Clean returns s with control characters, invalid UTF-8 and backslashes
// escaped Go-style but spaces and quotes kept, for messages that are prose.
func Clean(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !unicode.IsPrint(r) && r != ' ' {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// Summary is a short description of e for log lines and alert subjects.
func Summary(e *Event) string {
	if e.Kind == KindOverflow {
		return "event queue overflow: " + e.Message
	}
	if e.Kind == KindPath {
		p := "not found"
		if e.Path != "" {
			p = Safe(e.Path)
		}
		return fmt.Sprintf("path of inode %d on %s: %s", deref(e.Inode), orUnknown(Safe(e.Device)), p)
	}
	var b strings.Builder
	if e.Kind == KindRedundancy && e.Redundancy != nil {
		fmt.Fprintf(&b, "redundancy %s: %s on %s", Safe(e.Redundancy.Change), Clean(e.Redundancy.String()), orUnknown(Safe(e.Device)))
		return b.String()
	}
	fmt.Fprintf(&b, "%s on %s", e.Error, orUnknown(Safe(e.Device)))
	if len(e.Mountpoints) > 0 {
		fmt.Fprintf(&b, " (%s)", Safe(e.Mountpoints[0]))
	}
	return b.String()
}

// appendExt4Text renders a KindExt4 event: ext4's record, read after the
// events it follows were sent.
func appendExt4Text(b []byte, e *Event) []byte {
	b = append(b, " EXT4 RECORD of "...)
	b = append(b, orUnknown(Safe(e.Device))...)
	if e.FSType != "" {
		b = append(b, ' ')
		b = append(b, Safe(e.FSType)...)
	}
	if len(e.Mountpoints) > 0 {
		b = append(b, " at "...)
		for i, m := range e.Mountpoints {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, Safe(m)...)
		}
	}
	b = append(b, ": "...)
	if e.Ext4 != nil {
		b = appendExt4Record(b, e.Ext4)
	}
	return append(b, '\n')
}

// appendExt4Record says what ext4 has recorded: how many errors, and
// where the last one happened.
func appendExt4Record(b []byte, s *ext4.State) []byte {
	b = fmt.Appendf(b, "ext4 has recorded %d error(s)", s.ErrorsCount)
	if l := s.LastError; l != nil {
		b = fmt.Appendf(b, ", the last in %s:%d", Safe(l.Function), l.Line)
		if l.Inode != 0 {
			b = fmt.Appendf(b, " inode %d", l.Inode)
		}
		if l.Block != 0 {
			b = fmt.Appendf(b, " block %d", l.Block)
		}
	}
	return b
}
