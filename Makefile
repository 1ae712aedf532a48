# fshealth — see README.md. Every target that touches the kernel needs root.
GO ?= go

.PHONY: all build test demo deps bench bench-latency bench-first-alert bench-mount bench-mounts bench-history fuzz clean man deb image mutation

all: build

# Version stamping (fshealth --version): VERSION is the newest v* tag without
# its "v" ("1.2.0", "1.2.0+3.g0123abc" after it), else a snapshot version
# "0.0~gitYYYYMMDD.COMMIT"; DATE is the build date, from SOURCE_DATE_EPOCH if
# set (reproducible builds).
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" | sed 's/-\([0-9]*\)-g/+\1.g/' || \
	echo "0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null).$$(git rev-parse --short=12 HEAD 2>/dev/null)")
VERSION := $(VERSION)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
COMMIT := $(COMMIT)
ifndef SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH := $(shell date +%s)
endif
export SOURCE_DATE_EPOCH
DATE ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
DATE := $(DATE)
CLI := github.com/fshealth/fshealth/internal/cli
LDFLAGS := -X $(CLI).Version=$(VERSION) -X $(CLI).Commit=$(COMMIT) -X $(CLI).Date=$(DATE)
ARCH ?= $(shell $(GO) env GOARCH)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/fshealth ./cmd/fshealth

# Man pages (fshealth(8), one per subcommand, fshealth.toml(5) from
# docs/configuration.md) and bash/zsh/fish completions, generated from the
# command line, into build/docs.
man:
	rm -rf build/docs
	$(GO) run -ldflags '$(LDFLAGS)' ./internal/gendocs -out build/docs

