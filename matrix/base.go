package main

import (
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// initScript is the guests' /init.
//
//go:embed init.sh
var initScript []byte

// entry is one file of the base piece.
type entry struct {
	Guest string // path in the guest
	Host  string // host file copied, or
	Data  []byte // these contents, or
	Link  string // a symbolic link to this
	Perm  uint32
}

// hashInto adds what identifies the entry to h: a changed host file (by
// size and modification time) or script builds a new piece.
func (e entry) hashInto(h hash.Hash) {
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%o\x00", e.Guest, e.Host, e.Link, e.Perm)
	if e.Host != "" {
		if st, err := os.Stat(e.Host); err == nil {
			fmt.Fprintf(h, "%d %d\x00", st.Size(), st.ModTime().UnixNano())
		}
	}
	h.Write(e.Data)
}

// basePiece returns the cpio piece every guest shares, building it unless
// the cache has it: /init, a static busybox, the console device node, and
// the guest tools with their shared libraries and the dynamic loader.
func basePiece(c *cache, used map[string]bool) (string, error) {
	entries, err := baseEntries()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries {
		e.hashInto(h)
	}
	path := c.Path("pieces", "base-"+hex.EncodeToString(h.Sum(nil)[:8])+".cpio")
	used[path] = true
	if fileExists(path) {
		return path, nil
	}
	logf("initramfs: building the base piece %s", path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, writeBasePiece(path, entries)
}

// writeBasePiece writes the base piece's entries to path.
func writeBasePiece(path string, entries []entry) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := newCPIO(f)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "root", "bin", "sbin", "usr/bin", "usr/sbin"} {
		w.Dir(d, 0o755)
	}
	// The kernel opens /dev/console for /init before devtmpfs is mounted.
	w.CharDevice("dev/console", 0o600, 5, 1)
	for _, e := range entries {
		switch {
		case e.Link != "":
			w.Symlink(e.Guest, e.Link)
		case e.Host != "":
			w.CopyFile(e.Guest, e.Perm, e.Host)
		default:
			w.File(e.Guest, e.Perm, e.Data)
		}
	}
	err = w.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}

// baseEntries lists the base piece's files, without duplicates.
func baseEntries() ([]entry, error) {
	busybox, err := staticBusybox()
	if err != nil {
		return nil, err
	}
	entries := []entry{
		{Guest: "init", Data: initScript, Perm: 0o755},
		{Guest: "bin/busybox", Host: busybox, Perm: 0o755},
		{Guest: "etc/mtab", Link: "/proc/self/mounts"},
		{Guest: "etc/hosts", Data: []byte("127.0.0.1 localhost\n::1 localhost\n"), Perm: 0o644},
		{Guest: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Perm: 0o644},
		{Guest: "etc/group", Data: []byte("root:x:0:\n"), Perm: 0o644},
	}
	if fileExists("/etc/mke2fs.conf") {
		entries = append(entries, entry{Guest: "etc/mke2fs.conf", Host: "/etc/mke2fs.conf", Perm: 0o644})
	}
	seen := map[string]bool{}
	for _, t := range guestTools {
		path, err := loopfs.FindTool(t.Name)
		if err != nil {
			return nil, missingTool(t, err)
		}
		prog, err := programEntries(path)
		if err != nil {
			return nil, err
		}
		for _, e := range prog {
			if !seen[e.Guest] {
				seen[e.Guest] = true
				entries = append(entries, e)
			}
		}
	}
	return entries, nil
}

// missingTool is the error for a host program that is not installed.
func missingTool(t hostTool, err error) error {
	return fmt.Errorf("%s is missing on the host: install the Debian package %s (apt-get install %s): %v", t.Name, t.Package, t.Package, err)
}

// staticBusybox finds the host's busybox and checks that it is statically
// linked (Debian's busybox-static), since the guests have no libc of their
// own for it.
func staticBusybox() (string, error) {
	t := hostTool{Name: "busybox", Package: "busybox-static"}
	path, err := exec.LookPath("busybox")
	if err != nil {
		return "", missingTool(t, err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", missingTool(t, fmt.Errorf("%s is dynamically linked", path))
		}
	}
	return path, nil
}

// programEntries returns the entries that make the host program at path run
// in a guest: its symbolic links (mkfs.ext4 → mke2fs: the name selects the
// behaviour), the program, its shared libraries and the dynamic loader, each
// at its host path.
func programEntries(path string) ([]entry, error) {
	var entries []entry
	for hops := 0; hops < 8; hops++ {
		dir, err := filepath.EvalSymlinks(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, filepath.Base(path))
		st, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			entries = append(entries, entry{Guest: path, Host: path, Perm: 0o755})
			libs, err := sharedLibraries(path)
			if err != nil {
				return nil, err
			}
			return append(entries, libs...), nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{Guest: path, Link: target})
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		path = target
	}
	return nil, fmt.Errorf("%s: too many symbolic links", path)
}

// sharedLibraries lists, with ldd, the shared libraries and the dynamic
// loader of a host program, as entries at the paths the loader looks them
// up by, holding the files they resolve to.
func sharedLibraries(prog string) ([]entry, error) {
	out, err := exec.Command("ldd", prog).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", prog, err, out)
	}
	var entries []entry
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s is not found", prog, f[0])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{Guest: lib, Host: real, Perm: 0o755})
	}
	return entries, nil
}
