package mounts

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strconv"
)

// MountinfoReader reads a mountinfo file again and again and applies what
// changed since its last reading to a Table. Lines are compared by mount
// id and a hash of their text, so only new or changed lines are parsed;
// its buffer is reused between readings. It is for kernels without
// statmount(2) and mount events, where mountinfo is the only source.
type MountinfoReader struct {
	path string
	buf  []byte
	seed maphash.Seed
	seen map[int]lineState
	gen  uint32
}

type lineState struct {
	hash uint64
	gen  uint32
}

// NewMountinfoReader returns a reader of the mountinfo file at path (e.g.
// /proc/self/mountinfo, or /proc/<pid>/mountinfo for another process's
// mount namespace).
func NewMountinfoReader(path string) *MountinfoReader {
	return &MountinfoReader{path: path, seed: maphash.MakeSeed(), seen: map[int]lineState{}}
}

// Path returns the file the reader reads.
func (r *MountinfoReader) Path() string { return r.path }

// Update reads the file and applies the differences to t: mounts whose
// line is new or changed are added (replacing the old one), mounts whose
// id is gone are removed. A malformed line is skipped and reported in the
// error, which names the file and the line; the rest is applied.
func (r *MountinfoReader) Update(t *Table) error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	r.buf, err = readAll(f, r.buf[:0])
	f.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", r.path, err)
	}
	return r.apply(t, r.buf)
}

// readAll reads f to its end into buf, growing it as needed.
func readAll(f *os.File, buf []byte) ([]byte, error) {
	if cap(buf) < 64<<10 {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// apply applies one reading, text, to t.
func (r *MountinfoReader) apply(t *Table, text []byte) error {
	r.gen++
	var firstErr error
	for n := 1; len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		id, err := strconv.Atoi(string(line[:max(sp, 0)]))
		if sp < 0 || err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: line %d: bad mount id in %q", r.path, n, line)
			}
			continue
		}
		h := maphash.Bytes(r.seed, line)
		if st, ok := r.seen[id]; ok && st.hash == h {
			if st.gen != r.gen {
				r.seen[id] = lineState{hash: h, gen: r.gen}
			}
			continue
		}
		m, err := parseLine(string(line))
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: line %d: %w", r.path, n, err)
			}
			continue
		}
		t.Add(m, 0)
		r.seen[id] = lineState{hash: h, gen: r.gen}
	}
	for id, st := range r.seen {
		if st.gen != r.gen {
			t.Remove(id)
			delete(r.seen, id)
		}
	}
	return firstErr
}
