package event

import (
	"encoding/json"

	"github.com/fshealth/fshealth/internal/jsonappend"
)

// AppendJSON appends e as one line of JSON (NDJSON) to b.
func AppendJSON(b []byte, e *Event) ([]byte, error) {
	b, err := AppendObject(b, e)
	if err != nil {
		return b, err
	}
	return append(b, '\n'), nil
}

// AppendObject appends e as a JSON object to b: the same bytes as
// json.Marshal(e), written by hand for the fields every event has (the
// line of `fshealth watch --json`, the history's record) and through
// encoding/json only for the parts few events carry (ext4's record,
// redundancy, btrfs counters). json_test.go holds it to json.Marshal's
// output on random events with every field set, so a field added to Event
// without being added here fails the test.
func AppendObject(b []byte, e *Event) ([]byte, error) {
	start := len(b)
	o := jsonappend.Object{B: append(b, '{')}
	o.StringOmitEmpty("id", e.ID)
	o.String("kind", e.Kind)
	o.Key("time")
	o.B = e.Time.appendJSON(o.B)
	o.String("source", e.Source)
	o.Int("errno", int64(e.Errno))
	o.String("error", e.Error)
	o.String("error_text", e.ErrorText)
	o.Uint("error_count", uint64(e.ErrorCount))
	o.Int("pid", int64(e.PID))
	appendFS(&o, e)
	if e.Inode != nil {
		o.Uint("inode", *e.Inode)
	}
	if e.Generation != nil {
		o.Uint("generation", uint64(*e.Generation))
	}
	if h := e.Handle; h != nil {
		o.Key("handle")
		ho := jsonappend.Object{B: append(o.B, '{')}
		ho.Int("type", int64(h.Type))
		ho.String("bytes", h.Bytes)
		o.B = append(ho.B, '}')
	}
	o.StringOmitEmpty("path", e.Path)
	o.StringOmitEmpty("path_error", e.PathError)
	o.TrueOmitEmpty("path_pending", e.PathPending)
	var err error
	if e.Ext4 != nil {
		o.Key("ext4")
		if o.B, err = appendMarshal(o.B, e.Ext4); err != nil {
			return b[:start], err
		}
	}
	o.TrueOmitEmpty("ext4_pending", e.Ext4Pending)
	if e.Redundancy != nil {
		o.Key("redundancy")
		if o.B, err = appendMarshal(o.B, e.Redundancy); err != nil {
			return b[:start], err
		}
	}
	if e.Btrfs != nil {
		o.Key("btrfs")
		if o.B, err = appendMarshal(o.B, e.Btrfs); err != nil {
			return b[:start], err
		}
	}
	o.StringOmitEmpty("kernel_message", e.KernelMessage)
	o.TrueOmitEmpty("lost_report", e.LostReport)
	o.StringOmitEmpty("corroborated_by", e.CorroboratedBy)
	o.StringOmitEmpty("message", e.Message)
	return append(o.B, '}'), nil
}

// appendMarshal appends v as encoding/json marshals it.
func appendMarshal(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}
