// Package storage finds the storage stack under a file system: from the
// block device it is mounted from down to the physical disks, through
// partitions, device-mapper (LVM, dm-crypt, multipath), md arrays and loop
// devices (whose backing file lives on another file system, with a stack of
// its own), with each disk's identity (vendor, model, serial, WWN, firmware,
// /dev/disk names, enclosure slot). It reads sysfs and /dev only; both roots
// are parameters, so tests run on fixture trees.
package storage

// Kinds of layer.
const (
	// KindDisk is a physical (or virtual machine) disk: the bottom of a stack.
	KindDisk = "disk"
	// KindPartition is a partition of a disk.
	KindPartition = "partition"
	// KindLVM is an LVM logical volume (device-mapper uuid "LVM-...").
	KindLVM = "lvm"
	// KindCrypt is a dm-crypt mapping, LUKS or plain ("CRYPT-...").
	KindCrypt = "dm-crypt"
	// KindMultipath is a dm-multipath device ("mpath-...").
	KindMultipath = "multipath"
	// KindDM is any other device-mapper device (dmsetup's own tables:
	// linear, flakey, error, ...).
	KindDM = "dm"
	// KindMD is an md (software RAID) array.
	KindMD = "md"
	// KindLoop is a loop device.
	KindLoop = "loop"
	// KindVirtual is any other device built on others (bcache, ...), or a
	// device with no parent that is not a disk (zram, ram).
	KindVirtual = "virtual"
)

// Layer is one block device of a storage stack.
type Layer struct {
	// Name is the kernel's name of the device ("sda2", "dm-1", "md0").
	Name string `json:"name"`
	// Kind is one of the Kind* constants.
	Kind string `json:"kind"`
	// Dev is the device number, "major:minor".
	Dev string `json:"dev,omitempty"`
	// Node is the device node, "/dev/" and the name.
	Node string `json:"node,omitempty"`
	// MountedAs is, on the top layer, the mount source the file system was
	// mounted as when it is not Node ("/dev/mapper/vgA-data",
	// "/dev/vgA/data").
	MountedAs string `json:"mounted_as,omitempty"`
	// Links are the other names of the device under /dev: /dev/mapper,
	// an LV's /dev/VG/LV, /dev/disk/by-id, by-path, by-uuid, ... where
	// they exist.
	Links []string `json:"links,omitempty"`
	// SizeBytes is the device's size.
	SizeBytes uint64 `json:"size_bytes,omitempty"`
	// On names the layers this one is built on (its slaves; a partition's
	// disk; a loop device's backing device), each listed later in the
	// stack.
	On []string `json:"on,omitempty"`

	// DMName and DMUUID are a device-mapper device's name and uuid.
	DMName string `json:"dm_name,omitempty"`
	DMUUID string `json:"dm_uuid,omitempty"`
	// LV is an LVM logical volume's "vg/lv".
	LV string `json:"lv,omitempty"`

	// Partition is a partition's number; Start its first 512-byte sector
	// on the disk.
	Partition int    `json:"partition,omitempty"`
	Start     uint64 `json:"start,omitempty"`
	// Sectors is the size in 512-byte sectors (partitions: to tell which
	// one holds a sector of the disk after the partition is gone).
	Sectors uint64 `json:"sectors,omitempty"`

	// MD is an md array's state.
	MD *MD `json:"md,omitempty"`

	// BackingFile is a loop device's backing file, as the kernel names it.
	BackingFile string `json:"backing_file,omitempty"`
	// BackingFS is the file system the backing file is on.
	BackingFS *BackingFS `json:"backing_fs,omitempty"`

	// Disk is a disk's identity.
	Disk *Disk `json:"disk,omitempty"`
}

// MD is the state of an md array.
type MD struct {
	// Level is the RAID level, e.g. "raid1".
	Level string `json:"level,omitempty"`
	// ArrayState is md/array_state ("clean", "active", "inactive", ...).
	ArrayState string `json:"array_state,omitempty"`
	// Degraded is how many members the array lacks.
	Degraded int `json:"degraded"`
	// Members are the member devices and their state.
	Members []Member `json:"members,omitempty"`
}

