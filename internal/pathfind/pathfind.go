// Package pathfind finds the path of an inode a file system reported an
// error about, without touching the mounted file system.
//
// The obvious way, opening the inode by its file handle
// (open_by_handle_at(2)), makes the kernel load the inode; when the inode is
// the corrupted thing, loading it fails, and ext4 records that failure as one
// more error of its own (`ext4_nfs_get_inode ... bogus i_mode`), replacing
// the file system's recorded last error. A monitor must not change what it
// watches, so pathfind never goes through the mounted file system: for ext4
// it reads the inode and the directory tree from the block device,
// read-only, with `debugfs -c -R "stat <INODE>"` and `"ncheck INODE"`
// (catastrophic mode: the device is opened read-only and the bitmaps are
// not even read), bounded in time and
// output, at idle I/O priority, one lookup at a time, in a goroutine of its
// own: the event that asked for the path is delivered without waiting, and
// the path follows when it is found (Finder.Found).
//
// For XFS it reads parent pointers (a format option since Linux 6.12 and
// xfsprogs 6.10: mkfs.xfs -n parent=1) from the block device with
// `xfs_db -r`, the same way: each inode names its directories and its names
// in them, from the reported inode up to the root directory (see findXFS).
// An XFS file system without parent pointers gets no path
// (ErrNoParentPointers): finding one would mean reading every directory,
// and XFS_IOC_GETPARENTS_BY_HANDLE loads the inode in the kernel like
// open_by_handle_at. btrfs reports no inode in its errors.
package pathfind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/trust"
)

// Defaults for a Finder.
const (
	// DefaultTimeout bounds one debugfs or xfs_db run.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxOutput caps what one lookup may print; more is an error.
	DefaultMaxOutput = 1 << 20
	// DefaultQueue is how many lookups may wait; more are refused.
	DefaultQueue = 64
	// maxCache bounds the remembered results.
	maxCache = 4096
)

// Request names an inode to find, and the file system it is on.
type Request struct {
	// FSKey names the file system (its fsid); results are remembered by
	// it, the inode and the generation.
	FSKey string
	// FSType is the file system type; only ext4 (and ext2/ext3) and xfs
	// are looked up.
	FSType string
	// UUID and Label identify the file system to whoever gets the result.
	UUID, Label string
	// Device is the device node of the file system, e.g. "/dev/sda1".
	Device string
	// Major and Minor are the file system's device number: Device is used
	// only if it is the block device with this number.
	Major, Minor uint32
	// Mounts are where the file system is mounted: each mount's point and
	// the directory of the file system it shows (its root, "/" for a
	// whole file system mount). A path found on the device is shown under
	// the first mount that shows it.
	Mounts []Mount
	// Inode and Generation identify the inode.
	Inode      uint64
	Generation uint32
}

// Mount is one mount of a file system: Point shows the file system's
// directory Root.
type Mount struct {
	Point, Root string
}

// Result is the outcome of a lookup.
type Result struct {
	Request
	// Path is the inode's path, under one of the mounts.
	Path string
	// Names is how many names (hard links) the inode has in the device's
	// directory tree; Path is the first one found.
	Names int
	// Err says why no path was found.
	Err error
	// Took is how long the lookup took.
	Took time.Duration
}

// ErrUnsupported is returned for file systems pathfind does not look up.
var ErrUnsupported = errors.New("paths are looked up only on ext4 and XFS (read-only from the device); " +
	"fshealth never opens a reported inode, as loading a corrupted inode raises a new file system error")

// ErrBusy is returned when too many lookups wait.
var ErrBusy = errors.New("too many path lookups waiting; this one was not made")

