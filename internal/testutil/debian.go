package testutil

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// HostDebian returns the machine's Debian codename and the mirror its apt
// uses for it.
func HostDebian(t testing.TB) (suite, mirror string) {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^VERSION_CODENAME=(\w+)$`).FindSubmatch(b); m != nil {
		suite = string(m[1])
	}
	if suite == "" || !bytes.Contains(b, []byte("ID=debian")) {
		RequireCommand(t, "a Debian host", "(this is not Debian)")
	}
	// deb822 sources first, then the one-line format.
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(b), "\n\n") {
			var uris, suites []string
			sc := bufio.NewScanner(strings.NewReader(stanza))
			for sc.Scan() {
				k, v, _ := strings.Cut(sc.Text(), ":")
				switch strings.TrimSpace(k) {
				case "URIs":
					uris = strings.Fields(v)
				case "Suites":
					suites = strings.Fields(v)
				}
			}
			for _, s := range suites {
				if s == suite && len(uris) > 0 {
					return suite, uris[0]
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		re := regexp.MustCompile(`(?m)^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+` + suite + `\s`)
		if m := re.FindSubmatch(b); m != nil {
			return suite, string(m[1])
		}
	}
	t.Fatalf("no mirror for %s in the apt sources", suite)
	return "", ""
}

// DebianRoot returns a minimal Debian root (debootstrap --variant=minbase)
// of suite with the packages include (comma-separated), cached as
// debian-SUITE-NAME in /var/cache/fshealth-test ($FSHEALTH_TEST_CACHE),
// making it from mirror the first time, one test binary at a time. The
// file marker (relative to the root) says the root is complete.
func DebianRoot(t testing.TB, suite, mirror, name, include, marker string) string {
	t.Helper()
	cache := os.Getenv("FSHEALTH_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/fshealth-test"
	}
	root := filepath.Join(cache, "debian-"+suite+"-"+name)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(root+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("locking %s: %v", lock.Name(), err)
	}
	if _, err := os.Stat(filepath.Join(root, marker)); err == nil {
		return root
	}
	RequireCommand(t, "debootstrap", "debootstrap")
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	t.Logf("making the Debian root %s from %s (once: it is cached)", root, mirror)
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include="+include, suite, tmp, mirror).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("debootstrap: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	return root
}
