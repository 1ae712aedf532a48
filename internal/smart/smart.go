// Package smart gives a disk's own view of its health: a summary of what
// smartctl (smartmontools) reports with --json, read off the critical path
// of events, bounded by a timeout, one query at a time and cached per disk.
package smart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fshealth/fshealth/internal/trust"
)

// Health is a disk's health summary. Counters are nil when the disk does
// not report them.
type Health struct {
	// Device is the device node queried ("/dev/sda").
	Device string `json:"device"`
	// Checked is when smartctl answered.
	Checked time.Time `json:"checked,omitzero"`
	// Protocol is smartctl's device protocol: "ATA", "SCSI", "NVMe".
	Protocol string `json:"protocol,omitempty"`
	Model    string `json:"model,omitempty"`
	Serial   string `json:"serial,omitempty"`
	// Passed is the overall health self-assessment; nil when the disk
	// gave none.
	Passed *bool `json:"passed,omitempty"`
	// Reallocated and Pending are ATA's reallocated and pending (current
	// unreadable) sector counts; for SCSI, Reallocated is the grown defect
	// list's length.
	Reallocated *uint64 `json:"reallocated_sectors,omitempty"`
	Pending     *uint64 `json:"pending_sectors,omitempty"`
	// MediaErrors is NVMe's media and data integrity errors, or SCSI's
	// uncorrected read and write errors.
	MediaErrors *uint64 `json:"media_errors,omitempty"`
	// PercentageUsed is NVMe's estimate of the life used (may pass 100).
	PercentageUsed *uint64 `json:"percentage_used,omitempty"`
	// Unsupported says why the disk gave no health (smartctl's message):
	// a loop or virtual device, SMART not available, ...
	Unsupported string `json:"unsupported,omitempty"`
}

// Summary is Health in one line: "PASSED, 0 reallocated, 2 pending".
func (h *Health) Summary() string {
	if h.Unsupported != "" && h.Passed == nil {
		return "no health data: " + h.Unsupported
	}
	var parts []string
	switch {
	case h.Passed == nil:
		parts = append(parts, "no overall assessment")
	case *h.Passed:
		parts = append(parts, "PASSED")
	default:
		parts = append(parts, "FAILED")
	}
	add := func(p *uint64, what string) {
		if p != nil {
			parts = append(parts, fmt.Sprintf("%d %s", *p, what))
		}
	}
	add(h.Reallocated, "reallocated")
	add(h.Pending, "pending")
	add(h.MediaErrors, "media errors")
	if h.PercentageUsed != nil {
		parts = append(parts, fmt.Sprintf("%d%% used", *h.PercentageUsed))
	}
	return strings.Join(parts, ", ")
}

// Failing reports whether the disk says it is failing or reports sectors
// or media errors.
func (h *Health) Failing() bool {
	nz := func(p *uint64) bool { return p != nil && *p > 0 }
	return (h.Passed != nil && !*h.Passed) || nz(h.Pending) || nz(h.MediaErrors) || nz(h.Reallocated)
}