// Finder looks up paths one at a time in a goroutine of its own.
type Finder struct {
	// Found is called, from the Finder's goroutine, with the result of
	// every lookup Lookup queued.
	Found func(Result)
	// Timeout bounds one debugfs or xfs_db run; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxOutput caps the bytes one run of debugfs or xfs_db may print;
	// DefaultMaxOutput if zero.
	MaxOutput int
	// Debugfs is the debugfs program; looked up in $PATH and the sbin
	// directories if empty.
	Debugfs string
	// XFSDB is the xfs_db command, its program and any arguments to go
	// before xfs_db's own (tests run a newer xfs_db through its own
	// dynamic loader); xfs_db is looked up in the sbin directories and
	// $PATH if empty. The program is refused as Debugfs is.
	XFSDB []string

	once    sync.Once
	mu      sync.Mutex
	queue   chan Request
	pending map[key]bool
	cache   map[key]Result
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

type key struct {
	fs  string
	ino uint64
	gen uint32
}

func keyOf(r *Request) key { return key{r.FSKey, r.Inode, r.Generation} }

// Supported reports whether paths on a file system of type fstype are
// looked up.
func Supported(fstype string) bool {
	return fstype == "ext4" || fstype == "ext3" || fstype == "ext2" || fstype == "xfs"
}

func (f *Finder) start() {
	f.once.Do(func() {
		f.queue = make(chan Request, DefaultQueue)
		f.pending = map[key]bool{}
		f.cache = map[key]Result{}
		f.ctx, f.cancel = context.WithCancel(context.Background())
		f.done = make(chan struct{})
		go f.run()
	})
}

// Lookup returns what is known of the inode's path now: the path if an
// earlier lookup found it, else whether a lookup is (now) pending, else why
// there is no path (an earlier lookup's error, ErrUnsupported, ErrBusy).
// It never blocks; the result of a queued lookup goes to Found.
func (f *Finder) Lookup(r Request) (p string, pending bool, err error) {
	if !Supported(r.FSType) {
		return "", false, ErrUnsupported
	}
	f.start()
	k := keyOf(&r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if res, ok := f.cache[k]; ok {
		return res.Path, false, res.Err
	}
	if f.pending[k] {
		return "", true, nil
	}
	if f.closed {
		return "", false, errors.New("path lookups stopped")
	}
	select {
	case f.queue <- r:
		f.pending[k] = true
		return "", true, nil
	default:
		return "", false, ErrBusy
	}
}

// Close stops the Finder: a running lookup is killed, queued ones are
// dropped, and Close returns when the goroutine has ended.
func (f *Finder) Close() {
	f.start()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.done
		return
	}
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	close(f.queue)
	<-f.done
}

func (f *Finder) run() {
	defer close(f.done)
	for r := range f.queue {
		if f.ctx.Err() != nil {
			continue
		}
		start := time.Now()
		res := Result{Request: r}
		res.Path, res.Names, res.Err = f.find(f.ctx, &r)
		res.Took = time.Since(start)
		if f.ctx.Err() != nil {
			continue
		}
		k := keyOf(&r)
		f.mu.Lock()
		delete(f.pending, k)
		if len(f.cache) >= maxCache {
			for old := range f.cache {
				delete(f.cache, old)
				if len(f.cache) < maxCache/2 {
					break
				}
			}
		}
		f.cache[k] = res
		f.mu.Unlock()
		if f.Found != nil {
			f.Found(res)
		}
	}
}

// find looks the inode up on the device and maps the path to a mount.
func (f *Finder) find(ctx context.Context, r *Request) (string, int, error) {
	if r.FSType == "xfs" {
		return f.findXFS(ctx, r)
	}
	dev, err := deviceNode(r.Device, r.Major, r.Minor)
	if err != nil {
		return "", 0, err
	}
	// The inode as the device has it: its generation tells whether it is
	// still the file the error was about (not deleted and reused), its
	// link count how many names it can have.
	links, gen, err := f.inode(ctx, dev, r.Inode)
	if err != nil {
		return "", 0, err
	}
	if r.Generation != 0 && gen != r.Generation {
		return "", 0, fmt.Errorf("inode %d on %s has generation %d, not %d: the file was deleted and its inode reused", r.Inode, dev, gen, r.Generation)
	}
	names, err := f.ncheck(ctx, dev, r.Inode)
	if err != nil {
		return "", 0, err
	}
	if len(names) == 0 {
		return "", 0, fmt.Errorf("no directory entry on %s names inode %d (deleted, or its entry not yet written to the device)", dev, r.Inode)
	}
	// A name holding a newline followed by "INODE\t" could forge a record
	// of ncheck's output; a file has at most as many names as links, so
	// more records than links are not to be trusted.
	if len(names) > max(links, 1) {
		return "", 0, fmt.Errorf("debugfs printed %d names for inode %d, which has %d link(s): a file name holding a newline makes its output ambiguous", len(names), r.Inode, links)
	}
	for _, n := range names {
		if p, ok := underMount(n, r.Mounts); ok {
			return p, len(names), nil
		}
	}
	return "", len(names), fmt.Errorf("inode %d is %q in the file system, which none of its mounts shows", r.Inode, names[0])
}

// underMount returns p (a path from the file system's root) as seen
// through the first mount that shows it.
func underMount(p string, ms []Mount) (string, bool) {
	for _, m := range ms {
		root := path.Clean("/" + m.Root)
		switch {
		case root == "/":
			return path.Join(m.Point, p), true
		case p == root:
			return m.Point, true
		case strings.HasPrefix(p, root+"/"):
			return path.Join(m.Point, p[len(root):]), true
		}
	}
	return "", false
}

// deviceNode returns a device node for the block device major:minor:
// device if it is one, else /dev/block/MAJOR:MINOR.
func deviceNode(device string, major, minor uint32) (string, error) {
	want := unix.Mkdev(major, minor)
	var why []string
	for _, p := range []string{device, fmt.Sprintf("/dev/block/%d:%d", major, minor)} {
		if p == "" || !strings.HasPrefix(p, "/") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
			why = append(why, fmt.Sprintf("%s is not block device %d:%d", p, major, minor))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no device node for block device %d:%d to read the path from (%s)", major, minor, strings.Join(why, "; "))
}

// debugfs returns the debugfs program to run: Finder.Debugfs, else the
// first found in the sbin directories, else in $PATH. fshealth runs it as
// root, so a program someone else could replace is refused (see package
// trust).
func (f *Finder) debugfs() (string, error) {
	if f.Debugfs != "" {
		return trustedProgram("debugfs", f.Debugfs)
	}
	return findProgram("debugfs", "e2fsprogs")
}

// findProgram returns the first program name in the sbin directories, else
// in $PATH, once trust.CheckProgram has found that only root can replace it.
// pkg is the Debian package that has it, for the error.
func findProgram(name, pkg string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		c := d + "/" + name
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return trustedProgram(name, c)
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in /usr/sbin, /sbin, /usr/local/sbin or $PATH (Debian package %s)", name, pkg)
	}
	return trustedProgram(name, p)
}

// trustedProgram returns p, the program name, if only root can replace it
// (package trust).
func trustedProgram(name, p string) (string, error) {
	if err := trust.CheckProgram(p); err != nil {
		return "", fmt.Errorf("not running %s: %w", name, err)
	}
	return p, nil
}

// runDebugfs runs `debugfs -c -R request dev` and returns its standard output.
// debugfs exits 0 even when a request fails: what it prints on standard
// error besides its version banner and the catastrophic mode notice is the
// failure.
func (f *Finder) runDebugfs(ctx context.Context, dev, request string) ([]byte, error) {
	prog, err := f.debugfs()
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBUGFS_PAGER=__none__", "PAGER=__none__"}
	return f.runBounded(ctx, fmt.Sprintf("debugfs -c -R %q %s", request, dev), []string{prog, "-c", "-R", request, dev}, env, problems)
}

// runBounded runs argv with env for one lookup step, bounded: killed after
// Finder.Timeout, its standard output capped at Finder.MaxOutput, at idle
// I/O priority and the lowest CPU priority, and killed with fshealth.
// failure turns what the program wrote on standard error into "" (nothing
// wrong) or ": the problem", because these programs exit 0 when a request
// fails. what names the step in errors.
func (f *Finder) runBounded(ctx context.Context, what string, argv, env []string, failure func(stderr []byte) string) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := f.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	// A lookup does not outlive fshealth.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout := &capped{limit: limit}
	stderr := &capped{limit: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%s: gave up after %v", what, timeout)
		}
		return nil, fmt.Errorf("running %s: %w", argv[0], err)
	}
	// Idle I/O priority and the lowest CPU priority: a lookup reads the
	// whole inode table of a file system and must not slow its users.
	unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(cmd.Process.Pid), ioprioClassIdle<<ioprioClassShift)
	unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, 19)
	err := cmd.Wait()
	problem := failure(stderr.Bytes())
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("%s: gave up after %v", what, timeout)
	case stdout.over:
		return nil, fmt.Errorf("%s: printed more than %d bytes", what, limit)
	case err != nil:
		return nil, fmt.Errorf("%s: %w%s", what, err, problem)
	case problem != "":
		return nil, fmt.Errorf("%s failed%s", what, problem)
	}
	return stdout.Bytes(), nil
}

