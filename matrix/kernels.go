package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// flavour is the Debian kernel flavour the matrix boots: the cloud kernels
// have ext4, fanotify, devtmpfs and the serial console built in.
const flavour = "cloud-amd64"

// kernelSpec says where one column of the matrix comes from in Debian's
// archive.
type kernelSpec struct {
	// Name is the column's short name and the -kernels flag's value.
	Name string
	// Release is the Debian release whose suites are searched.
	Release string
	// DefaultRelease, if set, is the suite apt prefers (e.g. backports).
	DefaultRelease string
	// Metas are the meta packages tried in order; the first whose image
	// is of Series wins.
	Metas []string
	// Series is the version prefix the kernel must have: "6.1" accepts
	// 6.1.x, "7" accepts any 7.x.
	Series string
}

// kernelSpecs are the matrix's kernels, oldest first. When no meta package
// points at a kernel of the series (trixie-backports' linux-image-cloud-amd64
// has moved on from 6.18 to 7.x), the newest versioned image package of the
// series in the release's suites is used.
var kernelSpecs = []kernelSpec{
	{Name: "6.1", Release: "bookworm", Metas: []string{"linux-image-" + flavour}, Series: "6.1"},
	{Name: "6.12", Release: "bookworm", Metas: []string{"linux-image-6.12-" + flavour}, Series: "6.12"},
	{Name: "6.18", Release: "trixie", DefaultRelease: "trixie-backports",
		Metas: []string{"linux-image-6.18-" + flavour, "linux-image-" + flavour}, Series: "6.18"},
	{Name: "7.x", Release: "trixie", DefaultRelease: "trixie-backports", Metas: []string{"linux-image-" + flavour}, Series: "7"},
}

// kernel is a resolved kernel: the packages that hold it and, once prepared,
// the files the guest boots with.
type kernel struct {
	Spec kernelSpec
	// Via says how it was found: the meta package, or a note that the
	// newest versioned package of the series was taken.
	Via string
	// Image is the linux-image-<ABI> package and its Debian version.
	Image *debPackage
	// Packages are the image package and the linux-binary/linux-modules
	// packages it depends on.
	Packages []*debPackage
	// ABI is the kernel release (uname -r), e.g. 6.1.0-56-cloud-amd64.
	ABI string
	// Vmlinuz and Modules are the cached kernel image and the cpio piece
	// with the guest modules (filled in by prepareKernel).
	Vmlinuz string
	Modules string
}

// Version is the kernel's Debian package version, e.g. 6.1.192-2.
func (k *kernel) Version() string { return k.Image.Version }

// Upstream is the upstream Linux version, e.g. 6.1.192.
func (k *kernel) Upstream() string { return upstreamVersion(k.Image.Version) }

// upstreamVersion strips the epoch and Debian revision from a kernel
// package version: "7.3.4-1~bpo13+1" → "7.3.4".
func upstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	v, _, _ = strings.Cut(v, "-")
	v, _, _ = strings.Cut(v, "+")
	v, _, _ = strings.Cut(v, "~")
	return v
}

// inSeries reports whether upstream version v belongs to series s ("6.1"
// holds 6.1 and 6.1.x, not 6.12).
func inSeries(v, s string) bool { return v == s || strings.HasPrefix(v, s+".") }

// compareVersions compares dotted numeric versions: "6.1.192" < "6.15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// resolveKernel finds the newest kernel of spec: through its meta packages'
// dependencies, or else the newest versioned image package of the series.
func resolveKernel(ctx context.Context, repo *aptRepo, spec kernelSpec) (*kernel, error) {
	for _, meta := range spec.Metas {
		k, err := resolveMeta(ctx, repo, spec, meta)
		if errors.Is(err, errNoPackage) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k != nil {
			return k, nil
		}
	}
	return resolveNewestVersioned(ctx, repo, spec)
}

// resolveMeta follows meta's dependency to its linux-image-<ABI> package.
// It returns nil when that image is not of spec's series.
func resolveMeta(ctx context.Context, repo *aptRepo, spec kernelSpec, meta string) (*kernel, error) {
	m, err := repo.show(ctx, meta, spec.DefaultRelease)
	if err != nil {
		return nil, err
	}
	for _, dep := range m.Depends {
		if !versionedImage.MatchString(dep.Name) {
			continue
		}
		img, err := repo.show(ctx, dep.String(), spec.DefaultRelease)
		if err != nil {
			return nil, err
		}
		if !inSeries(upstreamVersion(img.Version), spec.Series) {
			logf("resolve %s: %s %s depends on %s %s, not a %s kernel", spec.Name, meta, m.Version, img.Name, img.Version, spec.Series)
			return nil, nil
		}
		return newKernel(ctx, repo, spec, img, fmt.Sprintf("%s %s", meta, m.Version))
	}
	return nil, fmt.Errorf("meta package %s %s depends on no linux-image-<version> package (%v)", meta, m.Version, m.Depends)
}

// versionedImage matches an ABI-specific image package, as opposed to a meta
// package: linux-image-6.1.0-56-cloud-amd64, linux-image-7.3.4+deb13-cloud-amd64.
var versionedImage = regexp.MustCompile(`^linux-image-[0-9][^ ]*-` + regexp.QuoteMeta(flavour) + `$`)

// resolveNewestVersioned picks the newest versioned image package of spec's
// series, for a series no meta package points at any more.
func resolveNewestVersioned(ctx context.Context, repo *aptRepo, spec kernelSpec) (*kernel, error) {
	names, err := repo.packageNames(ctx, "linux-image-"+spec.Series+".")
	if err != nil {
		return nil, err
	}
	var best *debPackage
	for _, name := range names {
		if !versionedImage.MatchString(name) {
			continue
		}
		p, err := repo.show(ctx, name, spec.DefaultRelease)
		if err != nil || !inSeries(upstreamVersion(p.Version), spec.Series) {
			continue
		}
		if best == nil || versionGreater(ctx, p.Version, best.Version) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no %s kernel in %s: neither a meta package (%s) nor a linux-image-%s.*-%s package",
			spec.Series, repo.Release, strings.Join(spec.Metas, ", "), spec.Series, flavour)
	}
	return newKernel(ctx, repo, spec, best, "newest linux-image-"+spec.Series+".*-"+flavour+" (no meta package points at "+spec.Series+")")
}

// newKernel completes a kernel from its image package: the ABI, and the
// linux-binary/linux-modules packages that newer kernels split off.
func newKernel(ctx context.Context, repo *aptRepo, spec kernelSpec, img *debPackage, via string) (*kernel, error) {
	k := &kernel{Spec: spec, Via: via, Image: img, ABI: strings.TrimPrefix(img.Name, "linux-image-")}
	k.Packages = append(k.Packages, img)
	for _, dep := range img.Depends {
		if dep.Name == "linux-binary-"+k.ABI || dep.Name == "linux-modules-"+k.ABI {
			p, err := repo.show(ctx, dep.String(), spec.DefaultRelease)
			if err != nil {
				return nil, err
			}
			k.Packages = append(k.Packages, p)
		}
	}
	return k, nil
}
