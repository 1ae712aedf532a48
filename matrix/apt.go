package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// debianKeyring verifies the Debian archives; it is shipped by the
// debian-archive-keyring package.
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// errNoPackage is returned by aptRepo.show for a package the archive lacks.
var errNoPackage = errors.New("no such package")

// mirrors are the base URIs of Debian's main and security archives.
type mirrors struct {
	Main     string // e.g. http://<mirror>/debian
	Security string // e.g. http://<mirror>/debian-security
}

// aptRepo is a private apt state for one Debian release and its update,
// security and backports suites: its own sources list, package lists and
// package cache under the matrix cache directory. The host's /etc/apt is
// never changed, and its preferences and extra sources are ignored.
type aptRepo struct {
	Release string // e.g. "bookworm"
	dir     string // <cache>/apt/<release>
	debs    string // <cache>/debs, where .deb files are downloaded
}

// newAptRepo returns the apt state for release under cacheDir.
func newAptRepo(cacheDir, release string) *aptRepo {
	return &aptRepo{
		Release: release,
		dir:     filepath.Join(cacheDir, "apt", release),
		debs:    filepath.Join(cacheDir, "debs"),
	}
}

// sourcesList returns the sources.list text for the release's main,
// updates, backports and security suites.
func (r *aptRepo) sourcesList(m mirrors) string {
	var b strings.Builder
	line := func(uri, suite string) {
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", debianKeyring, uri, suite)
	}
	line(m.Main, r.Release)
	line(m.Main, r.Release+"-updates")
	line(m.Main, r.Release+"-backports")
	line(m.Security, r.Release+"-security")
	return b.String()
}

// options returns the apt options that point apt at this private state.
// defaultRelease, if set, is given apt's default-release priority (990), as
// `apt-get -t` does, so that a backports suite wins over the release.
func (r *aptRepo) options(defaultRelease string) []string {
	opts := []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(r.dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=/nonexistent",
		"-o", "Dir::Etc::preferences=/nonexistent",
		"-o", "Dir::Etc::preferencesparts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(r.dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(r.dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(r.dir, "cache"),
		"-o", "Dir::Cache::archives=" + r.debs,
		// Debian's container images turn the binary package cache off;
		// without it every apt-cache call parses all the lists again.
		"-o", "Dir::Cache::pkgcache=pkgcache.bin",
		"-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin",
		"-o", "APT::Sandbox::User=root",
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
	}
	if defaultRelease != "" {
		opts = append(opts, "-o", "APT::Default-Release="+defaultRelease)
	}
	return opts
}

