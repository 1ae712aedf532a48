package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

const nobody = 65534

// tree makes dir/a/b/file, every part owned by root with safe modes.
func tree(t *testing.T) (dir, a, b, file string) {
	t.Helper()
	dir = t.TempDir()
	a = filepath.Join(dir, "a")
	b = filepath.Join(a, "b")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(b, "file")
	if err := os.WriteFile(file, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, a, b, file
}

func TestCheck(t *testing.T) {
	testutil.RequireRoot(t) // chown
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, a, b, file string) string // returns the path to check
		bad   string                                            // "" = trusted; else the file at fault's base name
		want  string                                            // in the message
	}{
		{"trusted", func(t *testing.T, dir, a, b, file string) string { return file }, "", ""},
		{"file owned by nobody", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chown(file, nobody, nobody))
			return file
		}, "file", "owned by another user (owner nobody (uid 65534), mode 0755)"},
		{"file group-writable", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chmod(file, 0o775))
			return file
		}, "file", "writable by its group or by every user (owner root (uid 0), mode 0775)"},
		{"parent owned by nobody", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chown(a, nobody, nobody))
			return file
		}, "a", "a directory owned by another user"},
		{"parent world-writable", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chmod(b, 0o777))
			return file
		}, "b", "a directory writable by its group or by every user (owner root (uid 0), mode 0777)"},
		{"sticky world-writable parent", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chmod(b, os.ModeSticky|0o777))
			return file
		}, "", ""},
		{"symlink owned by nobody", func(t *testing.T, dir, a, b, file string) string {
			l := filepath.Join(dir, "link")
			must(t, os.Symlink(file, l))
			must(t, os.Lchown(l, nobody, nobody))
			return l
		}, "link", "a symbolic link owned by another user"},
		{"symlink to a nobody-owned target", func(t *testing.T, dir, a, b, file string) string {
			must(t, os.Chown(b, nobody, nobody))
			l := filepath.Join(dir, "link")
			must(t, os.Symlink("a/b/file", l))
			return l
		}, "b", "a directory owned by another user"},
		{"trusted relative symlink with ..", func(t *testing.T, dir, a, b, file string) string {
			l := filepath.Join(b, "link")
			must(t, os.Symlink("../b/./file", l))
			return l
		}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, a, b, file := tree(t)
			p := c.setup(t, dir, a, b, file)
			err := Check(p, nil)
			if c.bad == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want nil", p, err)
				}
				return
			}
			if !IsUntrusted(err) {
				t.Fatalf("Check(%s) = %v, want an *Error", p, err)
			}
			e := err.(*Error)
			if filepath.Base(e.File) != c.bad || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check(%s) = %v, want %q at fault, saying %q", p, err, c.bad, c.want)
			}
		})
	}
}

func TestCheckSymlinkLoop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	must(t, os.Symlink(b, a))
	must(t, os.Symlink(a, b))
	err := Check(a, nil)
	if !IsUntrusted(err) || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Fatalf("Check(loop) = %v", err)
	}
}

func TestCheckMissing(t *testing.T) {
	err := Check(filepath.Join(t.TempDir(), "missing"), nil)
	if err == nil || IsUntrusted(err) || !os.IsNotExist(err) {
		t.Fatalf("Check(missing) = %v, want a not-exist error", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
