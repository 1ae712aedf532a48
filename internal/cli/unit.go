package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/daemon"
)

// newReloadCmd is `fshealth reload`, the unit's ExecReload=.
func newReloadCmd(g *globals) *cobra.Command {
	var configPath, stateDir string
	var pid int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reload [--pid PID] [--config FILE] [--state-dir DIR]",
		Short: "Make the running daemon reload its configuration and say whether it did",
		Long: `Check the configuration file as the daemon would read it (as check-config
does, without the daemon's flags); if it is accepted, send SIGHUP to the
daemon (the one with process id --pid, which systemd passes as $MAINPID, else
the one holding the state directory's lock) and wait for the daemon's own
verdict, which it publishes in its runtime directory. The exit status is 0
when the daemon applied the configuration and 1 when it was refused, by this
check or by the daemon (changes that need a restart: state_dir,
metrics.listen, watch paths, kernel log settings), or when the daemon did not
answer within --timeout: "systemctl reload" fails accordingly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemon.LoadConfig(configPath, config.Overrides{})
			if err == nil {
				var chans *daemon.Channels
				if chans, err = daemon.BuildChannels(c, Version, io.Discard, g.logger()); err == nil {
					chans.Close()
				}
			}
			if err != nil {
				return fmt.Errorf("configuration refused, the daemon keeps running with its current one: %w", err)
			}
			if pid <= 0 {
				dir := c.StateDir
				if stateDir != "" {
					dir = stateDir
				}
				if pid, err = daemon.RunningPID(dir); err != nil {
					return fmt.Errorf("finding the daemon: %w", err)
				}
				if pid == 0 {
					return fmt.Errorf("no fshealth daemon is running on the state directory %s", dir)
				}
			}
			since := daemon.MonotonicUsec()
			if err := unix.Kill(pid, unix.SIGHUP); err != nil {
				return fmt.Errorf("signalling the daemon (pid %d): %w", pid, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := daemon.WaitReload(ctx, pid, since); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "configuration reloaded by the daemon (pid %d)\n", pid)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (default "+config.DefaultPath+")")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the daemon's state directory, to find it without --pid (default: the configuration's)")
	cmd.Flags().IntVar(&pid, "pid", 0, "process id of the daemon (ExecReload=: $MAINPID)")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the daemon's verdict")
	return cmd
}

// newIPAllowCmd is `fshealth ip-allow`.
func newIPAllowCmd(g *globals) *cobra.Command {
	var configPath string
	var extra []string
	var resolvConf string
	cmd := &cobra.Command{
		Use:   "ip-allow [--config FILE] [--allow ADDRESS[/BITS]]...",
		Short: "Print the systemd drop-in that lets the daemon reach its configured destinations",
		Long: `The shipped unit allows the daemon IP traffic with localhost only
(IPAddressDeny=any, IPAddressAllow=localhost). This prints a drop-in with
IPAddressAllow= lines for the destinations in the configuration: every webhook,
SMTP server and Alertmanager (or the proxy HTTPS_PROXY/HTTP_PROXY sends them
through), and, when one is named by a host name, the DNS servers of
/etc/resolv.conf. Names are resolved now: run it again when their addresses
change. Install it with

  mkdir -p /etc/systemd/system/fshealth.service.d
  fshealth ip-allow > /etc/systemd/system/fshealth.service.d/ip-allow.conf
  systemctl daemon-reload && systemctl restart fshealth

Metrics served on a non-loopback address need the scrapers' addresses: add
them with --allow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemon.LoadConfig(configPath, config.Overrides{})
			if err != nil {
				return err
			}
			out, err := ipAllowDropIn(cmd.Context(), c, extra, resolvConf)
			if err != nil {
				return err
			}
			_, err = io.WriteString(g.stdout, out)
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (default "+config.DefaultPath+")")
	cmd.Flags().StringArrayVar(&extra, "allow", nil, "also allow this address or prefix, e.g. a Prometheus server (repeatable)")
	cmd.Flags().StringVar(&resolvConf, "resolv-conf", "/etc/resolv.conf", "where the DNS servers are listed")
	cmd.Flags().MarkHidden("resolv-conf")
	return cmd
}