// update downloads the package lists unless they were downloaded less than
// maxAge ago for the same sources. When the download fails but older lists
// exist, it warns and keeps them.
func (r *aptRepo) update(ctx context.Context, m mirrors, maxAge time.Duration) error {
	for _, d := range []string{"lists/partial", "cache", r.debs} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.dir, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := touchEmpty(filepath.Join(r.dir, "status")); err != nil {
		return err
	}
	sources := r.sourcesList(m)
	stamp := filepath.Join(r.dir, "updated")
	old, _ := os.ReadFile(filepath.Join(r.dir, "sources.list"))
	if st, err := os.Stat(stamp); err == nil && string(old) == sources && time.Since(st.ModTime()) < maxAge {
		return nil
	}
	if err := os.WriteFile(filepath.Join(r.dir, "sources.list"), []byte(sources), 0o644); err != nil {
		return err
	}
	logf("apt: updating the package lists of %s (%s)", r.Release, filepath.Join(r.dir, "lists"))
	if _, err := r.apt(ctx, "apt-get", "", "-q", "update"); err != nil {
		if string(old) == sources {
			logf("apt: warning: %v; using the package lists downloaded before", err)
			return nil
		}
		return err
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// touchEmpty creates path as an empty file if it does not exist.
func touchEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// apt runs an apt program (apt-get or apt-cache) with the private options and
// returns its standard output.
func (r *aptRepo) apt(ctx context.Context, prog, defaultRelease string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, append(r.options(defaultRelease), args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	cmd.Dir = r.debs
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// debPackage is one version of a binary package, as apt-cache show prints it.
type debPackage struct {
	Name    string
	Version string
	Size    int64
	Depends []dependency // alternatives flattened
}

// dependency is one package a package depends on, and the exact version it
// requires ("" unless the relation is "=").
type dependency struct {
	Name    string
	Version string
}

// String returns the dependency in apt's name=version form.
func (d dependency) String() string {
	if d.Version == "" {
		return d.Name
	}
	return d.Name + "=" + d.Version
}

// show returns the candidate version of pkg (the one apt would install,
// given defaultRelease), or the version named by a "name=version" pkg, or
// errNoPackage.
func (r *aptRepo) show(ctx context.Context, pkg, defaultRelease string) (*debPackage, error) {
	out, err := r.apt(ctx, "apt-cache", defaultRelease, "show", "--no-all-versions", pkg)
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("%s in %s: %w", pkg, r.Release, errNoPackage)
	}
	return parseStanza(out), nil
}

// parseStanza parses the first stanza of apt-cache show output.
func parseStanza(out []byte) *debPackage {
	p := &debPackage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch key {
		case "Package":
			p.Name = value
		case "Version":
			p.Version = value
		case "Size":
			p.Size, _ = strconv.ParseInt(value, 10, 64)
		case "Depends", "Pre-Depends":
			p.Depends = append(p.Depends, parseDepends(value)...)
		}
	}
	return p
}

// parseDepends parses a Depends field, flattening alternatives and keeping
// only exact ("=") version constraints.
func parseDepends(field string) []dependency {
	var deps []dependency
	for _, dep := range strings.Split(field, ",") {
		for _, alt := range strings.Split(dep, "|") {
			f := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(alt))
			if len(f) == 0 {
				continue
			}
			d := dependency{Name: strings.SplitN(f[0], ":", 2)[0]}
			if len(f) == 3 && f[1] == "=" {
				d.Version = f[2]
			}
			deps = append(deps, d)
		}
	}
	return deps
}

// packageNames returns the names of the known packages starting with prefix.
func (r *aptRepo) packageNames(ctx context.Context, prefix string) ([]string, error) {
	out, err := r.apt(ctx, "apt-cache", "", "pkgnames", prefix)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// download fetches p into the .deb cache unless a file of the right size is
// already there, and returns its path.
func (r *aptRepo) download(ctx context.Context, p *debPackage) (string, error) {
	path := filepath.Join(r.debs, debFileName(p))
	if st, err := os.Stat(path); err == nil && (p.Size == 0 || st.Size() == p.Size) {
		return path, nil
	}
	logf("apt: downloading %s %s (%.1f MB)", p.Name, p.Version, float64(p.Size)/1e6)
	if _, err := r.apt(ctx, "apt-get", "", "-q", "download", p.Name+"="+p.Version); err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s did not create %s", p.Name, p.Version, path)
	}
	return path, nil
}

// debFileName is the file name apt-get download gives p.
func debFileName(p *debPackage) string {
	return fmt.Sprintf("%s_%s_amd64.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"))
}

// versionGreater reports whether Debian version a sorts after b.
func versionGreater(ctx context.Context, a, b string) bool {
	return exec.CommandContext(ctx, "dpkg", "--compare-versions", a, "gt", b).Run() == nil
}

// hostMirrors finds Debian's main and security archives in the host's apt
// configuration (apt-get indextargets), so that the matrix uses the mirror
// the machine is set up for. Flags or environment variables override them.
func hostMirrors(ctx context.Context, main, security string) (mirrors, error) {
	m := mirrors{Main: main, Security: security}
	if m.Main != "" && m.Security != "" {
		return m, nil
	}
	out, err := exec.CommandContext(ctx, "apt-get", "indextargets", "--format", "$(REPO_URI)").Output()
	if err != nil {
		return m, fmt.Errorf("reading the host's apt sources (apt-get indextargets): %v", err)
	}
	for _, uri := range strings.Fields(string(out)) {
		uri = strings.TrimSuffix(uri, "/")
		switch {
		case m.Main == "" && strings.HasSuffix(uri, "/debian"):
			m.Main = uri
		case m.Security == "" && strings.HasSuffix(uri, "/debian-security"):
			m.Security = uri
		}
	}
	if m.Main == "" || m.Security == "" {
		return m, fmt.Errorf("no Debian archive (…/debian and …/debian-security) in the host's apt sources: pass -mirror and -security-mirror")
	}
	return m, nil
}
