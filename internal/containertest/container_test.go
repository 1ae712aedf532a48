package containertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// podEnv carries a pod's spec (JSON) to the re-executed test binary that
// sets the pod up and becomes fshealth (podMain).
const podEnv = "FSHEALTH_CONTAINERTEST_POD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(podEnv); spec != "" {
		podMain(spec)
	}
	testutil.MainInMountNamespace(m, func() (func(), error) {
		return func() {
			if artifacts.dir != "" {
				os.RemoveAll(artifacts.dir)
			}
		}, nil
	})
}

// repo is the module root (tests run in their package's directory).
func repo(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// artifacts are built once for all tests: the static binary, the image
// archive `make image` would write, and its layer unpacked.
var artifacts struct {
	once   sync.Once
	err    error
	binary string // the static fshealth, as in the image
	image  string // the docker-archive
	rootfs string // the image's layer, unpacked
	dir    string
}

func build(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	artifacts.once.Do(func() {
		artifacts.err = func() error {
			dir, err := os.MkdirTemp("", "fshealth-containertest-")
			if err != nil {
				return err
			}
			artifacts.dir = dir
			artifacts.binary = filepath.Join(dir, "fshealth")
			artifacts.image = filepath.Join(dir, "fshealth-image.tar")
			root := repo(t)
			cmd := exec.Command("go", "build", "-trimpath", "-o", artifacts.binary, "./cmd/fshealth")
			cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build: %v\n%s", err, out)
			}
			cmd = exec.Command("go", "run", "./image", "-binary", artifacts.binary, "-tag", "fshealth:test",
				"-version", "test", "-revision", "0123abc", "-out", artifacts.image)
			cmd.Dir, cmd.Env = filepath.Join(root, "tools"), append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("tools/image: %v\n%s", err, out)
			}
			return nil
		}()
	})
	if artifacts.err != nil {
		t.Fatal(artifacts.err)
	}
}

// dockerArchive is what `docker load` reads.
type dockerArchive struct {
	manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	files map[string][]byte
}

func readArchive(t *testing.T, path string) *dockerArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &dockerArchive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var r io.Reader = tr
		if strings.HasSuffix(h.Name, ".gz") {
			if r, err = gzip.NewReader(tr); err != nil {
				t.Fatalf("%s: %s: %v", path, h.Name, err)
			}
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		a.files[h.Name] = b
	}
	if err := json.Unmarshal(a.files["manifest.json"], &a.manifest); err != nil || len(a.manifest) != 1 {
		t.Fatalf("%s: manifest.json: %v (%d images)", path, err, len(a.manifest))
	}
	return a
}

// TestImage: the image `make image` builds is one layer with a static
// fshealth and no shell, runs as root with fshealth as its entry point,
// carries CA certificates for https webhooks, is reproducible, and its
// binary runs in its own root.
func TestImage(t *testing.T) {
	build(t)
	a := readArchive(t, artifacts.image)
	m := a.manifest[0]
	if !slices.Equal(m.RepoTags, []string{"fshealth:test"}) || len(m.Layers) != 1 {
		t.Fatalf("manifest: tags %v, %d layers; want [fshealth:test], 1 layer", m.RepoTags, len(m.Layers))
	}
	var cfg struct {
		Architecture, OS string
		Config           struct {
			Entrypoint, Cmd []string
			User            string
			Labels          map[string]string
		}
	}
	if err := json.Unmarshal(a.files[m.Config], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH ||
		!slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/fshealth"}) || !slices.Equal(cfg.Config.Cmd, []string{"daemon"}) ||
		cfg.Config.User != "0:0" || cfg.Config.Labels["org.opencontainers.image.version"] != "test" ||
		cfg.Config.Labels["org.opencontainers.image.revision"] != "0123abc" {
		t.Errorf("image config: %+v", cfg)
	}

	layer := a.files[m.Layers[0]]
	files := map[string]*tar.Header{}
	var binary []byte
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == "usr/bin/fshealth" {
			binary, _ = io.ReadAll(tr)
		}
		if h.ModTime.Unix() != 1700000000 {
			t.Errorf("layer: %s has time %v, want SOURCE_DATE_EPOCH", h.Name, h.ModTime)
		}
	}
	for _, name := range []string{"usr/bin/fshealth", "etc/fshealth", "var/lib/fshealth", "etc/ssl/certs/ca-certificates.crt", "tmp"} {
		if files[name] == nil {
			t.Errorf("layer: no %s", name)
		}
	}
	for _, shell := range []string{"bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"} {
		if files[shell] != nil {
			t.Errorf("layer has a shell: %s", shell)
		}
	}
	if h := files["var/lib/fshealth"]; h != nil && h.Mode&0o777 != 0o700 {
		t.Errorf("var/lib/fshealth mode %o, want 0700", h.Mode&0o777)
	}
	if h := files["usr/bin/fshealth"]; h != nil && (h.Mode&0o777 != 0o755 || h.Uid != 0) {
		t.Errorf("usr/bin/fshealth mode %o uid %d, want 0755 root", h.Mode&0o777, h.Uid)
	}
	ef, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("usr/bin/fshealth: %v", err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("usr/bin/fshealth is dynamically linked (has PT_INTERP): the image has no libc")
		}
	}

	// The same inputs give the same image.
	again := filepath.Join(t.TempDir(), "again.tar")
	cmd := exec.Command("go", "run", "./image", "-binary", artifacts.binary, "-tag", "fshealth:test",
		"-version", "test", "-revision", "0123abc", "-out", again)
	cmd.Dir, cmd.Env = filepath.Join(repo(t), "tools"), append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tools/image: %v\n%s", err, out)
	}
	if b := readArchive(t, again); b.manifest[0].Config != m.Config || !slices.Equal(b.manifest[0].Layers, m.Layers) {
		t.Errorf("rebuilding gave config %s layers %v, first build %s %v", b.manifest[0].Config, b.manifest[0].Layers, m.Config, m.Layers)
	}

	// The binary runs alone in the image's root.
	root := unpack(t, layer)
	out, err := exec.Command("chroot", root, "/usr/bin/fshealth", "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "fshealth ") {
		t.Errorf("chroot %s /usr/bin/fshealth --version: %v\n%s", root, err, out)
	}
}

