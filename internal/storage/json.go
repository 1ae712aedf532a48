package storage

import "github.com/fshealth/fshealth/internal/jsonappend"

// AppendJSON appends stack as a JSON array, byte for byte as encoding/json
// marshals it (the fields' json tags), without reflection: every event
// carries its file system's stack (package event).
func AppendJSON(b []byte, stack []Layer) []byte {
	if stack == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range stack {
		if i > 0 {
			b = append(b, ',')
		}
		b = stack[i].appendJSON(b)
	}
	return append(b, ']')
}

func (l *Layer) appendJSON(b []byte) []byte {
	o := jsonappend.Object{B: append(b, '{')}
	o.String("name", l.Name)
	o.String("kind", l.Kind)
	o.StringOmitEmpty("dev", l.Dev)
	o.StringOmitEmpty("node", l.Node)
	o.StringOmitEmpty("mounted_as", l.MountedAs)
	o.StringsOmitEmpty("links", l.Links)
	o.UintOmitEmpty("size_bytes", l.SizeBytes)
	o.StringsOmitEmpty("on", l.On)
	o.StringOmitEmpty("dm_name", l.DMName)
	o.StringOmitEmpty("dm_uuid", l.DMUUID)
	o.StringOmitEmpty("lv", l.LV)
	o.IntOmitEmpty("partition", int64(l.Partition))
	o.UintOmitEmpty("start", l.Start)
	o.UintOmitEmpty("sectors", l.Sectors)
	if md := l.MD; md != nil {
		o.Key("md")
		m := jsonappend.Object{B: append(o.B, '{')}
		m.StringOmitEmpty("level", md.Level)
		m.StringOmitEmpty("array_state", md.ArrayState)
		m.Int("degraded", int64(md.Degraded))
		if len(md.Members) > 0 {
			m.Key("members")
			m.B = append(m.B, '[')
			for i := range md.Members {
				if i > 0 {
					m.B = append(m.B, ',')
				}
				mem := jsonappend.Object{B: append(m.B, '{')}
				mem.String("name", md.Members[i].Name)
				mem.StringOmitEmpty("state", md.Members[i].State)
				mem.StringOmitEmpty("slot", md.Members[i].Slot)
				m.B = append(mem.B, '}')
			}
			m.B = append(m.B, ']')
		}
		o.B = append(m.B, '}')
	}
	o.StringOmitEmpty("backing_file", l.BackingFile)
	if fs := l.BackingFS; fs != nil {
		o.Key("backing_fs")
		f := jsonappend.Object{B: append(o.B, '{')}
		f.String("dev", fs.Dev)
		f.StringOmitEmpty("fstype", fs.FSType)
		f.StringOmitEmpty("source", fs.Source)
		f.StringOmitEmpty("mountpoint", fs.Mountpoint)
		o.B = append(f.B, '}')
	}
	if d := l.Disk; d != nil {
		o.Key("disk")
		k := jsonappend.Object{B: append(o.B, '{')}
		k.StringOmitEmpty("transport", d.Transport)
		k.StringOmitEmpty("vendor", d.Vendor)
		k.StringOmitEmpty("model", d.Model)
		k.StringOmitEmpty("serial", d.Serial)
		k.StringOmitEmpty("wwn", d.WWN)
		k.StringOmitEmpty("firmware", d.Firmware)
		k.StringOmitEmpty("enclosure", d.Enclosure)
		k.StringOmitEmpty("slot", d.Slot)
		o.B = append(k.B, '}')
	}
	return append(o.B, '}')
}
