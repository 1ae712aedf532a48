// Package ext4 reads the error state ext4 records in its superblock and
// exposes under /sys/fs/ext4/<dev>/: how many errors the file system has
// seen, and where the first and the most recent one happened. The state
// survives unmounts and reboots until e2fsck clears it.
package ext4

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrorInfo is one recorded error: ext4 keeps the first and the last.
type ErrorInfo struct {
	// Time is when the error happened, to the second.
	Time time.Time `json:"time"`
	// Function and Line locate the kernel code that reported the error.
	Function string `json:"function"`
	Line     uint32 `json:"line"`
	// Inode and Block are the inode and block involved, 0 if none.
	Inode uint64 `json:"inode"`
	Block uint64 `json:"block"`
	// Code is ext4's own error code (EXT4_ERR_*), and Error its errno name.
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// State is a file system's recorded error state.
type State struct {
	// ErrorsCount is the number of errors recorded since the last e2fsck.
	ErrorsCount uint64 `json:"errors_count"`
	// FirstError and LastError are nil when no error is recorded.
	FirstError *ErrorInfo `json:"first_error,omitempty"`
	LastError  *ErrorInfo `json:"last_error,omitempty"`
}

// codeNames maps ext4's EXT4_ERR_* codes (fs/ext4/ext4.h) to errno names.
var codeNames = [...]string{
	1: "UNKNOWN", 2: "EIO", 3: "ENOMEM", 4: "EBADMSG", 5: "EUCLEAN",
	6: "ENOSPC", 7: "ENOKEY", 8: "EROFS", 9: "EFBIG", 10: "EEXIST",
	11: "ERANGE", 12: "EOVERFLOW", 13: "EBUSY", 14: "ENOTDIR",
	15: "ENOTEMPTY", 16: "ESHUTDOWN", 17: "EFAULT",
}

// CodeName returns the errno name of an EXT4_ERR_* code, or "" if unknown.
func CodeName(code int) string {
	if code > 0 && code < len(codeNames) {
		return codeNames[code]
	}
	return ""
}

// attribute names under /sys/fs/ext4/<dev>/, in the order Reader keeps them.
var attrs = [...]string{
	"errors_count",
	"first_error_time", "first_error_func", "first_error_line", "first_error_ino", "first_error_block", "first_error_errcode",
	"last_error_time", "last_error_func", "last_error_line", "last_error_ino", "last_error_block", "last_error_errcode",
}

// Reader reads one file system's error state repeatedly. It keeps the sysfs
// attributes open and re-reads them with pread(2), so a read costs no path
// lookups. It does not pin the file system: if it is unmounted, reads fail.
type Reader struct {
	dir string
	fds [len(attrs)]int
	buf [64]byte
	// first caches the first recorded error, which only e2fsck changes;
	// firstCount is errors_count when it was read.
	first      *ErrorInfo
	firstCount uint64
}

// Dir returns the sysfs directory of a block device's ext4 file system,
// e.g. Dir("/sys", "loop0") = "/sys/fs/ext4/loop0".
func Dir(sysRoot, kernelName string) string {
	return filepath.Join(sysRoot, "fs/ext4", kernelName)
}

// Open opens the error attributes under dir (see Dir).
func Open(dir string) (*Reader, error) {
	r := &Reader{dir: dir}
	for i := range r.fds {
		r.fds[i] = -1
	}
	for i, a := range attrs {
		fd, err := unix.Open(filepath.Join(dir, a), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			r.Close()
			return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, a), Err: err}
		}
		r.fds[i] = fd
	}
	return r, nil
}

// Close releases the reader's descriptors.
func (r *Reader) Close() error {
	for i, fd := range r.fds {
		if fd >= 0 {
			unix.Close(fd)
			r.fds[i] = -1
		}
	}
	return nil
}

// Count reads only the errors_count attribute.
func (r *Reader) Count() (uint64, error) {
	v, err := r.attr(0)
	if err != nil {
		return 0, err
	}
	return r.parseUint(0, v)
}

// Read reads the whole error state. The first error, once recorded, does not
// change until e2fsck clears the state, so it is re-read only while none is
// recorded (or when the count went down, i.e. after a repair): a read costs
// seven pread(2)s instead of thirteen.
func (r *Reader) Read() (*State, error) {
	var vals [len(attrs)][]byte
	var store [len(attrs)][32]byte
	get := func(i int) error {
		v, err := r.attr(i)
		if err != nil {
			return err
		}
		vals[i] = append(store[i][:0], v...)
		return nil
	}
	if err := get(0); err != nil {
		return nil, err
	}
	for i := 7; i < len(attrs); i++ {
		if err := get(i); err != nil {
			return nil, err
		}
	}
	count, err := r.parseUint(0, vals[0])
	if err != nil {
		return nil, err
	}
	if r.first == nil || count < r.firstCount {
		for i := 1; i < 7; i++ {
			if err := get(i); err != nil {
				return nil, err
			}
		}
	}
	st, err := r.decode(vals[:])
	if err != nil {
		return nil, err
	}
	if vals[1] == nil {
		st.FirstError = r.first
	} else if st.FirstError != nil {
		r.first, r.firstCount = st.FirstError, count
	} else {
		r.first = nil
	}
	return st, nil
}

func (r *Reader) attr(i int) ([]byte, error) {
	n, err := unix.Pread(r.fds[i], r.buf[:], 0)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: filepath.Join(r.dir, attrs[i]), Err: err}
	}
	return bytes.TrimSpace(r.buf[:n]), nil
}

func (r *Reader) parseUint(i int, v []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a number: %q", filepath.Join(r.dir, attrs[i]), v)
	}
	return n, nil
}

// decode turns the attribute values (in attrs order) into a State.
func (r *Reader) decode(v [][]byte) (*State, error) {
	var nums [len(attrs)]uint64
	for i, a := range attrs {
		if a == "first_error_func" || a == "last_error_func" || v[i] == nil {
			continue
		}
		n, err := r.parseUint(i, v[i])
		if err != nil {
			return nil, err
		}
		nums[i] = n
	}
	st := &State{ErrorsCount: nums[0]}
	info := func(base int) *ErrorInfo {
		if nums[base] == 0 && len(v[base+1]) == 0 {
			return nil
		}
		code := int(nums[base+5])
		return &ErrorInfo{
			Time:     time.Unix(int64(nums[base]), 0).UTC(),
			Function: string(v[base+1]),
			Line:     uint32(nums[base+2]),
			Inode:    nums[base+3],
			Block:    nums[base+4],
			Code:     code,
			Error:    CodeName(code),
		}
	}
	st.FirstError = info(1)
	st.LastError = info(7)
	return st, nil
}

// ReadState reads the error state under dir once.
func ReadState(dir string) (*State, error) {
	r, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Read()
}
