package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// prepareKernel downloads k's packages (unless cached) and fills in the
// cached kernel image and modules piece, extracting them from the packages
// when the cache lacks them. It marks every cache path it uses in used.
func prepareKernel(ctx context.Context, c *cache, repo *aptRepo, k *kernel, used map[string]bool) error {
	var debs []string
	for _, p := range k.Packages {
		path, err := repo.download(ctx, p)
		if err != nil {
			return err
		}
		debs = append(debs, path)
		used[path] = true
	}
	dir := c.Path("kernels", k.ABI+"_"+k.Version())
	used[dir] = true
	k.Vmlinuz = filepath.Join(dir, "vmlinuz")
	k.Modules = filepath.Join(dir, "modules-"+modulesKey()+".cpio")
	if fileExists(k.Vmlinuz) && fileExists(k.Modules) {
		return nil
	}
	logf("kernel %s: extracting %s", k.Spec.Name, k.ABI)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tree, err := os.MkdirTemp(c.Dir, ".extract-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	for _, deb := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tree).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v: %s", deb, err, out)
		}
	}
	if err := copyVmlinuz(tree, k.ABI, k.Vmlinuz); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "modules-*.cpio"))
	for _, p := range old {
		os.Remove(p)
	}
	return writeModulesPiece(ctx, tree, k.ABI, k.Modules)
}

// modulesKey identifies the guest module list, so that a changed list
// builds a new modules piece.
func modulesKey() string {
	sum := sha256.Sum256([]byte(strings.Join(guestModules, "\n")))
	return hex.EncodeToString(sum[:6])
}

// fileExists reports whether path is an existing regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// copyVmlinuz copies the kernel image out of an extracted package tree:
// boot/vmlinuz-<ABI> up to 6.18, usr/lib/modules/<ABI>/vmlinuz (package
// linux-binary-<ABI>) after.
func copyVmlinuz(tree, abi, dst string) error {
	for _, p := range []string{"boot/vmlinuz-" + abi, "usr/lib/modules/" + abi + "/vmlinuz", "lib/modules/" + abi + "/vmlinuz"} {
		data, err := os.ReadFile(filepath.Join(tree, p))
		if err == nil {
			return writeFileAtomic(dst, data, 0o644)
		}
	}
	return fmt.Errorf("no kernel image for %s in its packages", abi)
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so an interrupted run leaves no truncated file in the cache.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeModulesPiece writes the cpio piece holding the guest modules of the
// extracted kernel tree, uncompressed, as lib/modules/matrix/<name>.ko, and
// matrix/modules, the names in load order (dependencies first).
func writeModulesPiece(ctx context.Context, tree, abi, dst string) error {
	index, err := indexModules(tree, abi)
	if err != nil {
		return err
	}
	l := &moduleLoader{ctx: ctx, index: index, seen: map[string]bool{}}
	for _, m := range guestModules {
		if err := l.add(normalizeModule(m)); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	w := newCPIO(&buf)
	for _, m := range l.order {
		w.File("lib/modules/matrix/"+m.name+".ko", 0o644, m.data)
	}
	w.File("matrix/modules", 0o644, []byte(strings.Join(l.names(), "\n")+"\n"))
	if err := w.Close(); err != nil {
		return err
	}
	for _, m := range l.builtin {
		logf("kernel %s: module %s has no .ko file: taken as built in", abi, m)
	}
	return writeFileAtomic(dst, buf.Bytes(), 0o644)
}

// indexModules maps normalized module names to their files in the tree.
func indexModules(tree, abi string) (map[string]string, error) {
	index := map[string]string{}
	for _, root := range []string{"usr/lib/modules/" + abi, "lib/modules/" + abi} {
		root = filepath.Join(tree, root)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if name, ok := moduleName(d.Name()); ok {
				index[name] = p
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(index) == 0 {
		return nil, fmt.Errorf("no kernel modules for %s in its packages", abi)
	}
	return index, nil
}

// moduleName returns the normalized module name of a module file name
// (loop.ko, loop.ko.xz, ...).
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(file, ext) {
			return normalizeModule(strings.TrimSuffix(file, ext)), true
		}
	}
	return "", false
}

// normalizeModule spells a module name as the kernel does, with "_" for "-".
func normalizeModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleLoader collects modules and their dependencies in load order.
type moduleLoader struct {
	ctx     context.Context
	index   map[string]string
	seen    map[string]bool
	order   []module
	builtin []string
}

// module is an uncompressed kernel module.
type module struct {
	name string
	data []byte
}

// add adds module name after the modules it depends on.
func (l *moduleLoader) add(name string) error {
	if l.seen[name] {
		return nil
	}
	l.seen[name] = true
	path, ok := l.index[name]
	if !ok {
		l.builtin = append(l.builtin, name)
		return nil
	}
	data, err := decompressModule(l.ctx, path)
	if err != nil {
		return err
	}
	deps, err := moduleDepends(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, d := range deps {
		if err := l.add(normalizeModule(d)); err != nil {
			return err
		}
	}
	l.order = append(l.order, module{name: name, data: data})
	return nil
}

// names returns the module names in load order.
func (l *moduleLoader) names() []string {
	var names []string
	for _, m := range l.order {
		names = append(names, m.name)
	}
	return names
}

// decompressModule reads a module file, decompressing .ko.xz with xz(1),
// .ko.zst with zstd(1) and .ko.gz itself; busybox insmod in the guests wants
// plain .ko files.
func decompressModule(ctx context.Context, path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".xz"):
		return runOutput(ctx, "xz", "-dc", path)
	case strings.HasSuffix(path, ".zst"):
		return runOutput(ctx, "zstd", "-dc", path)
	case strings.HasSuffix(path, ".gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}
	return os.ReadFile(path)
}

// runOutput runs a program and returns its standard output.
func runOutput(ctx context.Context, prog string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, entry := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(entry, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
