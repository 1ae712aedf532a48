package daemon

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is the base32 alphabet of ULIDs (no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a unique, time-ordered id: 48 bits of Unix milliseconds and
// 80 random bits in Crockford base32 (26 characters), like a ULID. Ids sort
// by creation time to the millisecond.
func NewID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	rand.Read(b[6:])
	// 128 bits → 26 base32 digits, most significant first.
	hi := binary.BigEndian.Uint64(b[0:])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
