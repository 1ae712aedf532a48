// Command matrix is fshealth's kernel matrix. It fetches Debian kernels
// through Debian's package registry (newest 6.1, 6.12, 6.18 and 7.x), boots
// each under qemu with software emulation and an initramfs holding static
// test binaries, the fshealth binary and the programs the tests call, runs
// the focused in-guest test set as root, and prints a kernel × test table.
// It exits with status 1 when a test fails and 2 when the matrix cannot run.
//
// Usage, from the module root, as root:
//
//	go run ./matrix [-kernels 6.1,7.x] [-markdown FILE] [-cache DIR]
//
// See matrix/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	// KernelsOnly: download and prepare the kernels, print each one's
	// name and vmlinuz path, and boot nothing (other tests' guests).
	KernelsOnly bool
	CacheDir    string
	Kernels     []kernelSpec
	Tests       []guestTest
	Refresh     time.Duration
	Parallel    int
	Markdown    string
	Readme      string
	Mirror      string
	Security    string
	Guest       guestConfig
	TestTimeout time.Duration
}

// main runs the matrix with the command-line flags and exits with its
// status.
func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the matrix and returns the exit status.
func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.KernelsOnly {
		return printKernels(ctx, o)
	}
	m, err := runMatrix(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
		return 2
	}
	fmt.Print(m.Failures())
	fmt.Print("\n" + m.Text())
	if o.Markdown != "" {
		if err := os.WriteFile(o.Markdown, []byte(m.Markdown()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
			return 2
		}
	}
	if o.Readme != "" {
		if err := spliceMarkdown(o.Readme, m.Markdown()); err != nil {
			fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
			return 2
		}
	}
	fmt.Println(m.Summary())
	if m.Failed() {
		return 1
	}
	return 0
}

// parseFlags reads the flags; the cache directory defaults to
// $FSHEALTH_MATRIX_CACHE, then /var/cache/fshealth-matrix.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	cacheDir := os.Getenv("FSHEALTH_MATRIX_CACHE")
	if cacheDir == "" {
		cacheDir = defaultCacheDir
	}
	fs.StringVar(&o.CacheDir, "cache", cacheDir, "cache directory for package lists, .deb files, kernels and initramfs pieces (env FSHEALTH_MATRIX_CACHE)")
	kernels := fs.String("kernels", "", "comma-separated kernels to run (default all: "+specNames()+")")
	runPattern := fs.String("run", "", "run only the in-guest tests whose \"package TestName\" matches this regular expression")
	fs.DurationVar(&o.Refresh, "refresh", 12*time.Hour, "download the package lists again when they are older than this")
	fs.IntVar(&o.Parallel, "parallel", runtime.NumCPU(), "guests booted at the same time (each uses one CPU)")
	fs.StringVar(&o.Markdown, "markdown", "", "also write the table as Markdown to this file")
	fs.StringVar(&o.Readme, "readme", "", "also put the Markdown table into this file, between the lines "+markerBegin+" and "+markerEnd)
	fs.StringVar(&o.Mirror, "mirror", os.Getenv("FSHEALTH_MATRIX_MIRROR"), "Debian archive URI (default: the host's apt sources)")
	fs.StringVar(&o.Security, "security-mirror", os.Getenv("FSHEALTH_MATRIX_SECURITY_MIRROR"), "Debian security archive URI (default: the host's apt sources)")
	fs.DurationVar(&o.Guest.Timeout, "timeout", 15*time.Minute, "time limit of one guest, boot to power-off")
	fs.IntVar(&o.Guest.MemoryMiB, "memory", 2048, "guest memory in MiB")
	fs.BoolVar(&o.KernelsOnly, "kernels-only", false, "only download and prepare the kernels, and print \"NAME VMLINUZ\" for each")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.Kernels, err = selectKernels(*kernels); err != nil {
		return nil, err
	}
	if o.Tests, err = selectTests(*runPattern); err != nil {
		return nil, err
	}
	o.Parallel = max(1, o.Parallel)
	o.TestTimeout = o.Guest.Timeout * 2 / 3
	return o, nil
}

