package pathfind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// XFS path lookups read parent pointers from the block device with
// `xfs_db -r`: each inode, from the reported one up to the root directory,
// names its parent directories (inode, generation) and its names in them
// in extended attributes of its own. xfs_db never goes through the
// mounted file system; the kernel loads no inode.

// xfsIncompatParent is XFS_SB_FEAT_INCOMPAT_PARENT, the superblock's
// parent pointer feature bit.
const xfsIncompatParent = 1 << 7

// maxXFSDepth bounds how many directories a lookup climbs: a path of
// PATH_MAX bytes has at most 2048 components of one byte and a slash.
const maxXFSDepth = 2048

// maxXFSNames bounds how many of the reported inode's names are tried
// until one is under a mount.
const maxXFSNames = 8

// ErrNoParentPointers is returned for an XFS file system made without
// parent pointers: nothing on the device names a file's directory short of
// reading every directory, which pathfind does not do on XFS.
var ErrNoParentPointers = errors.New("this XFS file system has no parent pointers (mkfs.xfs -n parent=1, " +
	"xfsprogs 6.10 and Linux 6.12 or later), from which fshealth reads paths; " +
	"fshealth never opens a reported inode, as loading a corrupted inode raises a new file system error")

// XFSParent is one parent pointer of an XFS inode: the inode is named
// Name in directory Inode (generation Generation).
type XFSParent struct {
	Inode      uint64
	Generation uint32
	Name       string
}

// XFSInode is what xfs_db prints of an XFS inode's core.
type XFSInode struct {
	Generation uint32
	Links      uint64
	// AttrLocal tells whether the extended attributes (and so the parent
	// pointers) are in the inode itself; HasAttrs whether there are any.
	AttrLocal, HasAttrs bool
}

// findXFS climbs the parent pointers from r.Inode to the root directory.
func (f *Finder) findXFS(ctx context.Context, r *Request) (string, int, error) {
	// The whole climb is bounded by one run's time.
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dev, err := deviceNode(r.Device, r.Major, r.Minor)
	if err != nil {
		return "", 0, err
	}
	out, err := f.runXFSDB(ctx, dev, "sb 0", "print rootino features_incompat")
	if err != nil {
		// An xfs_db older than the file system refuses its superblock.
		if verr := f.checkXFSDBVersion(ctx); verr != nil {
			return "", 0, fmt.Errorf("%w (%v)", verr, err)
		}
		return "", 0, err
	}
	root, incompat, err := ParseXFSSuper(out)
	if err != nil {
		return "", 0, err
	}
	if incompat&xfsIncompatParent == 0 {
		return "", 0, ErrNoParentPointers
	}
	if err := f.checkXFSDBVersion(ctx); err != nil {
		return "", 0, err
	}
	if r.Inode == root {
		if p, ok := underMount("/", r.Mounts); ok {
			return p, 1, nil
		}
		return "", 1, errors.New("the root directory of the file system, which none of its mounts shows")
	}
	in, parents, err := f.xfsInode(ctx, dev, r.Inode)
	if err != nil {
		return "", 0, err
	}
	if r.Generation != 0 && in.Generation != r.Generation {
		return "", 0, fmt.Errorf("inode %d on %s has generation %d, not %d: the file was deleted and its inode reused", r.Inode, dev, in.Generation, r.Generation)
	}
	if len(parents) == 0 {
		return "", 0, fmt.Errorf("no parent pointer on %s names inode %d (deleted, or not yet written to the device)", dev, r.Inode)
	}
	var first string
	for i, pp := range parents {
		if i == maxXFSNames {
			break
		}
		p, err := f.climbXFS(ctx, dev, root, r.Inode, pp)
		if err != nil {
			return "", len(parents), err
		}
		if first == "" {
			first = p
		}
		if mp, ok := underMount(p, r.Mounts); ok {
			return mp, len(parents), nil
		}
	}
	return "", len(parents), fmt.Errorf("inode %d is %q in the file system, which none of its mounts shows", r.Inode, first)
}

