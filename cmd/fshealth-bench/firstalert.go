package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// firstAlert times n errors, each on a file system that had none, from
// just before the write(2) that raises it to the moment the bench's
// webhook receiver has read the alert's body. The floor is the C reader
// doing the least a first alert needs: read the event, append 4 KiB to a
// file in the state directory and fdatasync it, POST the event on a fresh
// connection. fshealth is `fshealth daemon`, its history in the same state
// directory. Both get fresh file systems (2n in all), and the receiver
// closes every connection, so each POST is on a new one.
func firstAlert(opt *options) error {
	if opt.n == 0 {
		opt.n = 30
	}
	c, err := minreader(opt.dir)
	if err != nil {
		return err
	}
	ims, cleanup, err := scratch(opt.dir, 2*opt.n)
	if err != nil {
		return err
	}
	defer cleanup()
	rcv, err := newReceiver()
	if err != nil {
		return err
	}
	defer rcv.Close()
	state := filepath.Join(opt.dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}

	floorFS, fshFS := ims[:opt.n], ims[opt.n:]
	argv := []string{c, "-s", filepath.Join(state, "floor.dat"), "-p", strconv.Itoa(rcv.port)}
	for _, im := range floorFS {
		argv = append(argv, im.Mountpoint)
	}
	floor, fst, err := measureAlerts(opt, rcv, floorFS, "C reader + fdatasync + POST (floor)", nil, argv...)
	if err != nil {
		return err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(opt.dir, "fshealth.toml")
	var paths []string
	for _, im := range fshFS {
		paths = append(paths, strconv.Quote(im.Mountpoint))
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "state_dir = %q\n\n[watch]\npaths = [%s]\n\n[metrics]\nlisten = %q\n\n[[webhook]]\nname = \"bench\"\nurl = %q\n",
		state, strings.Join(paths, ", "), metricsAddr, rcv.url), 0o600); err != nil {
		return err
	}
	commit := func() (float64, float64) { return histogram(metricsAddr, "fshealth_history_commit_duration_seconds") }
	fsh, sst, err := measureAlerts(opt, rcv, fshFS, "fshealth daemon", commit, opt.fshealth, "daemon", "--config", cfg)
	if err != nil {
		return err
	}
	fmt.Printf("\nerror on a file system that had none → webhook body received (history committed first), %d errors\n", opt.n)
	table(time.Millisecond, floor, fsh)
	fmt.Println("\nwhere the time goes, p50 of each stage (ms):")
	fmt.Printf("  floor     read %.3f  write+fdatasync %.3f  POST %.3f\n", ms(pct(fst[0], 50)), ms(pct(fst[1], 50)), ms(pct(fst[2], 50)))
	fmt.Printf("  fshealth  read %.3f  enrich+policy %.3f  commit+hand-off+HTTP %.3f (of which history commit, mean: %.3f)\n",
		ms(pct(sst[0], 50)), ms(pct(sst[1], 50)), ms(pct(sst[2], 50)), ms(pct(sst[3], 50)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// measureAlerts starts argv and raises one error on each of ims, waiting
// for its alert each time. It returns the latencies and three stages per
// sample (a fourth, the mean commit, for fshealth), from the times the
// bodies carry.
func measureAlerts(opt *options, rcv *receiver, ims []*loopfs.Image, name string, commit func() (float64, float64), argv ...string) (result, [4][]time.Duration, error) {
	r := result{name: name}
	var st [4][]time.Duration
	p, err := start(opt.dir, argv...)
	if err != nil {
		return r, st, err
	}
	p.discard()
	cpu0, runs0 := p.cpu()
	var sum0, n0 float64
	if commit != nil {
		sum0, n0 = commit()
	}
	for _, im := range ims {
		time.Sleep(20 * time.Millisecond) // let what followed the last alert settle
		t0 := time.Now()
		if err := im.TriggerError("fshealth-bench first alert"); err != nil {
			p.stop()
			return r, st, err
		}
		var a arrival
		select {
		case a = <-rcv.got:
		case <-time.After(10 * time.Second):
			p.stop()
			return r, st, fmt.Errorf("%s: no alert within 10s; stderr: %s", name, p.stderrString())
		}
		r.samples = append(r.samples, a.at.Sub(t0))
		var b struct {
			ReadNS   int64 `json:"read_ns"`
			SyncedNS int64 `json:"synced_ns"`
			Time     time.Time
			Event    struct{ Time time.Time }
		}
		json.Unmarshal(a.body, &b)
		if b.ReadNS != 0 {
			read, synced := time.Unix(0, b.ReadNS), time.Unix(0, b.SyncedNS)
			st[0], st[1], st[2] = append(st[0], read.Sub(t0)), append(st[1], synced.Sub(read)), append(st[2], a.at.Sub(synced))
		} else {
			st[0], st[1], st[2] = append(st[0], b.Event.Time.Sub(t0)), append(st[1], b.Time.Sub(b.Event.Time)), append(st[2], a.at.Sub(b.Time))
		}
	}
	cpu, runs := p.cpu()
	r.cpu, r.switches, r.rssKiB = cpu-cpu0, runs-runs0, p.rss()
	if commit != nil {
		sum, n := commit()
		if n > n0 {
			st[3] = append(st[3], time.Duration((sum-sum0)/(n-n0)*1e9))
		}
	}
	if err := p.stop(); err != nil {
		return r, st, fmt.Errorf("%s: %w; stderr: %s", name, err, p.stderrString())
	}
	return r, st, nil
}

// arrival is one request's body and when the receiver had read it.
type arrival struct {
	body []byte
	at   time.Time
}

// receiver is the webhook receiver: it answers every request 200 and
// closes the connection.
type receiver struct {
	srv  *http.Server
	url  string
	port int
	got  chan arrival
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{port: ln.Addr().(*net.TCPAddr).Port, got: make(chan arrival, 64)}
	r.url = fmt.Sprintf("http://127.0.0.1:%d/alerts", r.port)
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		at := time.Now()
		w.Header().Set("Connection", "close")
		r.got <- arrival{b, at}
	})}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) Close() { r.srv.Close() }

// histogram returns the sum and count of a Prometheus histogram at addr.
func histogram(addr, name string) (sum, count float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+"_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(l, name+"_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	return sum, count
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