// specNames lists the kernel names.
func specNames() string {
	var names []string
	for _, s := range kernelSpecs {
		names = append(names, s.Name)
	}
	return strings.Join(names, ",")
}

// selectKernels returns the kernel specs named in list (all if empty).
func selectKernels(list string) ([]kernelSpec, error) {
	if list == "" {
		return kernelSpecs, nil
	}
	var specs []kernelSpec
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, s := range kernelSpecs {
			if s.Name == strings.TrimSpace(name) {
				specs, found = append(specs, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown kernel %q (have %s)", name, specNames())
		}
	}
	return specs, nil
}

// selectTests returns the tests of the in-guest set matching pattern (all
// if empty), after checking that the set is well formed.
func selectTests(pattern string) ([]guestTest, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("-run: %w", err)
	}
	var tests []guestTest
	for _, t := range guestTests {
		if err := checkTest(t); err != nil {
			return nil, fmt.Errorf("matrix/testset.go: %s %s: %w", t.Pkg, t.Name, err)
		}
		if re.MatchString(strings.TrimPrefix(t.Pkg, "./") + " " + t.Name) {
			tests = append(tests, t)
		}
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("-run %q matches no test of the in-guest set", pattern)
	}
	return tests, nil
}

// checkTest checks one entry of the in-guest set.
func checkTest(t guestTest) error {
	if !validTestName.MatchString(t.Name) || !strings.HasPrefix(t.Pkg, "./") {
		return errors.New("want a ./package and a Test function name")
	}
	for _, k := range t.Known {
		if _, err := regexp.Compile(k.Match); err != nil || k.Match == "" || k.Reason == "" {
			return fmt.Errorf("known failure needs a valid Match and a Reason (%v)", err)
		}
	}
	return nil
}

// hostPrograms are the programs the runner itself needs on the host (the
// guest tools are checked when the initramfs is built).
var hostPrograms = []hostTool{
	{Name: "qemu-system-x86_64", Package: "qemu-system-x86"},
	{Name: "xz", Package: "xz-utils"},
	{Name: "dpkg-deb", Package: "dpkg"},
	{Name: "apt-get", Package: "apt"},
	{Name: "ldd", Package: "libc-bin"},
	{Name: "go", Package: "the Go toolchain"},
}

// checkHost fails with the Debian package to install when a program the
// runner needs is missing, or when it is not root.
func checkHost() error {
	if os.Geteuid() != 0 {
		return errors.New("the kernel matrix must run as root (it uses apt-get and the cache in /var/cache)")
	}
	for _, t := range hostPrograms {
		if _, err := exec.LookPath(t.Name); err != nil {
			return missingTool(t, err)
		}
	}
	if !fileExists(debianKeyring) {
		return missingTool(hostTool{Name: debianKeyring, Package: "debian-archive-keyring"}, os.ErrNotExist)
	}
	if _, err := staticBusybox(); err != nil {
		return err
	}
	return nil
}