// ioprio_set(2) arguments.
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// problems returns debugfs's standard error without its banner and notices,
// quoted, as ": ..." or "".
func problems(stderr []byte) string {
	var out []string
	for _, l := range strings.Split(string(stderr), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "debugfs ") && !strings.Contains(l, ":") || strings.Contains(l, "catastrophic mode") {
			continue
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strconv.Quote(strings.Join(out, "; "))
}

// ncheck returns the names of inode ino, as paths from the file system's
// root.
func (f *Finder) ncheck(ctx context.Context, dev string, ino uint64) ([]string, error) {
	out, err := f.runDebugfs(ctx, dev, "ncheck "+strconv.FormatUint(ino, 10))
	if err != nil {
		return nil, err
	}
	return ParseNcheck(out, ino)
}

// ParseNcheck parses the output of debugfs's `ncheck INODE` for one inode:
// a header line, then one record per name, "INODE\tPATH\n", the path
// printed as it is (a name may hold newlines: a record runs until the next
// line that starts with "INODE\t"). debugfs prints the root directory's
// children as "//name"; paths are returned with one leading slash.
func ParseNcheck(out []byte, ino uint64) ([]string, error) {
	header, rest, ok := bytes.Cut(out, []byte("\n"))
	if !ok && len(out) == 0 {
		return nil, errors.New("debugfs ncheck printed nothing")
	}
	if string(header) != "Inode\tPathname" {
		return nil, fmt.Errorf("debugfs ncheck printed %q, not its header", truncate(header))
	}
	prefix := []byte(strconv.FormatUint(ino, 10) + "\t")
	if len(rest) == 0 {
		return nil, nil
	}
	if !bytes.HasPrefix(rest, prefix) || rest[len(rest)-1] != '\n' {
		return nil, fmt.Errorf("debugfs ncheck printed %q, not records of inode %d", truncate(rest), ino)
	}
	rest = rest[:len(rest)-1]
	var names []string
	for _, rec := range bytes.Split(rest, append([]byte("\n"), prefix...)) {
		p := string(bytes.TrimPrefix(rec, prefix))
		if strings.HasPrefix(p, "//") {
			p = p[1:]
		}
		if !strings.HasPrefix(p, "/") {
			// "<DIR>/name": the directory's own path was not found.
			return nil, fmt.Errorf("debugfs ncheck found inode %d as %q, in a directory it could not place", ino, truncate([]byte(p)))
		}
		names = append(names, p)
	}
	return names, nil
}

// inode returns the link count and generation debugfs reads for inode
// ino.
func (f *Finder) inode(ctx context.Context, dev string, ino uint64) (links int, gen uint32, err error) {
	out, err := f.runDebugfs(ctx, dev, "stat <"+strconv.FormatUint(ino, 10)+">")
	if err != nil {
		return 0, 0, err
	}
	return ParseStat(out, ino)
}

// ParseStat reads the link count and generation from debugfs's
// `stat <INODE>` output ("Generation: 7    Version: ...", "Links: 2 ...").
func ParseStat(out []byte, ino uint64) (links int, gen uint32, err error) {
	haveLinks, haveGen := false, false
	for _, l := range strings.Split(string(out), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 2 {
			continue
		}
		switch fs[0] {
		case "Links:":
			n, err := strconv.Atoi(fs[1])
			if err != nil || n < 0 {
				return 0, 0, fmt.Errorf("debugfs stat <%d>: bad link count %q", ino, fs[1])
			}
			links, haveLinks = n, true
		case "Generation:":
			g, err := strconv.ParseUint(fs[1], 10, 32)
			if err != nil {
				return 0, 0, fmt.Errorf("debugfs stat <%d>: bad generation %q", ino, fs[1])
			}
			gen, haveGen = uint32(g), true
		}
	}
	if !haveLinks || !haveGen {
		return 0, 0, fmt.Errorf("debugfs stat <%d> printed no link count or generation: %q", ino, truncate(out))
	}
	return links, gen, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// capped is a buffer that keeps at most limit bytes and remembers whether
// more came; it never fails a write, so the program is not killed by a
// broken pipe before it can be reported. (It has no ReadFrom, so io.Copy
// goes through Write.)
type capped struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.limit - c.buf.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Bytes returns what was kept.
func (c *capped) Bytes() []byte { return c.buf.Bytes() }
