// Command image builds fshealth's container image without a container
// engine: one layer holding the static binary, the empty directories it uses
// and the CA bundle of the build host (for https webhooks), on no base image —
// no shell, no package manager. It writes a `docker load` / `podman load`
// archive.
//
//	go run ./image -binary ../build/image/fshealth -tag fshealth:1.0 -out ../build/fshealth-image.tar
//
// Every file's time is $SOURCE_DATE_EPOCH (0 when unset), so the same binary
// gives the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	binary := flag.String("binary", "", "the static fshealth binary (CGO_ENABLED=0)")
	tag := flag.String("tag", "fshealth:latest", "the image's name and tag")
	out := flag.String("out", "fshealth-image.tar", "the archive to write")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", `CA certificates copied to the same path in the image ("" for none)`)
	version := flag.String("version", "", "org.opencontainers.image.version label")
	revision := flag.String("revision", "", "org.opencontainers.image.revision label")
	arch := flag.String("arch", runtime.GOARCH, "the binary's architecture")
	flag.Parse()
	if err := build(*binary, *tag, *out, *caBundle, *version, *revision, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(binary, tag, out, caBundle, version, revision, arch string) error {
	if binary == "" {
		return fmt.Errorf("-binary is required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", tag, err)
	}
	epoch := int64(0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
	}
	mtime := time.Unix(epoch, 0).UTC()
	files := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/fshealth/", mode: 0o755},
		{name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755},
		{name: "usr/bin/fshealth", mode: 0o755, from: binary},
		{name: "var/", mode: 0o755},
		{name: "var/lib/", mode: 0o755},
		{name: "var/lib/fshealth/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
	}
	if caBundle != "" {
		files = append(files,
			entry{name: "etc/ssl/", mode: 0o755},
			entry{name: "etc/ssl/certs/", mode: 0o755},
			entry{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, from: caBundle})
	}
	layerTar, err := layer(files, mtime)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: mtime}
	cf.Config.Entrypoint = []string{"/usr/bin/fshealth"}
	cf.Config.Cmd = []string{"daemon"}
	cf.Config.User = "0:0"
	cf.Config.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "fshealth",
		"org.opencontainers.image.source":   "https://github.com/fshealth/fshealth",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": revision,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// entry is one file or directory (name ending in "/") of the layer; from is
// the host file a regular file's content is copied from.
type entry struct {
	name string
	mode int64
	from string
}

func layer(files []entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeDir}
		var content []byte
		if f.from != "" {
			var err error
			if content, err = os.ReadFile(f.from); err != nil {
				return nil, err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