// printKernels prepares the kernels (downloads cached as for a run) and
// prints "NAME VMLINUZ" for each.
func printKernels(ctx context.Context, o *options) int {
	c, err := openCache(o.CacheDir)
	if err == nil {
		defer c.Close()
		var kernels []*kernel
		if kernels, err = fetchKernels(ctx, c, o, map[string]bool{}); err == nil {
			for _, k := range kernels {
				fmt.Printf("%s %s\n", k.Spec.Name, k.Vmlinuz)
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
	return 2
}

// runMatrix resolves, fetches and prepares the kernels, builds the guest
// payload, boots the guests and evaluates their logs.
func runMatrix(ctx context.Context, o *options) (*matrixReport, error) {
	start := time.Now()
	if err := checkHost(); err != nil {
		return nil, err
	}
	repoDir, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	work, err := os.MkdirTemp("", "fshealth-matrix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	o.Guest.LogDir = c.Path("logs")
	if err := os.MkdirAll(o.Guest.LogDir, 0o755); err != nil {
		return nil, err
	}

	r := &runner{used: map[string]bool{}}
	var kernels []*kernel
	var pieces []string
	err = r.timed("kernels (resolve, download, extract)", func() (err error) {
		kernels, err = fetchKernels(ctx, c, o, r.used)
		return err
	})
	if err == nil {
		err = r.timed("build", func() (err error) {
			pieces, err = buildPieces(ctx, c, repoDir, work, o, r.used)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	var runs []*guestRun
	r.timed("guests", func() error {
		runs = runGuests(ctx, o, work, kernels, pieces)
		return ctx.Err()
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(o.Kernels) == len(kernelSpecs) {
		c.Prune(r.used)
	}
	m := newReport(kernels, o.Tests, runs)
	m.Phases, m.Total = r.phases, time.Since(start)
	return m, nil
}

// runner holds the state of one run: the cache paths it used (the rest is
// pruned after a full run) and how long each phase took.
type runner struct {
	used   map[string]bool
	phases []phase
}

// timed runs f as the phase name and records its duration.
func (r *runner) timed(name string, f func() error) error {
	t := time.Now()
	err := f()
	r.phases = append(r.phases, phase{name, time.Since(t)})
	return err
}

// moduleRoot returns the fshealth module's directory: the current directory
// or one above it that holds go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("run the kernel matrix inside the fshealth module (go env GOMOD found no go.mod)")
	}
	return strings.TrimSuffix(mod, "/go.mod"), nil
}

// fetchKernels resolves every kernel of the run through its apt release and
// prepares its boot files.
func fetchKernels(ctx context.Context, c *cache, o *options, used map[string]bool) ([]*kernel, error) {
	m, err := hostMirrors(ctx, o.Mirror, o.Security)
	if err != nil {
		return nil, err
	}
	repos := map[string]*aptRepo{}
	var kernels []*kernel
	for _, spec := range o.Kernels {
		repo, ok := repos[spec.Release]
		if !ok {
			repo = newAptRepo(c.Dir, spec.Release)
			if err := repo.update(ctx, m, o.Refresh); err != nil {
				return nil, err
			}
			repos[spec.Release] = repo
			used[repo.dir] = true
		}
		k, err := resolveKernel(ctx, repo, spec)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", spec.Name, err)
		}
		logf("kernel %s: %s %s via %s", spec.Name, k.Image.Name, k.Version(), k.Via)
		if err := prepareKernel(ctx, c, repo, k, used); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", spec.Name, err)
		}
		kernels = append(kernels, k)
	}
	return kernels, nil
}

// buildPieces returns the initramfs pieces every guest shares: the cached
// base piece and this run's payload.
func buildPieces(ctx context.Context, c *cache, repoDir, work string, o *options, used map[string]bool) ([]string, error) {
	base, err := basePiece(c, used)
	if err != nil {
		return nil, err
	}
	logf("building the static fshealth and test binaries")
	payload, err := payloadPiece(ctx, repoDir, work, planPackages(o.Tests), o.TestTimeout)
	if err != nil {
		return nil, err
	}
	return []string{base, payload}, nil
}

// runGuests boots the guests, o.Parallel at a time, and returns their runs
// in kernel order.
func runGuests(ctx context.Context, o *options, work string, kernels []*kernel, pieces []string) []*guestRun {
	runs := make([]*guestRun, len(kernels))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, k := range kernels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			logf("kernel %s: booting Linux %s (%s)", k.Spec.Name, k.Version(), k.ABI)
			runs[i] = runGuest(ctx, o.Guest, work, k, pieces)
			logf("kernel %s: guest finished in %s", k.Spec.Name, runs[i].Wall.Round(time.Second))
		}()
	}
	wg.Wait()
	return runs
}

// logMu keeps progress lines of concurrent guests whole.
var logMu sync.Mutex

// logf prints a progress line on standard error.
func logf(format string, args ...any) {
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(os.Stderr, "matrix: "+format+"\n", args...)
}
