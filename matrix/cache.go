package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// defaultCacheDir holds everything the matrix downloads or builds once and
// reuses: package lists, .deb files, kernels, initramfs pieces, guest logs.
const defaultCacheDir = "/var/cache/fshealth-matrix"

// cache is the matrix's cache directory, locked against concurrent runs.
type cache struct {
	Dir  string
	lock *os.File
}

// openCache creates dir if needed and takes its lock, waiting for another
// run that holds it.
func openCache(dir string) (*cache, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		logf("cache %s is in use by another matrix run; waiting", dir)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
	// With the lock held, extraction directories are leftovers of a run
	// that was killed.
	stale, _ := filepath.Glob(filepath.Join(dir, ".extract-*"))
	for _, p := range stale {
		os.RemoveAll(p)
	}
	return &cache{Dir: dir, lock: f}, nil
}

// Path returns a path inside the cache.
func (c *cache) Path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

// Close releases the lock.
func (c *cache) Close() { c.lock.Close() }

// Prune removes cached .deb files, kernels and initramfs pieces that the
// current run did not use, so the cache holds one set of kernels.
func (c *cache) Prune(used map[string]bool) {
	for _, dir := range []string{"debs", "kernels", "pieces"} {
		entries, _ := os.ReadDir(c.Path(dir))
		for _, e := range entries {
			p := c.Path(dir, e.Name())
			if used[p] || e.Name() == "partial" || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			logf("cache: removing unused %s", p)
			os.RemoveAll(p)
		}
	}
}