# The Debian package fshealth_$(VERSION)_$(ARCH).deb in build/: a static
# binary, the unit (dist/fshealth.service with /usr/bin/fshealth), a
# conffile with every line of docs/fshealth.example.toml commented out (so
# it changes nothing), man pages, completions. nfpm is a Go tool dependency
# of tools/go.mod.
deb:
	rm -rf build/deb build/fshealth_*.deb && mkdir -p build/deb
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o build/deb/fshealth ./cmd/fshealth
	$(GO) run -ldflags '$(LDFLAGS)' ./internal/gendocs -out build/deb
	gzip -9n build/deb/man/*
	sed 's|/usr/local/bin/fshealth|/usr/bin/fshealth|g' dist/fshealth.service > build/deb/fshealth.service
	{ echo '# /etc/fshealth/fshealth.toml: every setting is commented out, so fshealth runs'; \
	  echo '# with its defaults. Uncomment and edit; see fshealth.toml(5) and'; \
	  echo '# `fshealth check-config --show`.'; echo '#'; \
	  sed -E 's/^([[:space:]]*[^#[:space:]])/# \1/' docs/fshealth.example.toml; } > build/deb/fshealth.toml
	printf 'fshealth (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- fshealth maintainers <fshealth@localhost.invalid>  %s\n' \
	  '$(VERSION)' '$(COMMIT)' "$$(date -u -R -d @$(SOURCE_DATE_EPOCH))" | gzip -9n > build/deb/changelog.gz
	VERSION='$(VERSION)' ARCH='$(ARCH)' $(GO) tool -modfile=tools/go.mod nfpm package -f dist/deb/nfpm.yaml -p deb -t build/
	@ls build/fshealth_*.deb

# The whole test suite: static checks, then every test. As root the
# privileged tests run on real loop devices; with CI=true a skipped
# privileged test is a failure. Packages run one at a time (-p 1): some
# tests change machine-wide kernel settings for an instant (the fanotify
# queue size, the page cache), which must not hit another package's test.
# internal/debtest boots Debian 12 and 13 guests with systemd as PID 1
# (their roots made once with debootstrap and cached, the kernels the
# matrix's): the package runs longer than go test's default 10 minutes.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 60m ./...

# Mutation testing (gremlins, a Go tool dependency of tools/go.mod) of the
# packages that parse kernel data, classify, decide, redact and store, one
# package at a time; prints each package's efficacy and run time and fails
# below the thresholds of tools/mutation/thresholds.txt (surviving mutants
# that are equivalent are listed, with the reason, in
# tools/mutation/equivalent.txt). Slow (see docs/dev/testing.md): not part of
# make test. MUTATIONFLAGS='-pkg internal/kmsg -workers 2' narrows or widens it.
mutation:
	cd tools && $(GO) run ./mutation -root .. $(MUTATIONFLAGS)

demo:
	$(GO) run ./cmd/fshealth demo

# Debian packages the tests use (e2fsprogs is on every Debian system).
deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs xfsprogs btrfs-progs util-linux gcc python3 prometheus-alertmanager prometheus systemd strace exim4-daemon-light dmsetup mdadm lvm2 cryptsetup-bin lintian debootstrap groff-base smartmontools qemu-system-x86 xz-utils

# The container image (docs/kubernetes.md): build/fshealth-image.tar, for
# `docker load` or `podman load`, tagged fshealth:$(IMAGE_TAG), built without a
# container engine by tools/image.
IMAGE_TAG ?= $(subst +,-,$(subst ~,-,$(VERSION)))
image:
	rm -rf build/image build/fshealth-image.tar && mkdir -p build/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o build/image/fshealth ./cmd/fshealth
	cd tools && $(GO) run ./image -binary ../build/image/fshealth -tag 'fshealth:$(IMAGE_TAG)' \
	  -version '$(VERSION)' -revision '$(COMMIT)' -arch '$(ARCH)' -out ../build/fshealth-image.tar
	@ls build/fshealth-image.tar

# In-process benchmarks: the parser (events/s, allocations per event),
# enrichment, ext4's record, the line encodings.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./fanotify ./internal/enrich ./internal/event

# End to end, each against a floor measured in the same run
# (cmd/fshealth-bench, bench/minreader.c; docs/benchmarks.md):
# error raised → `fshealth watch --json` line, next to a minimal C reader;
bench-latency: build
	$(GO) run ./cmd/fshealth-bench latency -fshealth bin/fshealth -n 5000 -rounds 10

# error on a file system that had none → webhook body received, history
# committed first, next to the C reader + 4 KiB write+fdatasync + one POST;
bench-first-alert: build
	$(GO) run ./cmd/fshealth-bench first-alert -fshealth bin/fshealth -n 30

# mount(2) of a scratch ext4 → `fshealth watch` logs that it watches it.
bench-mount: build
	$(GO) run ./cmd/fshealth-bench mount -fshealth bin/fshealth -n 50

# Mounts at container-host scale: one ext4 bind-mounted 100, 1,000 and
# 10,000 times, 1,000 more added and removed in bulk while following, with
# mount events + statmount(2) and with the mountinfo fallback: ready time,
# CPU per mount event, peak RSS, against statmount(2) of one mount id and
# one read of /proc/self/mountinfo (as root; docs/benchmarks.md).
bench-mounts:
	$(GO) run ./internal/mounts/mountbench -sizes 100,1000,10000 -burst 1000

# A big history: 1,000,000 events over a year; events, status, check and
# report on it, and the daemon's commit, against same-run floors.
bench-history: build
	$(GO) run ./internal/store/benchhistory --fshealth bin/fshealth

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./fanotify

clean:
	rm -rf bin build

# Kernel matrix (root; see matrix/README.md): boots Debian's newest 6.1, 6.12,
# 6.18 and 7.x kernels under qemu, runs the kernel-facing tests inside each,
# prints the kernel × test table and writes it to matrix/kernel-matrix.md and
# into README.md.
# Downloads are cached in /var/cache/fshealth-matrix (FSHEALTH_MATRIX_CACHE).
.PHONY: kernel-matrix
kernel-matrix:
	$(GO) run ./matrix -markdown matrix/kernel-matrix.md -readme README.md $(MATRIXFLAGS)
