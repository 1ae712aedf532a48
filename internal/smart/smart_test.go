package smart

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestParseGolden parses recorded smartctl --json answers (testdata/*.json;
// see testdata/README.md for where each comes from) and compares the
// summaries with testdata/*.golden.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			j, err := json.MarshalIndent(h, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := string(j) + "\n" + h.Summary() + "\n"
			if h.Failing() {
				got += "failing\n"
			}
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestParseRejects names what is wrong with output that is not smartctl's.
func TestParseRejects(t *testing.T) {
	for in, want := range map[string]string{
		"smartctl: not found":              "not JSON",
		`{"smartctl":{}}`:                  "no json_format_version",
		`{"json_format_version":[2,0]}`:    "format version 2",
		`{"json_format_version":[1,0],"x"`: "not JSON",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

// TestCheckRefusesNonDevices: only device nodes reach smartctl.
func TestCheckRefusesNonDevices(t *testing.T) {
	var c Checker
	for _, d := range []string{"sda", "-a", "/etc/passwd", "/dev/../etc/passwd"} {
		if _, err := c.Check(context.Background(), d); err == nil || !strings.Contains(err.Error(), "not a device node") {
			t.Errorf("Check(%q): %v", d, err)
		}
	}
}

// TestCheckWithoutSmartctl: a missing smartctl is ErrNoSmartctl.
func TestCheckWithoutSmartctl(t *testing.T) {
	c := Checker{Path: filepath.Join(t.TempDir(), "smartctl")}
	if _, err := c.Check(context.Background(), "/dev/sda"); !errors.Is(err, ErrNoSmartctl) {
		t.Errorf("err %v, want ErrNoSmartctl", err)
	}
}

// TestCheckLoopDevice runs the real smartctl on a loop device: it has no
// health to give, which is said, and is no error; the answer is cached.
func TestCheckLoopDevice(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "smartctl", "smartmontools")
	dev := testutil.NewLoopDevice(t, 1<<20)
	var c Checker
	h, err := c.Check(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if h.Passed != nil || h.Unsupported == "" || !strings.Contains(h.Summary(), "no health data: ") || h.Failing() || h.Device != dev {
		t.Errorf("health of %s: %+v (%s)", dev, h, h.Summary())
	}
	h2, err := c.Check(context.Background(), dev)
	if err != nil || h2 != h {
		t.Errorf("second check within MaxAge: %p %v, want the cached %p", h2, err, h)
	}
}

// TestCheckSCSIDebug runs the real smartctl on the scsi_debug disk (the
// kernel matrix guests load the module): a SCSI disk that answers the
// health query.
func TestCheckSCSIDebug(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "smartctl", "smartmontools")
	models, _ := filepath.Glob("/sys/class/block/*/device/model")
	disk := ""
	for _, m := range models {
		if b, err := os.ReadFile(m); err == nil && strings.TrimSpace(string(b)) == "scsi_debug" {
			disk = filepath.Base(filepath.Dir(filepath.Dir(m)))
		}
	}
	testutil.RequireModule(t, "scsi_debug", disk != "")
	var c Checker
	h, err := c.Check(context.Background(), "/dev/"+disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", disk, h.Summary())
	if h.Protocol != "SCSI" || !strings.Contains(h.Model, "scsi_debug") || h.Passed == nil || !*h.Passed || h.Failing() {
		t.Errorf("health %+v (%s), want a SCSI disk, model scsi_debug, that passes", h, h.Summary())
	}
}
