package mounts

import (
	"sort"
)

// Table is a mount table kept up to date change by change: mounts are
// added and removed one at a time, at a cost that does not depend on how
// many there are, and Publish turns what changed since its last call into
// new Filesystem values, touching only the file systems that changed.
//
// Published Filesystems are never modified afterwards (a later change
// publishes a new one), so they may be handed to other goroutines. Their
// Mounts and Mountpoints are capped slices of the table's own arrays:
// appending to them copies. A Table is not safe for concurrent use.
type Table struct {
	byID     map[int]*mref
	byUnique map[uint64]int
	groups   map[devKey]*group
	dirty    []*group
	seq      uint64
	gen      uint32
}

type devKey struct{ maj, min uint32 }

// mref is what the table knows about one mount, by mountinfo id.
type mref struct {
	seq    uint64
	g      *group
	unique uint64
	gen    uint32
	// root and point identify the mount's content, to tell a mount
	// learned again (by its unique id) from a new one with a reused id.
	root, point string
}

// group is one superblock's mounts, in the order the table learned them.
type group struct {
	key    devKey
	pub    *Filesystem
	mounts []Mount
	points []string
	seqs   []uint64
	// pubSeq is the highest seq published; removed are the seqs removed
	// since, removedPub how many of them were published, added how many
	// mounts were added since (and are still there).
	pubSeq     uint64
	pubLen     int
	removed    map[uint64]struct{}
	removedPub int
	added      int
	isDirty    bool
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{byID: map[int]*mref{}, byUnique: map[uint64]int{}, groups: map[devKey]*group{}}
}

// Len returns how many mounts the table holds.
func (t *Table) Len() int { return len(t.byID) }

// Add adds a mount, replacing any mount with the same (mountinfo) id.
// unique is the mount's unique id (statmount(2), fanotify mount events), or
// 0 if unknown. A mount the table already has, with the same id, device,
// root and mount point, is not changed (only its unique id is recorded).
func (t *Table) Add(m Mount, unique uint64) {
	if r, ok := t.byID[m.ID]; ok {
		if r.g.key == (devKey{m.Major, m.Minor}) && r.root == m.Root && r.point == m.Point {
			t.setUnique(m.ID, r, unique)
			r.gen = t.gen
			return
		}
		t.Remove(m.ID)
	}
	k := devKey{m.Major, m.Minor}
	g := t.groups[k]
	if g == nil {
		g = &group{key: k}
		t.groups[k] = g
	}
	t.seq++
	r := &mref{seq: t.seq, g: g, gen: t.gen, root: m.Root, point: m.Point}
	t.byID[m.ID] = r
	t.setUnique(m.ID, r, unique)
	g.mounts = append(g.mounts, m)
	g.points = append(g.points, m.Point)
	g.seqs = append(g.seqs, t.seq)
	g.added++
	t.markDirty(g)
}

func (t *Table) setUnique(id int, r *mref, unique uint64) {
	if unique == 0 || r.unique == unique {
		return
	}
	if r.unique != 0 {
		delete(t.byUnique, r.unique)
	}
	r.unique = unique
	t.byUnique[unique] = id
}

// Remove removes the mount with the (mountinfo) id; it reports whether the
// table had it.
func (t *Table) Remove(id int) bool {
	r, ok := t.byID[id]
	if !ok {
		return false
	}
	delete(t.byID, id)
	if r.unique != 0 {
		delete(t.byUnique, r.unique)
	}
	g := r.g
	if g.removed == nil {
		g.removed = map[uint64]struct{}{}
	}
	g.removed[r.seq] = struct{}{}
	if r.seq <= g.pubSeq {
		g.removedPub++
	} else {
		g.added--
	}
	t.markDirty(g)
	return true
}

// RemoveUnique removes the mount with the unique id; it reports whether the
// table had it.
func (t *Table) RemoveUnique(unique uint64) bool {
	id, ok := t.byUnique[unique]
	return ok && t.Remove(id)
}

// HasUnique reports whether the table has the mount with the unique id.
func (t *Table) HasUnique(unique uint64) bool {
	_, ok := t.byUnique[unique]
	return ok
}

func (t *Table) markDirty(g *group) {
	if !g.isDirty {
		g.isDirty = true
		t.dirty = append(t.dirty, g)
	}
}

