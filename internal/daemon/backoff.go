package daemon

import (
	"math/rand/v2"
	"time"
)

// Backoff computes retry delays: capped exponential with jitter.
type Backoff struct {
	// Initial is the delay after the first failure.
	Initial time.Duration
	// Max caps the delay.
	Max time.Duration
}

// Delay returns the delay before attempt number attempts+1, given that
// attempts attempts have failed (attempts ≥ 1): Initial·2^(attempts-1),
// capped at Max, with up to 20% random jitter subtracted so that many
// deliveries failing together do not retry in lockstep.
func (b Backoff) Delay(attempts int) time.Duration {
	d := b.Initial
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 0 {
		return 0
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}