// report is the part of smartctl's JSON output (json_format_version 1)
// that Parse reads.
type report struct {
	FormatVersion []int `json:"json_format_version"`
	Smartctl      struct {
		Messages []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
		ExitStatus int `json:"exit_status"`
	} `json:"smartctl"`
	Device struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	} `json:"device"`
	ModelName    string `json:"model_name"`
	ScsiModel    string `json:"scsi_model_name"`
	ScsiProduct  string `json:"scsi_product"`
	SerialNumber string `json:"serial_number"`
	SmartStatus  *struct {
		Passed *bool `json:"passed"`
	} `json:"smart_status"`
	ATAAttributes *struct {
		Table []struct {
			ID  int `json:"id"`
			Raw struct {
				Value uint64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	NVMeLog *struct {
		MediaErrors    *uint64 `json:"media_errors"`
		PercentageUsed *uint64 `json:"percentage_used"`
	} `json:"nvme_smart_health_information_log"`
	ScsiGrownDefects *uint64 `json:"scsi_grown_defect_list"`
	ScsiErrorLog     *struct {
		Read *struct {
			Uncorrected *uint64 `json:"total_uncorrected_errors"`
		} `json:"read"`
		Write *struct {
			Uncorrected *uint64 `json:"total_uncorrected_errors"`
		} `json:"write"`
	} `json:"scsi_error_counter_log"`
}

// ATA attribute ids.
const (
	ataReallocated = 5
	ataPending     = 197
)

// Parse reads smartctl's --json output. An answer without health data (a
// device smartctl cannot query) is a Health with Unsupported set; output
// that is not smartctl's JSON is an error saying what is wrong.
func Parse(b []byte) (*Health, error) {
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("smartctl output is not JSON: %w", err)
	}
	if len(r.FormatVersion) == 0 {
		return nil, errors.New("smartctl output has no json_format_version: not smartctl's JSON")
	}
	if r.FormatVersion[0] != 1 {
		return nil, fmt.Errorf("smartctl JSON format version %d, this code reads version 1", r.FormatVersion[0])
	}
	h := &Health{Device: r.Device.Name, Protocol: r.Device.Protocol, Serial: r.SerialNumber}
	h.Model = firstNonEmpty(r.ModelName, r.ScsiModel, r.ScsiProduct)
	if r.SmartStatus != nil {
		h.Passed = r.SmartStatus.Passed
	}
	if a := r.ATAAttributes; a != nil {
		for _, at := range a.Table {
			v := at.Raw.Value
			switch at.ID {
			case ataReallocated:
				h.Reallocated = &v
			case ataPending:
				h.Pending = &v
			}
		}
	}
	if n := r.NVMeLog; n != nil {
		h.MediaErrors, h.PercentageUsed = n.MediaErrors, n.PercentageUsed
	}
	if r.ScsiGrownDefects != nil {
		h.Reallocated = r.ScsiGrownDefects
	}
	if l := r.ScsiErrorLog; l != nil {
		var sum uint64
		have := false
		for _, d := range []*struct {
			Uncorrected *uint64 `json:"total_uncorrected_errors"`
		}{l.Read, l.Write} {
			if d != nil && d.Uncorrected != nil {
				sum += *d.Uncorrected
				have = true
			}
		}
		if have && h.MediaErrors == nil {
			h.MediaErrors = &sum
		}
	}
	if h.Passed == nil {
		var msgs []string
		for _, m := range r.Smartctl.Messages {
			msgs = append(msgs, m.String)
		}
		h.Unsupported = strings.Join(msgs, "; ")
		if h.Unsupported == "" {
			h.Unsupported = fmt.Sprintf("smartctl gave no health assessment (exit status %#x)", r.Smartctl.ExitStatus)
		}
	}
	return h, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// ErrNoSmartctl says smartctl is not installed.
var ErrNoSmartctl = errors.New("smartctl (smartmontools) is not installed: disks' own health is not read")

// Checker runs smartctl, one query at a time, and keeps each disk's answer
// for MaxAge.
type Checker struct {
	// Path is smartctl's path; looked up in $PATH (and /usr/sbin) if empty.
	Path string
	// Timeout bounds one query (DefaultTimeout if zero); MaxAge is how long
	// an answer is reused (DefaultMaxAge if zero).
	Timeout, MaxAge time.Duration

	mu    sync.Mutex // one query at a time
	cache map[string]*Health
}

// Defaults of Checker.
const (
	DefaultTimeout = 20 * time.Second
	DefaultMaxAge  = 10 * time.Minute
)

// Check returns dev's health: the cached answer if younger than MaxAge,
// else smartctl's, queried now (queries are serialised). ErrNoSmartctl
// when smartctl is missing. dev is a device node; it is passed to smartctl
// as one argument, never through a shell.
func (c *Checker) Check(ctx context.Context, dev string) (*Health, error) {
	if !strings.HasPrefix(dev, "/dev/") || strings.Contains(dev, "..") {
		return nil, fmt.Errorf("smart: %q is not a device node under /dev", dev)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if h := c.cache[dev]; h != nil && time.Since(h.Checked) < maxAge {
		return h, nil
	}
	path := c.Path
	if path == "" {
		p, err := lookPath()
		if err != nil {
			return nil, ErrNoSmartctl
		}
		path = p
	}
	// smartctl runs as root: like every program fshealth runs, only root
	// may be able to change it.
	if err := trust.CheckProgram(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("refusing to run %s: %w", path, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(qctx, path, "--json", "--info", "--health", "--attributes", "--log=error", dev)
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	if qctx.Err() != nil {
		return nil, fmt.Errorf("smartctl %s: no answer within %v", dev, timeout)
	}
	// smartctl's exit status is a bit mask (1: command line or device
	// open failed, 8: the disk is failing, ...): the JSON says more.
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		if errors.Is(runErr, fs.ErrNotExist) || errors.Is(runErr, exec.ErrNotFound) {
			return nil, ErrNoSmartctl
		}
		return nil, fmt.Errorf("running smartctl %s: %w", dev, runErr)
	}
	h, err := Parse(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("smartctl %s: %w (stderr: %q)", dev, err, strings.TrimSpace(errb.String()))
	}
	h.Device, h.Checked = dev, time.Now()
	if c.cache == nil {
		c.cache = map[string]*Health{}
	}
	c.cache[dev] = h
	return h, nil
}

func lookPath() (string, error) {
	if p, err := exec.LookPath("smartctl"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/smartctl", "/sbin/smartctl"} {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoSmartctl
}
