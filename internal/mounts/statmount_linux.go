package mounts

import "github.com/fshealth/fshealth/internal/sys"

// FromStatmount converts what statmount(2) says about a mount into a Mount
// as mountinfo would show it (without the option fields, which fshealth
// does not read from statmount).
func FromStatmount(m sys.Mount) Mount {
	return Mount{ID: int(m.OldID), ParentID: int(m.OldParentID), Major: m.Major, Minor: m.Minor,
		Root: m.Root, Point: m.Point, FSType: m.FSType, Source: m.Source}
}
