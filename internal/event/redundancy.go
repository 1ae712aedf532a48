package event

// KindRedundancy is a change in the redundancy of a RAID array under a
// file system (Event.Redundancy says which): a member faulty or removed,
// the array degraded, a check's mismatch count grown, or the array whole
// again ("restored"), which resolves the file system's redundancy
// incident.
const KindRedundancy = "redundancy"

// SourceMD marks KindRedundancy events read from md's sysfs attributes.
const SourceMD = "md"

// SourceDMRaid marks KindRedundancy events read from a dm-raid target's
// status (an LVM raid logical volume), through /dev/mapper/control.
const SourceDMRaid = "dm-raid"

// SourceDMMultipath marks KindRedundancy events read from a multipath
// device's status (a path failed or reinstated), through
// /dev/mapper/control.
const SourceDMMultipath = "dm-multipath"

// appendRedundancyText appends the description of a KindRedundancy event
// in place of an error's errno.
func appendRedundancyText(b []byte, e *Event) []byte {
	b = append(b, " REDUNDANCY "...)
	if r := e.Redundancy; r != nil {
		b = append(b, Safe(r.Change)...)
	}
	return b
}