// climbXFS returns the path, from the file system's root, of the name pp
// gives inode ino, reading the parent pointers of each directory above.
func (f *Finder) climbXFS(ctx context.Context, dev string, root, ino uint64, pp XFSParent) (string, error) {
	parts := []string{pp.Name}
	seen := map[uint64]bool{ino: true}
	for pp.Inode != root {
		if len(parts) >= maxXFSDepth {
			return "", fmt.Errorf("inode %d on %s: more than %d directories above it", ino, dev, maxXFSDepth)
		}
		if seen[pp.Inode] {
			return "", fmt.Errorf("inode %d on %s: the parent pointers above it loop at directory inode %d", ino, dev, pp.Inode)
		}
		seen[pp.Inode] = true
		dir, parents, err := f.xfsInode(ctx, dev, pp.Inode)
		if err != nil {
			return "", err
		}
		if dir.Generation != pp.Generation {
			return "", fmt.Errorf("inode %d on %s: its parent pointer names directory inode %d generation %d, which has generation %d", ino, dev, pp.Inode, pp.Generation, dir.Generation)
		}
		// A directory has one name.
		if len(parents) != 1 {
			return "", fmt.Errorf("inode %d on %s: directory inode %d above it has %d parent pointers, not 1", ino, dev, pp.Inode, len(parents))
		}
		pp = parents[0]
		parts = append(parts, pp.Name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String(), nil
}

// xfsInode reads inode ino's core and its parent pointers.
func (f *Finder) xfsInode(ctx context.Context, dev string, ino uint64) (XFSInode, []XFSParent, error) {
	sel := "inode " + strconv.FormatUint(ino, 10)
	out, err := f.runXFSDB(ctx, dev, sel, "print core.gen core.nlinkv2 core.aformat core.forkoff")
	if err != nil {
		return XFSInode{}, nil, err
	}
	in, err := ParseXFSInode(out)
	if err != nil {
		return XFSInode{}, nil, fmt.Errorf("inode %d on %s: %w", ino, dev, err)
	}
	var parents []XFSParent
	switch {
	case !in.HasAttrs:
	case in.AttrLocal:
		// xfs_db 6.13's parent command lists no parent pointer kept in
		// the inode (seen): they are read from the attribute fork as it
		// prints it.
		out, err := f.runXFSDB(ctx, dev, sel, "print a.sfattr")
		if err != nil {
			return XFSInode{}, nil, err
		}
		parents, err = ParseXFSShortformParents(out)
		if err != nil {
			return XFSInode{}, nil, fmt.Errorf("inode %d on %s: %w", ino, dev, err)
		}
	default:
		out, err := f.runXFSDB(ctx, dev, sel, "parent")
		if err != nil {
			return XFSInode{}, nil, err
		}
		parents, err = ParseXFSParents(out)
		if err != nil {
			return XFSInode{}, nil, fmt.Errorf("inode %d on %s: %w", ino, dev, err)
		}
	}
	if in.Links > 0 && uint64(len(parents)) > in.Links {
		return XFSInode{}, nil, fmt.Errorf("inode %d on %s has %d parent pointers and %d link(s)", ino, dev, len(parents), in.Links)
	}
	return in, parents, nil
}

// xfsdb returns the xfs_db command to run: Finder.XFSDB, else the first
// xfs_db found in the sbin directories, else in $PATH. The program is
// refused if someone else than root could replace it (see package trust).
func (f *Finder) xfsdb() ([]string, error) {
	if len(f.XFSDB) > 0 {
		if _, err := trustedProgram("xfs_db", f.XFSDB[0]); err != nil {
			return nil, err
		}
		return f.XFSDB, nil
	}
	p, err := findProgram("xfs_db", "xfsprogs")
	if err != nil {
		return nil, err
	}
	return []string{p}, nil
}

// checkXFSDBVersion refuses an xfs_db older than 6.10, which knows no
// parent pointers.
func (f *Finder) checkXFSDBVersion(ctx context.Context) error {
	out, err := f.runXFSDBArgs(ctx, "xfs_db -V", "-V")
	if err != nil {
		return err
	}
	major, minor, err := ParseXFSDBVersion(out)
	if err != nil {
		return err
	}
	if major < 6 || major == 6 && minor < 10 {
		return fmt.Errorf("xfs_db %d.%d cannot read parent pointers: xfsprogs 6.10 or later is needed to find paths on XFS", major, minor)
	}
	return nil
}

// runXFSDB runs `xfs_db -r -c CMD... dev` and returns its standard output.
func (f *Finder) runXFSDB(ctx context.Context, dev string, cmds ...string) ([]byte, error) {
	args := []string{"-r"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	args = append(args, dev)
	return f.runXFSDBArgs(ctx, fmt.Sprintf("xfs_db -r -c %q %s", cmds, dev), args...)
}

// xfsVerifierRE matches what xfs_db prints on standard error when a
// structure it reads fails a check: that is expected of the corrupted
// inode, whose parent pointers are still read.
var xfsVerifierRE = regexp.MustCompile(`^Metadata (?:corruption|CRC error) detected (?:at|for) `)

// runXFSDBArgs runs xfs_db with args, bounded like debugfs. xfs_db exits 0
// even when a command fails (e.g. "bad inode number", after which it
// prints the fields of the inode it was at before): any line on standard
// error other than a verifier's report is a failure.
func (f *Finder) runXFSDBArgs(ctx context.Context, what string, args ...string) ([]byte, error) {
	prog, err := f.xfsdb()
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	return f.runBounded(ctx, what, append(append([]string{}, prog...), args...), env, func(stderr []byte) string {
		var bad []string
		for _, l := range strings.Split(string(stderr), "\n") {
			if l = strings.TrimSpace(l); l != "" && !xfsVerifierRE.MatchString(l) {
				bad = append(bad, l)
			}
		}
		if len(bad) == 0 {
			return ""
		}
		return ": " + strconv.Quote(strings.Join(bad, "; "))
	})
}

// xfsField splits a line "NAME = VALUE" of xfs_db's print command.
func xfsField(l string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(l, " = ")
	return name, value, ok && name != "" && !strings.Contains(name, " ")
}

// ParseXFSSuper reads the root directory's inode and the incompatible
// feature bits from xfs_db's `print rootino features_incompat`.
func ParseXFSSuper(out []byte) (root uint64, incompat uint64, err error) {
	haveRoot, haveIncompat := false, false
	for _, l := range strings.Split(string(out), "\n") {
		name, v, ok := xfsField(l)
		if !ok {
			continue
		}
		switch name {
		case "rootino":
			root, err = strconv.ParseUint(v, 10, 64)
			haveRoot = err == nil
		case "features_incompat":
			incompat, err = strconv.ParseUint(v, 0, 64)
			haveIncompat = err == nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("xfs_db printed a bad superblock field %q", truncate([]byte(l)))
		}
	}
	if !haveRoot || !haveIncompat {
		return 0, 0, fmt.Errorf("xfs_db printed no root inode or feature bits: %q", truncate(out))
	}
	return root, incompat, nil
}

// xfsdbVersionRE matches xfs_db -V's line.
var xfsdbVersionRE = regexp.MustCompile(`(?m)^xfs_db version (\d{1,4})\.(\d{1,4})(?:\.\d+)?\S*$`)

// ParseXFSDBVersion reads "xfs_db version 6.13.0".
func ParseXFSDBVersion(out []byte) (major, minor int, err error) {
	m := xfsdbVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("xfs_db -V printed %q, not its version", truncate(out))
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	return major, minor, nil
}

// ParseXFSInode reads xfs_db's `print core.gen core.nlinkv2 core.aformat
// core.forkoff`.
func ParseXFSInode(out []byte) (XFSInode, error) {
	var in XFSInode
	have := 0
	for _, l := range strings.Split(string(out), "\n") {
		name, v, ok := xfsField(l)
		if !ok {
			continue
		}
		var err error
		switch name {
		case "core.gen":
			var g uint64
			g, err = strconv.ParseUint(v, 10, 32)
			in.Generation = uint32(g)
		case "core.nlinkv2":
			in.Links, err = strconv.ParseUint(v, 10, 32)
		case "core.aformat":
			// "1 (local)", "2 (extents)", "3 (btree)".
			f, _, _ := strings.Cut(v, " ")
			var a uint64
			a, err = strconv.ParseUint(f, 10, 8)
			in.AttrLocal = a == 1
		case "core.forkoff":
			var o uint64
			o, err = strconv.ParseUint(v, 10, 8)
			in.HasAttrs = o != 0
		default:
			continue
		}
		if err != nil {
			return XFSInode{}, fmt.Errorf("xfs_db printed a bad inode field %q", truncate([]byte(l)))
		}
		have++
	}
	if have != 4 {
		return XFSInode{}, fmt.Errorf("xfs_db printed not the inode's generation, link count and attribute fork: %q", truncate(out))
	}
	return in, nil
}

// sfattrRE matches a field of a shortform attribute entry.
var sfattrRE = regexp.MustCompile(`^a\.sfattr\.list\[(\d{1,5})\]\.([a-z_.]+)$`)

// ParseXFSShortformParents reads the parent pointers from xfs_db's
// `print a.sfattr` of an inode whose attributes are in the inode: entries
// with "parent = 1" are parent pointers, their name the file's name (as
// xfs_db escapes it, see unescapeXFSDB), parent_dir its directory.
func ParseXFSShortformParents(out []byte) ([]XFSParent, error) {
	type entry struct {
		parent          bool
		namelen         int
		name            string
		haveName        bool
		ino             uint64
		gen             uint64
		haveIno, haveGn bool
	}
	var es []entry
	for _, l := range strings.Split(string(out), "\n") {
		name, v, ok := xfsField(l)
		if !ok {
			continue
		}
		m := sfattrRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		if i != len(es) && i != len(es)-1 {
			return nil, fmt.Errorf("xfs_db printed attribute entry %d after %d", i, len(es))
		}
		if i == len(es) {
			es = append(es, entry{})
		}
		e := &es[i]
		var err error
		switch m[2] {
		case "parent":
			e.parent = v == "1"
		case "namelen":
			e.namelen, err = strconv.Atoi(v)
		case "name":
			e.name, err = unescapeXFSDB(v)
			e.haveName = err == nil
		case "parent_dir.inumber":
			e.ino, err = strconv.ParseUint(v, 10, 64)
			e.haveIno = err == nil
		case "parent_dir.gen":
			e.gen, err = strconv.ParseUint(v, 10, 32)
			e.haveGn = err == nil
		}
		if err != nil {
			return nil, fmt.Errorf("xfs_db printed a bad attribute field %q: %v", truncate([]byte(l)), err)
		}
	}
	var ps []XFSParent
	for i, e := range es {
		if !e.parent {
			continue
		}
		if !e.haveName || !e.haveIno || !e.haveGn || len(e.name) != e.namelen {
			return nil, fmt.Errorf("xfs_db printed parent pointer %d without its name (of its length), directory or generation", i)
		}
		if err := checkName(e.name); err != nil {
			return nil, err
		}
		ps = append(ps, XFSParent{Inode: e.ino, Generation: uint32(e.gen), Name: e.name})
	}
	return ps, nil
}

// ParseXFSParents reads the output of xfs_db's `parent` command: one
// record per parent pointer, "INODE:0xGENERATION NAMELEN NAME\n" with the
// inode and name length padded with spaces and the name as it is (it may
// hold newlines: its length says where it ends).
func ParseXFSParents(out []byte) ([]XFSParent, error) {
	var ps []XFSParent
	rest := out
	for len(rest) > 0 {
		bad := func(what string) error {
			return fmt.Errorf("xfs_db parent printed %q: %s", truncate(rest), what)
		}
		if bytes.HasPrefix(rest, []byte("Root directory.\n")) {
			rest = rest[len("Root directory.\n"):]
			continue
		}
		s := bytes.TrimLeft(rest, " ")
		ino, s, ok := cutNumber(s, 10)
		if !ok || !bytes.HasPrefix(s, []byte(":0x")) {
			return nil, bad("not a parent pointer's directory inode")
		}
		gen, s, ok := cutNumber(s[3:], 16)
		if !ok || gen > 1<<32-1 || len(s) == 0 || s[0] != ' ' {
			return nil, bad("not a parent pointer's directory generation")
		}
		n, s, ok := cutNumber(bytes.TrimLeft(s, " "), 10)
		if !ok || n == 0 || n > 255 || len(s) < int(n)+2 || s[0] != ' ' || s[n+1] != '\n' {
			return nil, bad("not a parent pointer's name and its length")
		}
		name := string(s[1 : n+1])
		if err := checkName(name); err != nil {
			return nil, err
		}
		ps = append(ps, XFSParent{Inode: ino, Generation: uint32(gen), Name: name})
		rest = s[n+2:]
	}
	return ps, nil
}

// cutNumber reads an unsigned number in base at the start of b.
func cutNumber(b []byte, base int) (uint64, []byte, bool) {
	i := 0
	for i < len(b) && i < 20 && (b[i] >= '0' && b[i] <= '9' || base == 16 && (b[i] >= 'a' && b[i] <= 'f' || b[i] >= 'A' && b[i] <= 'F')) {
		i++
	}
	if i == 0 {
		return 0, b, false
	}
	v, err := strconv.ParseUint(string(b[:i]), base, 64)
	return v, b[i:], err == nil
}

// checkName refuses a name no directory entry can have.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("a parent pointer names the file %q, which no directory entry can be called", truncate([]byte(name)))
	}
	return nil
}

// unescapeXFSDB decodes a string as xfs_db prints it: in double quotes,
// with `\\` and `\"` for a backslash and a quote, `\a` to `\g` for the
// bytes 7 to 13 (xfs_db's own scheme, seen: a newline is `\d`), and `\OOO`
// (three octal digits) for other bytes that are not printable.
func unescapeXFSDB(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", errors.New("not a quoted string")
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return "", errors.New("an unescaped quote")
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("a trailing backslash")
		}
		i++
		switch c = s[i]; {
		case c == '\\' || c == '"':
			b.WriteByte(c)
		case c >= 'a' && c <= 'g':
			b.WriteByte(7 + c - 'a')
		case c >= '0' && c <= '3':
			if i+2 >= len(s) || s[i+1] < '0' || s[i+1] > '7' || s[i+2] < '0' || s[i+2] > '7' {
				return "", errors.New("a bad octal escape")
			}
			b.WriteByte((c-'0')<<6 | (s[i+1]-'0')<<3 | (s[i+2] - '0'))
			i += 2
		default:
			return "", fmt.Errorf("an unknown escape \\%c", c)
		}
	}
	return b.String(), nil
}
