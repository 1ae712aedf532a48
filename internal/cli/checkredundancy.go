package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/policy"
	"github.com/fshealth/fshealth/internal/store"
)

// condRedundancy is the check condition of an md array under a file system
// that lost redundancy (an open redundancy incident).
const condRedundancy = "redundancy"

// addRedundancy adds a critical finding for each open redundancy incident of
// the file systems fss: it lasts until the array is whole again (the
// daemon's restored event resolves it) or `fshealth resolve`. It returns
// how many file systems have one.
func (r *checkResult) addRedundancy(ctx context.Context, st *store.Store, fss []store.FilesystemStatus) (uint64, error) {
	open, err := st.OpenIncidents(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, in := range open {
		if in.ErrorKind != policy.KindRedundancy {
			continue
		}
		i := slices.IndexFunc(fss, func(f store.FilesystemStatus) bool { return f.Key == in.FSKey })
		if i < 0 {
			continue
		}
		f := fss[i]
		what := "an array under it lost redundancy"
		var s policy.IncidentState
		if json.Unmarshal(in.State, &s) == nil && s.LastEvent != nil && s.LastEvent.Message != "" {
			what = event.Clean(s.LastEvent.Message)
		}
		n++
		r.add(checkCritical, fsName(f)+" redundancy lost",
			fmt.Sprintf("%s (%s %s): redundancy lost since %s: %s", fsName(f), event.Safe(f.Device), event.Safe(f.FSType),
				in.Opened.UTC().Format(time.RFC3339), what))
	}
	return n, nil
}