// Member is one member device of an md array.
type Member struct {
	// Name is the member's kernel name ("sda1", "dm-4").
	Name string `json:"name"`
	// State is md's dev-*/state ("in_sync", "faulty", "spare", ...).
	State string `json:"state,omitempty"`
	// Slot is the member's role in the array ("0", "none").
	Slot string `json:"slot,omitempty"`
}

// BackingFS is the file system a loop device's backing file lives on.
type BackingFS struct {
	// Dev is its device number.
	Dev string `json:"dev"`
	// FSType, Source and Mountpoint are from the mount table, when the
	// file system is mounted here.
	FSType     string `json:"fstype,omitempty"`
	Source     string `json:"source,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty"`
}

// Disk is the identity of a physical disk.
type Disk struct {
	// Transport is how it is attached, as far as sysfs tells: "scsi"
	// (SCSI, SATA, SAS, USB storage), "nvme", "virtio", "mmc", or "".
	Transport string `json:"transport,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	// WWN is the disk's world wide name or identifier (sysfs wwid).
	WWN      string `json:"wwn,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// Enclosure and Slot name the enclosure (/sys/class/enclosure) and its
	// component the disk sits in.
	Enclosure string `json:"enclosure,omitempty"`
	Slot      string `json:"slot,omitempty"`
}

// Find returns the layer with the given kernel name, or nil.
func Find(stack []Layer, name string) *Layer {
	for i := range stack {
		if stack[i].Name == name {
			return &stack[i]
		}
	}
	return nil
}

// Disks returns the disks at the bottom of the stack.
func Disks(stack []Layer) []*Layer {
	var ds []*Layer
	for i := range stack {
		if stack[i].Kind == KindDisk {
			ds = append(ds, &stack[i])
		}
	}
	return ds
}

// PartitionAt returns the name of the partition of disk in the stack that
// holds the 512-byte sector (counted from the start of the disk), or "" if
// none there does.
func PartitionAt(stack []Layer, disk string, sector uint64) string {
	for i := range stack {
		l := &stack[i]
		if l.Kind == KindPartition && len(l.On) == 1 && l.On[0] == disk && l.Sectors > 0 &&
			sector >= l.Start && sector-l.Start < l.Sectors {
			return l.Name
		}
	}
	return ""
}

// HasPartitions reports whether the stack holds a partition of disk.
func HasPartitions(stack []Layer, disk string) bool {
	for i := range stack {
		if stack[i].Kind == KindPartition && len(stack[i].On) == 1 && stack[i].On[0] == disk {
			return true
		}
	}
	return false
}

// Merge returns the stack just read (cur) completed with what an earlier
// reading (old) knew and cur no longer shows: a device-mapper device whose
// table was replaced (by `error`, say) loses its slaves, and a device that
// went away loses its identity, but the admin still needs to know which
// disk was under the file system. Layers of cur whose On is empty while
// old's layer of that name had one take old's On, and the layers of old
// reachable from them are added.
func Merge(old, cur []Layer) []Layer {
	if len(old) == 0 {
		return cur
	}
	if len(cur) == 0 {
		return old
	}
	out := append([]Layer(nil), cur...)
	var want []string
	for i := range out {
		l := &out[i]
		if len(l.On) > 0 || l.Kind == KindDisk {
			continue
		}
		if o := Find(old, l.Name); o != nil && len(o.On) > 0 {
			l.On = append([]string(nil), o.On...)
			want = append(want, o.On...)
		}
	}
	for len(want) > 0 {
		n := want[0]
		want = want[1:]
		if Find(out, n) != nil {
			continue
		}
		if o := Find(old, n); o != nil {
			out = append(out, *o)
			want = append(want, o.On...)
		}
	}
	return out
}