// Sync makes the table hold exactly the mounts whose unique ids are ids (a
// complete listing, listmount(2)): mounts it does not know by unique id are
// looked up with stat and added (or, if the table has them by their
// mountinfo id, given their unique id), and mounts not listed are removed.
// stat returns ok=false for a mount gone meanwhile. If stat fails, nothing
// is removed and the first error is returned.
func (t *Table) Sync(ids []uint64, stat func(unique uint64) (m Mount, ok bool, err error)) error {
	t.gen++
	var firstErr error
	for _, u := range ids {
		if id, ok := t.byUnique[u]; ok {
			t.byID[id].gen = t.gen
			continue
		}
		m, ok, err := stat(u)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			t.Add(m, u)
			t.byID[m.ID].gen = t.gen
		}
	}
	if firstErr != nil {
		return firstErr
	}
	for id, r := range t.byID {
		if r.gen != t.gen {
			t.Remove(id)
		}
	}
	return nil
}

// Changed is a file system whose mounts changed, as Publish reports it.
type Changed struct {
	// Old is the file system as last published, nil if it is new; New
	// is what it is now, nil if it is no longer mounted anywhere.
	Old, New *Filesystem
	// Replaced says that none of Old's mounts are left and there are new
	// ones with the same device number: possibly a new superblock.
	Replaced bool
	// Added and Removed count the mounts added and removed.
	Added, Removed int
}

// Publish returns the file systems whose mounts changed since the last
// Publish, with their new values; it costs, for each, at most one copy of
// its mount list (none when mounts were only added).
func (t *Table) Publish() []Changed {
	var out []Changed
	for _, g := range t.dirty {
		g.isDirty = false
		if g.removedPub == 0 && g.added == 0 {
			// What was added was removed again.
			g.dropRemoved()
			if g.pub == nil && len(g.mounts) == 0 {
				delete(t.groups, g.key)
			}
			continue
		}
		c := Changed{Old: g.pub, Added: g.added, Removed: g.removedPub}
		c.Replaced = g.pub != nil && g.removedPub == g.pubLen && g.added > 0
		g.dropRemoved()
		n := len(g.mounts)
		if n == 0 {
			delete(t.groups, g.key)
			g.pub = nil
		} else {
			first := &g.mounts[0]
			g.pub = &Filesystem{Major: g.key.maj, Minor: g.key.min, FSType: first.FSType, Source: first.Source,
				Mountpoints: g.points[:n:n], Mounts: g.mounts[:n:n]}
			g.pubSeq = g.seqs[n-1]
		}
		g.pubLen, g.added, g.removedPub = n, 0, 0
		c.New = g.pub
		out = append(out, c)
	}
	clear(t.dirty)
	t.dirty = t.dirty[:0]
	return out
}

// dropRemoved rebuilds the group's lists without the removed mounts, into
// new arrays: published slices keep what they had.
func (g *group) dropRemoved() {
	if len(g.removed) == 0 {
		return
	}
	n := len(g.mounts) - len(g.removed)
	mounts, points, seqs := make([]Mount, 0, n), make([]string, 0, n), make([]uint64, 0, n)
	for i, s := range g.seqs {
		if _, gone := g.removed[s]; !gone {
			mounts = append(mounts, g.mounts[i])
			points = append(points, g.points[i])
			seqs = append(seqs, s)
		}
	}
	g.mounts, g.points, g.seqs = mounts, points, seqs
	clear(g.removed)
}

// Filesystems returns the published file systems, ordered by the mount the
// table learned first (for a table filled from one reading of mountinfo,
// as Group orders them).
func (t *Table) Filesystems() []*Filesystem {
	type fsSeq struct {
		fs  *Filesystem
		seq uint64
	}
	l := make([]fsSeq, 0, len(t.groups))
	for _, g := range t.groups {
		if g.pub != nil {
			l = append(l, fsSeq{g.pub, g.seqs[0]})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].seq < l[j].seq })
	out := make([]*Filesystem, len(l))
	for i, f := range l {
		out[i] = f.fs
	}
	return out
}

// Lookup returns the published file system with device number
// major:minor, or nil.
func (t *Table) Lookup(major, minor uint32) *Filesystem {
	if g := t.groups[devKey{major, minor}]; g != nil {
		return g.pub
	}
	return nil
}
