package event

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pieces are what the random strings are made of: every class of byte
// encoding/json escapes or rewrites, and plain text.
var pieces = []string{"", "a", "/dev/sda1", "<", ">", "&", "\x00", "\x1f", "\x7f", "\b", "\f", "\n", "\r", "\t",
	`"`, `\`, "\u2028", "\u2029", "é", "日本", "\U0001F600", "\xff", "\xe2\x80", "\xed\xa0\x80", "\xc0\xaf", "\ufffd"}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// fill sets v, and every field under it, to random values: zero values
// (which omitempty drops), nil and empty slices, hostile strings, extreme
// numbers.
func fill(r *rand.Rand, v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		// encoding/json refuses years past 9999.
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).In(time.FixedZone("", 3600*(r.IntN(25)-12)))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch r.IntN(4) {
		case 0:
			v.SetInt(0)
		case 1:
			v.SetInt(-1 << (v.Type().Bits() - 1))
		default:
			v.SetInt(int64(r.Uint64()) >> (64 - v.Type().Bits()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch r.IntN(4) {
		case 0:
			v.SetUint(0)
		case 1:
			v.SetUint(1<<v.Type().Bits() - 1)
		default:
			v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
		}
	case reflect.Pointer:
		if r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(r, v.Elem())
	case reflect.Slice:
		switch n := r.IntN(5); n {
		case 0:
			v.SetZero()
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				fill(r, v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fill(r, f)
			} else if v.Type().Field(i).IsExported() {
				panic("cannot set " + v.Type().Field(i).Name)
			}
		}
	default:
		panic("fill: no random values for " + v.Type().String())
	}
}

// plain is Event without methods: json.Marshal encodes it by reflection,
// whatever methods Event gains.
type plain Event

func checkSameAsMarshal(t *testing.T, e *Event) {
	t.Helper()
	want, werr := json.Marshal((*plain)(e))
	prefix := []byte("prefix ")
	got, err := AppendJSON(bytes.Clone(prefix), e)
	if (err != nil) != (werr != nil) {
		t.Fatalf("AppendJSON error %v, json.Marshal error %v", err, werr)
	}
	if err != nil {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("AppendJSON failed (%v) but appended %q", err, got[len(prefix):])
		}
		return
	}
	want = append(append(prefix, want...), '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// TestAppendJSONIsMarshal holds the hand-written encoder to encoding/json
// on random events with every field, nested ones included, set or left
// zero: a field added to Event (or to a type under it) that AppendJSON does
// not write makes it fail.
func TestAppendJSONIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Each field of Event must have been seen set, so that the random
	// events cover them all.
	seen := make([]bool, reflect.TypeFor[Event]().NumField())
	for range 20000 {
		var e Event
		fill(r, reflect.ValueOf(&e).Elem())
		checkSameAsMarshal(t, &e)
		v := reflect.ValueOf(e)
		for i := range seen {
			seen[i] = seen[i] || !v.Field(i).IsZero()
		}
	}
	for i, ok := range seen {
		if !ok && reflect.TypeFor[Event]().Field(i).IsExported() {
			t.Errorf("no random event had %s set", reflect.TypeFor[Event]().Field(i).Name)
		}
	}
}

// FuzzAppendJSON is TestAppendJSONIsMarshal with the fuzzer choosing the
// random source and one string put in every string field.
func FuzzAppendJSON(f *testing.F) {
	f.Add(uint64(1), "<script>\u2028\xff")
	f.Add(uint64(7), "")
	f.Fuzz(func(t *testing.T, seed uint64, s string) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		var e Event
		fill(r, reflect.ValueOf(&e).Elem())
		e.Time = Time{time.Unix(0, int64(seed>>2))}
		e.Kind, e.Device, e.KernelMessage, e.Mountpoints = s, s, s, []string{s, s}
		if len(e.Storage) > 0 {
			e.Storage[0].Name, e.Storage[0].On = s, []string{s}
		}
		checkSameAsMarshal(t, &e)
	})
}

// BenchmarkAppendObjectReal: the event of `make bench-latency` (an error
// on an ext4 on a loop device, storage stack and kernel message, ext4's
// record pending), as the history stores it, with its file system's
// FSJSON as package enrich gives it; BenchmarkAppendJSON's event carries
// ext4's record, which is encoded by encoding/json.
func BenchmarkAppendObjectReal(b *testing.B) { benchAppendObjectReal(b, &FSJSON{}) }

// BenchmarkAppendObjectRealUncached: the same without the FSJSON (an
// event whose file system is not known).
func BenchmarkAppendObjectRealUncached(b *testing.B) { benchAppendObjectReal(b, nil) }

func benchAppendObjectReal(b *testing.B, c *FSJSON) {
	b.ReportAllocs()
	var e Event
	if err := json.Unmarshal([]byte(loopEvent), &e); err != nil {
		b.Fatal(err)
	}
	if c != nil {
		e.UseFSJSON(c)
	}
	var buf []byte
	for b.Loop() {
		buf, _ = AppendObject(buf[:0], &e)
	}
	if string(buf) != loopEvent {
		b.Fatalf("%s", buf)
	}
}

// loopEvent is a line `fshealth watch --json` printed for an error raised
// on an ext4 on a loop device (the event of `make bench-latency`).
const loopEvent = `{"kind":"error","time":"2026-12-06T18:10:04.459227999Z","source":"fanotify","errno":117,"error":"EUCLEAN","error_text":"structure needs cleaning","error_count":1,"pid":16902,"fsid":"6bc96cde:970e9f01","device":"/dev/loop0","device_number":"7:0","fstype":"ext4","uuid":"5b50d3d5-c009-4b8a-853c-1abec196451d","mountpoints":["/tmp/lat/m"],"storage":[{"name":"loop0","kind":"loop","dev":"7:0","node":"/dev/loop0","size_bytes":67108864,"on":["vda"],"backing_file":"/tmp/lat/img","backing_fs":{"dev":"254:0","fstype":"ext4","source":"/dev/vda","mountpoint":"/"}},{"name":"vda","kind":"disk","dev":"254:0","node":"/dev/vda","size_bytes":274877906944,"disk":{"transport":"virtio","serial":"172663873342812"}}],"ext4_pending":true,"kernel_message":"EXT4-fs error (device loop0): trigger_test_error:129: comm bash: x"}`