// destination is one place the daemon connects to.
type destination struct {
	what string // `webhook "hq"`
	host string // a name or an address
}

// ipAllowDropIn renders the drop-in for c's destinations plus extra.
func ipAllowDropIn(ctx context.Context, c *config.Config, extra []string, resolvConf string) (string, error) {
	var dests []destination
	addURL := func(what, raw string) error {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil {
			return fmt.Errorf("%s: the proxy setting: %w", what, err)
		} else if p != nil {
			what, u = what+" through the proxy", p
		}
		dests = append(dests, destination{what, u.Hostname()})
		return nil
	}
	for _, w := range c.Webhooks {
		if err := addURL(fmt.Sprintf("webhook %q", w.Name), w.URL); err != nil {
			return "", err
		}
	}
	for _, s := range c.SMTP {
		dests = append(dests, destination{fmt.Sprintf("smtp %q", s.Name), s.Host})
	}
	for _, a := range c.Alertmanagers {
		for _, u := range a.URLs {
			if err := addURL(fmt.Sprintf("alertmanager %q", a.Name), u); err != nil {
				return "", err
			}
		}
	}

	var b strings.Builder
	src := c.File
	if src == "" {
		src = "the built-in defaults"
	}
	fmt.Fprintf(&b, "# fshealth.service drop-in written by `fshealth ip-allow` from %s on %s:\n", strconv.Quote(src), time.Now().Format(time.RFC3339))
	b.WriteString("# the addresses the daemon may exchange IP traffic with besides localhost.\n[Service]\n")
	named := false
	for _, d := range dests {
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(strings.Trim(d.host, "[]")); err == nil {
			addrs = []netip.Addr{a.Unmap().WithZone("")}
		} else {
			named = true
			lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			addrs, err = net.DefaultResolver.LookupNetIP(lctx, "ip", d.host)
			cancel()
			if err != nil {
				return "", fmt.Errorf("%s: resolving %q: %w", d.what, d.host, err)
			}
			for i := range addrs {
				addrs[i] = addrs[i].Unmap().WithZone("")
			}
		}
		slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
		addrs = slices.Compact(addrs)
		fmt.Fprintf(&b, "# %s: %s\nIPAddressAllow=%s\n", d.what, strconv.Quote(d.host), joinAddrs(addrs))
	}
	if named {
		servers, err := nameservers(resolvConf)
		if err != nil {
			return "", err
		}
		if len(servers) > 0 {
			fmt.Fprintf(&b, "# the DNS servers of %s, to resolve the names above (names were resolved\n# when this was written: write it again when their addresses change)\nIPAddressAllow=%s\n",
				resolvConf, joinAddrs(servers))
		}
	}
	if len(extra) > 0 {
		var ps []string
		for _, e := range extra {
			p, err := parseAllow(e)
			if err != nil {
				return "", err
			}
			ps = append(ps, p)
		}
		fmt.Fprintf(&b, "# given with --allow\nIPAddressAllow=%s\n", strings.Join(ps, " "))
	}
	if l := c.Metrics.Listen; l != "" && len(extra) == 0 {
		if host, _, err := net.SplitHostPort(l); err == nil {
			if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
				fmt.Fprintf(&b, "# metrics are served on %s: allow the Prometheus servers that scrape them with --allow\n", strconv.Quote(l))
			}
		}
	}
	return b.String(), nil
}

// parseAllow checks an --allow value: an address or a prefix.
func parseAllow(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.String(), nil
	}
	return "", fmt.Errorf("--allow %q: not an IP address or prefix (such as 192.0.2.7 or 2001:db8::/32)", s)
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// nameservers returns the nameserver addresses of a resolv.conf file that
// are not loopback ones (localhost is allowed anyway).
func nameservers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: nameserver %q is not an IP address", path, line, fields[1])
		}
		if a = a.Unmap().WithZone(""); !a.IsLoopback() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, sc.Err()
}