// unpack writes a layer into a new temporary directory.
func unpack(t *testing.T, layer []byte) string {
	t.Helper()
	root := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return root
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("layer: unexpected entry type %c for %s", h.Typeflag, h.Name)
		}
		if err := os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

func modeBits(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}

// manifest is the part of dist/kubernetes/fshealth.yaml the tests use, as
// tools/kubecheck prints it after decoding it into the Kubernetes API types.
type manifest []struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Data     map[string]string
	Spec     struct {
		Template struct {
			Spec podSpec
		}
	}
}

type podSpec struct {
	HostPID, HostNetwork         bool
	AutomountServiceAccountToken *bool
	Tolerations                  []struct{ Operator string }
	Containers                   []struct {
		Name, Image string
		Args        []string
		Env         []struct {
			Name      string
			ValueFrom *struct{ FieldRef struct{ FieldPath string } }
		}
		Ports []struct {
			Name          string
			ContainerPort int
		}
		SecurityContext struct{ Privileged, ReadOnlyRootFilesystem *bool }
		LivenessProbe   *struct{ HTTPGet struct{ Path string } }
		StartupProbe    *struct{ HTTPGet struct{ Path string } }
		VolumeMounts    []struct {
			Name, MountPath  string
			ReadOnly         bool
			MountPropagation *string
		}
	}
	Volumes []struct {
		Name      string
		ConfigMap *struct {
			Name        string
			DefaultMode *int32
		}
		HostPath *struct{ Path string }
	}
}

// kubecheck runs tools/kubecheck on file.
func kubecheck(t *testing.T, file string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("go", "run", "./kubecheck", file)
	cmd.Dir = filepath.Join(repo(t), "tools")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return out, nil
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	out, err := kubecheck(t, filepath.Join(repo(t), "dist/kubernetes/fshealth.yaml"))
	if err != nil {
		t.Fatalf("kubecheck dist/kubernetes/fshealth.yaml: %v", err)
	}
	var m manifest
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m manifest) daemonSet(t *testing.T) *podSpec {
	t.Helper()
	for i := range m {
		if m[i].Kind == "DaemonSet" {
			return &m[i].Spec.Template.Spec
		}
	}
	t.Fatal("the manifest has no DaemonSet")
	return nil
}

func (m manifest) configMap(t *testing.T) map[string]string {
	t.Helper()
	for i := range m {
		if m[i].Kind == "ConfigMap" {
			return m[i].Data
		}
	}
	t.Fatal("the manifest has no ConfigMap")
	return nil
}

