package event

import "testing"

func TestErrnoNames(t *testing.T) {
	for name, n := range map[string]int{"EUCLEAN": 117, "EFSCORRUPTED": 117, "EIO": 5, "EBADMSG": 74, "EFSBADCRC": 74, "ENOTSUP": 95, "EOPNOTSUPP": 95} {
		if got, ok := ErrnoNumber(name); !ok || got != n {
			t.Errorf("ErrnoNumber(%s) = %d, %v", name, got, ok)
		}
	}
	for n, name := range map[int]string{117: "EUCLEAN", 74: "EBADMSG", 95: "EOPNOTSUPP", 11: "EAGAIN", 5: "EIO",
		108: "ESHUTDOWN", 28: "ENOSPC", 4000: "E4000", 9999: "E9999", 0: "E0", -3: "E-3"} {
		if got := ErrnoName(n); got != name {
			t.Errorf("ErrnoName(%d) = %s, want %s", n, got, name)
		}
	}
}
