package event

import (
	"testing"

	"github.com/fshealth/fshealth/internal/storage"
)

func TestStorageText(t *testing.T) {
	for _, c := range []struct {
		stack []storage.Layer
		want  string
	}{
		{nil, ""},
		// Two partitions of one disk in an array: the disk is described
		// once, then named.
		{[]storage.Layer{
			{Name: "md0", Kind: storage.KindMD, MD: &storage.MD{Level: "raid1", Degraded: 1,
				Members: []storage.Member{{Name: "sda1", State: "in_sync"}, {Name: "sda2", State: "faulty"}}}, On: []string{"sda1", "sda2"}},
			{Name: "sda1", Kind: storage.KindPartition, On: []string{"sda"}},
			{Name: "sda2", Kind: storage.KindPartition, On: []string{"sda"}},
			{Name: "sda", Kind: storage.KindDisk, Disk: &storage.Disk{Vendor: "Linux", Model: "scsi_debug", Serial: "2000"}},
		}, `md0 raid1 degraded (1 missing) → [sda1 in_sync → sda "Linux scsi_debug" serial 2000; sda2 faulty → sda]`},
		// The member devices of a btrfs file system: one chain each.
		{[]storage.Layer{
			{Name: "sdb", Kind: storage.KindDisk},
			{Name: "dm-0", Kind: storage.KindCrypt, DMName: "luks-b", On: []string{"sdc"}},
			{Name: "sdc", Kind: storage.KindDisk, Disk: &storage.Disk{Serial: "X 1"}},
		}, `sdb + dm-crypt luks-b (dm-0) → sdc serial "X 1"`},
		// A loop whose image is on a file system with no block device.
		{[]storage.Layer{{Name: "loop0", Kind: storage.KindLoop, BackingFile: "/tmp/a b.img",
			BackingFS: &storage.BackingFS{Dev: "0:42", FSType: "tmpfs", Source: "tmpfs"}}},
			`loop0 file "/tmp/a b.img" on tmpfs`},
		// A cycle (not from a real system) ends.
		{[]storage.Layer{{Name: "a", Kind: storage.KindVirtual, On: []string{"b"}}, {Name: "b", Kind: storage.KindVirtual, On: []string{"a"}}}, "a → b → a"},
	} {
		if got := StorageText(c.stack); got != c.want {
			t.Errorf("StorageText = %q, want %q", got, c.want)
		}
	}
}
