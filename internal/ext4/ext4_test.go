package ext4_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

func writeAttrs(t *testing.T, attrs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"errors_count",
		"first_error_time", "first_error_func", "first_error_line", "first_error_ino", "first_error_block", "first_error_errcode",
		"last_error_time", "last_error_func", "last_error_line", "last_error_ino", "last_error_block", "last_error_errcode"} {
		v, ok := attrs[name]
		if !ok {
			v = "0"
			if strings.HasSuffix(name, "_func") {
				v = ""
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNoErrorsRecorded(t *testing.T) {
	st, err := ext4.ReadState(writeAttrs(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if st.ErrorsCount != 0 || st.FirstError != nil || st.LastError != nil {
		t.Errorf("%+v", st)
	}
}

func TestBadAttributeNamesTheFile(t *testing.T) {
	dir := writeAttrs(t, map[string]string{"last_error_line": "twelve"})
	_, err := ext4.ReadState(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "last_error_line")) {
		t.Errorf("got %v, want an error naming last_error_line", err)
	}
	if _, err := ext4.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "errors_count") {
		t.Errorf("opening an empty dir: %v", err)
	}
}

func TestCodeName(t *testing.T) {
	for code, want := range map[int]string{2: "EIO", 5: "EUCLEAN", 16: "ESHUTDOWN", 0: "", 99: ""} {
		if got := ext4.CodeName(code); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, want)
		}
	}
}

// TestReaderSeesNewErrors checks on a real file system that the kept-open
// attributes show fresh values on every read.
func TestReaderSeesNewErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	r, err := ext4.Open(im.SysfsDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := r.Count(); err != nil || n != 0 {
		t.Fatalf("fresh file system: count %d, %v", n, err)
	}
	for i := 1; i <= 3; i++ {
		if err := im.TriggerError("ext4 test"); err != nil {
			t.Fatal(err)
		}
		// ext4 publishes the state from a work queue, shortly after the
		// write returns: wait for the count (bounded), then read it all.
		deadline := time.Now().Add(5 * time.Second)
		for n, err := r.Count(); n < uint64(i) && err == nil && time.Now().Before(deadline); n, err = r.Count() {
			time.Sleep(time.Millisecond)
		}
		st, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if st.ErrorsCount != uint64(i) || st.LastError == nil || st.LastError.Function != "trigger_test_error" ||
			st.LastError.Error != "EUCLEAN" || st.FirstError == nil || st.LastError.Time.IsZero() {
			t.Errorf("after %d errors: %+v %+v", i, st, st.LastError)
		}
	}
}

// TestFirstErrorCached checks the first error is read once, and again only
// after the count goes down (e2fsck cleared the state).
func TestFirstErrorCached(t *testing.T) {
	dir := writeAttrs(t, map[string]string{"errors_count": "2", "first_error_time": "100", "first_error_func": "f1",
		"last_error_time": "200", "last_error_func": "l1"})
	r, err := ext4.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, _ := r.Read()
	if st.FirstError == nil || st.FirstError.Function != "f1" {
		t.Fatalf("first read: %+v", st.FirstError)
	}
	os.WriteFile(filepath.Join(dir, "first_error_func"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "last_error_func"), []byte("l2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "errors_count"), []byte("3\n"), 0o644)
	st, _ = r.Read()
	if st.FirstError.Function != "f1" || st.LastError.Function != "l2" || st.ErrorsCount != 3 {
		t.Errorf("second read: first %q last %q count %d", st.FirstError.Function, st.LastError.Function, st.ErrorsCount)
	}
	os.WriteFile(filepath.Join(dir, "errors_count"), []byte("1\n"), 0o644)
	if st, _ = r.Read(); st.FirstError.Function != "changed" {
		t.Errorf("after the count went down the first error was not re-read: %q", st.FirstError.Function)
	}
}
