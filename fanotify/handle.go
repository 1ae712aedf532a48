package fanotify

import "encoding/binary"

// Handle types (enum fid_type in the kernel's exportfs.h) this package decodes.
const (
	// HandleInvalid is FILEID_INVALID: the error is not tied to an inode.
	HandleInvalid = 0xff
	// HandleIno32Gen is FILEID_INO32_GEN: 32-bit inode number, 32-bit
	// generation (ext4, xfs with small inodes, and others).
	HandleIno32Gen = 1
	// HandleIno32GenParent is FILEID_INO32_GEN_PARENT: as HandleIno32Gen,
	// followed by the parent's inode number and generation.
	HandleIno32GenParent = 2
	// HandleIno64Gen is FILEID_INO64_GEN: 64-bit inode number, 32-bit
	// generation (XFS inodes numbered above 2^32, and others).
	HandleIno64Gen = 0x81
	// HandleIno64GenParent is FILEID_INO64_GEN_PARENT.
	HandleIno64GenParent = 0x82
)

// MaxHandleSize is MAX_HANDLE_SZ, the largest handle the kernel hands out.
const MaxHandleSize = 128

// Handle is a file handle as the kernel encodes it (struct file_handle): a
// type and opaque bytes. Only the file system that issued it can interpret
// it; Inode decodes the common generic layouts.
type Handle struct {
	Type  int32
	Bytes []byte
}

// IsInvalid reports whether the handle is FILEID_INVALID, which error events
// use when the error is about the file system as a whole, not one inode.
func (h Handle) IsInvalid() bool { return h.Type == HandleInvalid }

// Inode decodes the inode number and generation from handles of the generic
// 32-bit and 64-bit inode layouts (as used by ext4 and xfs). ok is false for
// other types, and for a handle whose length is not its type's generic one:
// some file systems give type 1 to a layout of their own (tmpfs: 12 bytes,
// the generation first, then the 64-bit inode number; isofs: 12 bytes of
// block, offset and generation), which must not be read as inode and
// generation.
func (h Handle) Inode() (ino uint64, gen uint32, ok bool) {
	b := h.Bytes
	switch {
	case h.Type == HandleIno32Gen && len(b) == 8, h.Type == HandleIno32GenParent && len(b) == 16:
		return uint64(binary.NativeEndian.Uint32(b)), binary.NativeEndian.Uint32(b[4:]), true
	case h.Type == HandleIno64Gen && len(b) == 12, h.Type == HandleIno64GenParent && len(b) == 24:
		return binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint32(b[8:]), true
	}
	return 0, 0, false
}