// TestManifestMatchesTheKubernetesAPI: every document of the manifest
// decodes strictly into its Kubernetes API type, a misspelt field or a bad
// quantity is refused naming it, the pod asks for what fshealth needs and no
// more, and the ConfigMap's configuration passes check-config.
func TestManifestMatchesTheKubernetesAPI(t *testing.T) {
	build(t)
	m := readManifest(t)
	var kinds []string
	for _, o := range m {
		kinds = append(kinds, o.Kind)
	}
	if want := []string{"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	pod := m.daemonSet(t)
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !pod.HostPID || pod.HostNetwork || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("hostPID %v hostNetwork %v automountServiceAccountToken %v: want the node's PIDs, the pod's network, no API token",
			pod.HostPID, pod.HostNetwork, pod.AutomountServiceAccountToken)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != "Exists" {
		t.Errorf("tolerations %+v: want every node", pod.Tolerations)
	}
	if p := c.SecurityContext; p.Privileged == nil || !*p.Privileged || p.ReadOnlyRootFilesystem == nil || !*p.ReadOnlyRootFilesystem {
		t.Errorf("securityContext %+v: want privileged with a read-only root", p)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.StartupProbe == nil || c.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: liveness %+v startup %+v, want /healthz", c.LivenessProbe, c.StartupProbe)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9718 || !slices.Contains(c.Args, "--metrics-listen=$(POD_IP):9718") {
		t.Errorf("ports %+v args %q: the metrics port must be the one served", c.Ports, c.Args)
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	for _, p := range []string{"/etc/fshealth", "/var/lib/fshealth", "/host", "/dev/kmsg"} {
		if mounts[p] == "" {
			t.Errorf("no volume mounted at %s", p)
		}
	}

	// check-config accepts the ConfigMap with the pod's flags.
	dir := t.TempDir()
	conf := filepath.Join(dir, "fshealth.toml")
	if err := os.WriteFile(conf, []byte(m.configMap(t)["fshealth.toml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(artifacts.binary, "check-config", "--config", conf, "--hostname=node-1", "--metrics-listen=10.1.2.3:9718").CombinedOutput(); err != nil {
		t.Errorf("check-config of the ConfigMap: %v\n%s", err, out)
	}

	// A misspelt field and a bad quantity are refused, naming them.
	orig, err := os.ReadFile(filepath.Join(repo(t), "dist/kubernetes/fshealth.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"mountPropagation:", "mountPropogation:", `document 4 (DaemonSet): error unmarshaling JSON: while decoding JSON: json: unknown field "mountPropogation"`},
		{"memory: 256Mi", "memory: 256Mx", "quantities must match"},
		{"kind: DaemonSet", "kind: DeamonSet", `unknown apiVersion "apps/v1" kind "DeamonSet"`},
	} {
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, bytes.Replace(orig, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := kubecheck(t, bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: kubecheck error %v, want one containing %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// pod is what podMain needs to set a pod up the way a kubelet and its
// container runtime do.
type pod struct {
	Rootfs string
	Mounts []podMount
	Argv   []string
	Env    []string
}

// podMount is one bind mount into the container.
type podMount struct {
	Source, Target   string
	ReadOnly, Rslave bool
	File             bool // the target is a file (a device)
}

// podMain sets the pod up in the new mount and network namespaces this
// process was started in, then becomes fshealth. It never returns.
func podMain(spec string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "pod: "+format+"\n", args...)
		os.Exit(125)
	}
	var p pod
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		fail("spec: %v", err)
	}
	// The container runtime's root: receives the host's mounts, sends none.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		fail("making / rslave: %v", err)
	}
	if err := unix.Mount(p.Rootfs, p.Rootfs, "", unix.MS_BIND, ""); err != nil {
		fail("bind %s: %v", p.Rootfs, err)
	}
	// Like runc, create the mount points the image lacks.
	if err := os.MkdirAll(filepath.Join(p.Rootfs, "proc"), 0o555); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount("proc", filepath.Join(p.Rootfs, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("proc: %v", err)
	}
	for _, m := range p.Mounts {
		target := filepath.Join(p.Rootfs, m.Target)
		if m.File {
			if f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600); err == nil {
				f.Close()
			} else if !errors.Is(err, os.ErrExist) {
				fail("%s: %v", target, err)
			}
		} else if err := os.MkdirAll(target, 0o755); err != nil {
			fail("%s: %v", target, err)
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fail("bind %s on %s: %v", m.Source, target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				fail("read-only %s: %v", target, err)
			}
		}
		if m.Rslave {
			if err := unix.Mount("", target, "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
				fail("rslave %s: %v", target, err)
			}
		}
	}
	// readOnlyRootFilesystem
	if err := unix.Mount("", p.Rootfs, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		fail("read-only root: %v", err)
	}
	if err := loopbackUp(); err != nil {
		fail("lo: %v", err)
	}
	if err := unix.Chroot(p.Rootfs); err != nil {
		fail("chroot: %v", err)
	}
	if err := os.Chdir("/"); err != nil {
		fail("chdir: %v", err)
	}
	err := unix.Exec(p.Argv[0], p.Argv, p.Env)
	fail("exec %s: %v", p.Argv[0], err)
}

// loopbackUp brings the new network namespace's lo up.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// inNetns runs f on a thread in the network namespace of process pid, so
// that the sockets f makes are that namespace's. The thread is not reused.
func inNetns(pid int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// TestDaemonSetRunsLikeAKubelet runs the DaemonSet's pod the way a kubelet
// does — the image's root read-only, the manifest's volumes (the ConfigMap
// in the kubelet's atomic-writer layout, hostPaths, the host's root with
// HostToContainer propagation, /dev/kmsg), its arguments with $(VAR)
// expanded from the downward API, its own network namespace — and checks
// its probes, that it follows a file system mounted on the host after it
// started, and that a real ext4 error there reaches a webhook with the
// node's name and the device, and is in the history on the node.
func TestDaemonSetRunsLikeAKubelet(t *testing.T) {
	build(t)
	testutil.CheckNoLeaks(t)
	m := readManifest(t)
	spec := m.daemonSet(t)
	c := spec.Containers[0]

	a := readArchive(t, artifacts.image)
	rootfs := unpack(t, a.files[a.manifest[0].Layers[0]])
	state := t.TempDir()
	shared := t.TempDir() // the node's mounts made after the pod started appear under it
	if err := unix.Mount(shared, shared, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(shared, unix.MNT_DETACH) })
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}

	// The kubelet's ConfigMap volume: files in a timestamped directory,
	// ..data pointing at it, each key a symlink through ..data.
	cm := t.TempDir()
	ts := filepath.Join(cm, "..2026_12_06_00_00_00.000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	var mode os.FileMode = 0o644
	for key, val := range m.configMap(t) {
		if err := os.WriteFile(filepath.Join(ts, key), []byte(val), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
		}
		if err := os.Chmod(filepath.Join(ts, key), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(cm, key)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}

	// The runtime's own mounts of a privileged container, then the volumes.
	p := pod{Rootfs: rootfs, Mounts: []podMount{
		{Source: "/dev", Target: "/dev"},
		{Source: "/sys", Target: "/sys"},
	}}
	hostPaths := map[string]string{"/var/lib/fshealth": state} // the node's state dir, here a scratch one
	for _, vm := range c.VolumeMounts {
		var source string
		for _, v := range spec.Volumes {
			switch {
			case v.Name != vm.Name:
			case v.ConfigMap != nil:
				source = cm
			case v.HostPath != nil:
				source = v.HostPath.Path
				if s, ok := hostPaths[source]; ok {
					source = s
				}
			}
		}
		if source == "" {
			t.Fatalf("volume mount %s: no volume %q this test knows how to provide", vm.MountPath, vm.Name)
		}
		st, err := os.Stat(source)
		if err != nil {
			t.Fatal(err)
		}
		p.Mounts = append(p.Mounts, podMount{Source: source, Target: vm.MountPath, ReadOnly: vm.ReadOnly,
			Rslave: vm.MountPropagation != nil && *vm.MountPropagation == "HostToContainer", File: !st.IsDir()})
	}
	const webhookPort = 18080
	env := map[string]string{"NODE_NAME": "test-node-7", "POD_IP": "127.0.0.1"}
	p.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			t.Fatalf("env %s: only downward-API values are provided here", e.Name)
		}
		if _, ok := env[e.Name]; !ok {
			t.Fatalf("env %s (%s): not provided by this test", e.Name, e.ValueFrom.FieldRef.FieldPath)
		}
		p.Env = append(p.Env, e.Name+"="+env[e.Name])
	}
	p.Argv = []string{"/usr/bin/fshealth"}
	for _, arg := range c.Args {
		for k, v := range env {
			arg = strings.ReplaceAll(arg, "$("+k+")", v)
		}
		p.Argv = append(p.Argv, arg)
	}
	p.Argv = append(p.Argv, fmt.Sprintf("--webhook=http://127.0.0.1:%d/alert", webhookPort))

	// Pdeathsig fires when the thread that started the pod ends: keep this
	// test on one thread (inNetns ends threads of its own).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	specJSON, _ := json.Marshal(p)
	var logs testutil.SyncBuffer
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), podEnv+"="+string(specJSON))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	pid := cmd.Process.Pid

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = inNetns(pid, func() error {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
		DisableKeepAlives: true,
	}}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://127.0.0.1:9718" + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			select {
			case <-exited:
				t.Fatalf("waiting for %s: the pod exited: %v\n%s", what, waitErr, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after %v; the pod's log:\n%s", what, limit, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The startup probe.
	waitFor("200 from /healthz", time.Minute, func() bool { code, _, _ := get("/healthz"); return code == http.StatusOK })

	// The webhook receiver, in the pod's network namespace.
	alerts := make(chan []byte, 16)
	var ln net.Listener
	if err := inNetns(pid, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", webhookPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		alerts <- b
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// A file system the node mounts after the pod started.
	im, err := loopfs.Create(t.TempDir(), "ext4", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Remove(); err != nil {
			t.Error(err)
		}
	})
	mnt := filepath.Join(shared, "data")
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	waitFor("the new file system in the metrics", 30*time.Second, func() bool {
		_, body, _ := get("/metrics")
		return strings.Contains(body, `device="`+im.Dev+`"`)
	})
	if err := os.WriteFile(filepath.Join("/sys/fs/ext4", im.Name, "trigger_fs_error"), []byte("containertest"), 0); err != nil {
		t.Fatal(err)
	}
	var alert struct {
		Host       string
		Filesystem struct {
			Device, FSType string
			Mountpoints    []string
		}
	}
	select {
	case b := <-alerts:
		if err := json.Unmarshal(b, &alert); err != nil {
			t.Fatalf("alert %s: %v", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no alert 30 s after the error; the pod's log:\n%s", logs.String())
	}
	if fs := alert.Filesystem; alert.Host != "test-node-7" || fs.Device != im.Dev || fs.FSType != "ext4" ||
		!slices.Contains(fs.Mountpoints, "/host"+mnt) {
		t.Errorf("alert: %+v; want host test-node-7 and an ext4 event on %s mounted at /host%s (the pod's view)", alert, im.Dev, mnt)
	}

	// The liveness probe still passes; the history on the node has it.
	if code, body, err := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the error: %d %q %v", code, body, err)
	}
	out, err := exec.Command(artifacts.binary, "events", "--json", "--state-dir", state, "--fs", im.Dev).Output()
	if err != nil || !strings.Contains(string(out), `"device":"`+im.Dev+`"`) {
		t.Errorf("fshealth events on the node's state dir: %v\n%s", err, out)
	}

	// A pod stop: SIGTERM, then a clean exit.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("fshealth exited with %v after SIGTERM; log:\n%s", waitErr, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("fshealth still running 30 s after SIGTERM")
	}
	t.Logf("the pod's log:\n%s", logs.String())

	// hostPID: the pod reports the node's mount points of a file system the
	// node's init sees (here the root file system: "/" and whatever PID 1
	// has, not the pod's /etc/fshealth, /var/lib/fshealth, /host...); the
	// loop file system above was mounted in this test's own mount
	// namespace, which PID 1 does not see, so it kept the pod's view.
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	rootDev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	var want []string
	pid1, err := os.ReadFile("/proc/1/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(pid1), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[2] == rootDev {
			want = append(want, f[4])
		}
	}
	// status exits 1: the loop file system is unhealthy.
	out, err = exec.Command(artifacts.binary, "status", "--json", "--state-dir", state).Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("fshealth status: %v, want exit status 1 (a file system unhealthy)", err)
	}
	var status struct {
		Filesystems []struct {
			Device      string
			Mountpoints []string
		}
	}
	if err := json.Unmarshal(out, &status); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fs := range status.Filesystems {
		if slices.Contains(fs.Mountpoints, "/") {
			found = true
			slices.Sort(want)
			got := slices.Sorted(slices.Values(fs.Mountpoints))
			if !slices.Equal(got, want) {
				t.Errorf("the root file system %s: mount points %q, want the node's (PID 1's) %q", fs.Device, got, want)
			}
		}
	}
	if !found {
		t.Errorf("status lists no file system mounted at /: %s", out)
	}
	for _, bad := range []string{"permission denied", "operation not permitted", "read-only file system"} {
		if strings.Contains(strings.ToLower(logs.String()), bad) {
			t.Errorf("the pod's log says %q:\n%s", bad, logs.String())
		}
	}
}
