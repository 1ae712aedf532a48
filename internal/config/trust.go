package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/notify/hook"
	"github.com/fshealth/fshealth/internal/trust"
)

// CredentialsDirEnv is the environment variable systemd sets to the
// directory of a service's credentials (LoadCredential=,
// SetCredential=, LoadCredentialEncrypted=...).
const CredentialsDirEnv = "CREDENTIALS_DIRECTORY"

// maxSecretSize bounds a secret file.
const maxSecretSize = 64 << 10

// fileInfo is what Load found out about the configuration file, for the
// checks that depend on it; nil for Parse, which touches no file.
type fileInfo struct {
	// mode is the file's permission bits.
	mode fs.FileMode
}

// asRoot reports whether fshealth runs as root, when the files it reads
// and runs must be root's alone. A variable for tests.
var asRoot = func() bool { return os.Geteuid() == 0 }

// loadFile reads the configuration file at path. As root, the file and
// every directory above it must be changeable by root only.
func loadFile(path string) ([]byte, *fileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if asRoot() {
		if err := trust.Check(path, nil); err != nil {
			if !trust.IsUntrusted(err) {
				return nil, nil, err
			}
			return nil, nil, &Error{Problems: []Problem{{File: path,
				Message: "refusing a configuration file that others than root can change: " + err.Error()}}}
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, &fileInfo{mode: st.Mode().Perm()}, nil
}

// secret reads a secret-bearing key of t, which may be given inline (key),
// from a file (key_file) or from a systemd credential (key_credential):
// at most one of them. It stores the value in dst and reports whether the
// key was given in any form. Parse reads no file: a secret given by file
// or credential stays empty there.
func (r *reader) secret(t at, key, inline, file, cred string, dst *string) bool {
	fileKey, credKey := key+"_file", key+"_credential"
	var given []string
	for _, k := range []string{key, fileKey, credKey} {
		if t.given(k) {
			given = append(given, k)
		}
	}
	switch {
	case len(given) > 1:
		t.errorf(given[1], "give only one of %s, %s and %s", key, fileKey, credKey)
		return true
	case len(given) == 0:
		return false
	case !t.has(given[0]):
		return true // of the wrong kind: reported
	}
	var msg string
	switch given[0] {
	case key:
		*dst = inline
		if r.info != nil && r.info.mode&0o004 != 0 && inline != "" {
			t.warnf(key, "the configuration file is readable by every user (mode %04o), and so is this secret: chmod o-r the file, or give it with %s or %s",
				r.info.mode, fileKey, credKey)
		}
	case fileKey:
		*dst, msg = r.resolve(fromFile, file)
	case credKey:
		*dst, msg = r.resolve(fromCredential, cred)
	}
	t.check(given[0], msg)
	if strings.ContainsFunc(*dst, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		t.errorf(given[0], "the secret contains control characters (value not shown)")
	}
	return true
}

// readableURL returns a warning when the configuration file is readable by
// every user and the URL u holds what is treated as secret (user
// information, query values), else "".
func (r *reader) readableURL(u string) string {
	if r.info == nil || r.info.mode&0o004 == 0 {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || p.User == nil && p.RawQuery == "" {
		return ""
	}
	return fmt.Sprintf("the configuration file is readable by every user (mode %04o), and so are the user information and query values of this URL: chmod o-r the file", r.info.mode)
}

// checkCredentialName checks a systemd credential name.
func checkCredentialName(n string) string {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || len(n) > 255 {
		return fmt.Sprintf("not a credential name: %q", n)
	}
	return ""
}

// readSecret reads a secret from the file at path: a regular file that not
// every user can read and, as root, that only root can change. One
// trailing newline is dropped. Errors never show the content.
func readSecret(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("%q: %v", path, pe.Err)
		}
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%q is not a regular file", path)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("%q is readable by every user (mode %04o): chmod o-r it", path, st.Mode().Perm())
	}
	if asRoot() {
		if err := trust.Check(path, nil); err != nil {
			return "", err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("%q: %v", path, err)
	}
	if len(b) > maxSecretSize {
		return "", fmt.Errorf("%q is larger than %d bytes: not a secret", path, maxSecretSize)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// Where a secret comes from, for resolve.
const (
	fromFile       = "file"
	fromCredential = "credential"
)

// resolve returns the secret ref (a file name or a systemd credential's
// name, per kind) gives, or a problem. Parse reads nothing: "" and no
// problem beyond the name's syntax.
func (r *reader) resolve(kind, ref string) (value, problem string) {
	path := ref
	switch kind {
	case fromFile:
		if msg := checkAbsPath(ref); msg != "" {
			return "", msg
		}
	case fromCredential:
		if msg := checkCredentialName(ref); msg != "" {
			return "", msg
		}
		if r.info == nil {
			return "", ""
		}
		dir := os.Getenv(CredentialsDirEnv)
		if dir == "" {
			return "", fmt.Sprintf("$%s is not set: systemd sets it for a service with LoadCredential=%s:/path/to/file (or SetCredentialEncrypted=)",
				CredentialsDirEnv, ref)
		}
		path = filepath.Join(dir, ref)
	}
	if r.info == nil {
		return "", ""
	}
	v, err := readSecret(path)
	if err != nil {
		if kind == fromCredential {
			return "", fmt.Sprintf("credential %q: %v", ref, err)
		}
		return "", err.Error()
	}
	return v, ""
}

// secretHeaders reads the header_files and header_credentials tables of f
// (header names to file names, or to systemd credential names) into
// headers, creating it. A header may be given only once in all.
func (r *reader) secretHeaders(t at, f fileHeaders, headers *map[string]string) {
	for _, src := range []struct {
		key, kind string
		refs      map[string]string
	}{{"header_files", fromFile, f.HeaderFiles}, {"header_credentials", fromCredential, f.HeaderCredentials}} {
		tbl := t.sub(src.key)
		for _, name := range sortedKeys(src.refs) {
			if msg := checkSetHeader(name); msg != "" {
				tbl.errorf(name, "%s", msg)
				continue
			}
			if slices.ContainsFunc(slices.Collect(maps.Keys(*headers)), func(k string) bool { return strings.EqualFold(k, name) }) {
				tbl.errorf(name, "header %q is given more than once", name)
				continue
			}
			v, msg := r.resolve(src.kind, src.refs[name])
			if msg == "" {
				msg = checkHeaderValue(v)
			}
			tbl.check(name, msg)
			if *headers == nil {
				*headers = make(map[string]string)
			}
			(*headers)[name] = v
		}
	}
}

// checkHooks checks, for Load, the hooks directory and every hook in it:
// they must exist and be changeable by root (or fshealth's user) only.
func checkHooks(dir string) []string {
	fi, err := os.Stat(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return []string{fmt.Sprintf("no such directory: %q", dir)}
		}
		return []string{fmt.Sprintf("cannot use %q: %v", dir, err.(*os.PathError).Err)}
	}
	if !fi.IsDir() {
		return []string{fmt.Sprintf("not a directory: %q", dir)}
	}
	return hook.CheckDir(dir)
}

// checkProgram checks, for Load, the program of a command action: it must
// be changeable by root (or fshealth's user) only. A program that does not
// exist is a warning: it may be installed later.
func checkProgram(prog string) (msg, warn string) {
	err := trust.CheckProgram(prog)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Sprintf("program %q does not exist (yet?): the action will fail until it does", prog)
	case trust.IsUntrusted(err):
		return "refusing to run a program that others than root can change: " + err.Error(), ""
	}
	return fmt.Sprintf("program %q: %v", prog, err), ""
}

// shells are the programs whose -c option runs its argument as a script.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh"}

// ownValues are the placeholders whose values fshealth makes itself (a
// number, an errno name, the descriptor 3): no file system can put shell
// syntax into them.
var ownValues = []string{"{event_id}", "{errno}", "{progress_fd}"}

// shellScriptPlaceholders returns, when argv runs a shell script given
// with -c, the index of the script and the placeholders it uses that carry
// a file system's or the kernel's text; otherwise -1.
func shellScriptPlaceholders(argv []string) (int, []string) {
	if len(argv) < 2 || !slices.Contains(shells, filepath.Base(argv[0])) {
		return -1, nil
	}
	args := argv[1:]
	if filepath.Base(argv[0]) == "busybox" && len(args) > 0 {
		args = args[1:] // busybox sh -c
	}
	hasC, skip := false, false
	for i, a := range args {
		if skip { // the argument of -o or +o
			skip = false
			continue
		}
		if a == "-o" || a == "+o" {
			skip = true
			continue
		}
		if a == "--" && i+1 < len(args) {
			a, i = args[i+1], i+1 // the end of the options: the script follows
		}
		if a == "--" || !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+") {
			if !hasC || a == "--" {
				return -1, nil
			}
			used := slices.DeleteFunc(actions.Placeholders(a), func(p string) bool {
				return slices.Contains(ownValues, p)
			})
			if len(used) == 0 {
				return -1, nil
			}
			return len(argv) - len(args) + i, used
		}
		if !strings.HasPrefix(a, "--") && strings.ContainsRune(a[1:], 'c') {
			hasC = true
		}
	}
	return -1, nil
}
