package event

import "fmt"

// appendPathText appends the one-line text form of a KindPath event:
//
//	TIME PATH of inode 13 (generation 7) on /dev/loop1 ext4: /srv/dir/bad (message)
func appendPathText(b []byte, e *Event) []byte {
	b = append(b, " PATH of"...)
	if e.Inode != nil {
		b = fmt.Appendf(b, " inode %d", *e.Inode)
		if e.Generation != nil {
			b = fmt.Appendf(b, " (generation %d)", *e.Generation)
		}
	}
	b = append(b, " on "...)
	if e.Device != "" {
		b = append(b, Safe(e.Device)...)
	} else {
		b = append(b, "unknown device (fsid "+e.FSID+")"...)
	}
	if e.FSType != "" {
		b = append(b, ' ')
		b = append(b, Safe(e.FSType)...)
	}
	b = append(b, ": "...)
	if e.Path != "" {
		b = append(b, Safe(e.Path)...)
	} else {
		b = append(b, "not found: "...)
		b = append(b, Clean(e.PathError)...)
	}
	if e.Message != "" {
		b = append(b, " ("...)
		b = append(b, Clean(e.Message)...)
		b = append(b, ')')
	}
	return append(b, '\n')
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
