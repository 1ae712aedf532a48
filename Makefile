# fshealth — see README.md. Every target that touches the kernel needs root.
GO ?= go

.PHONY: all build test demo deps bench bench-latency bench-mount fuzz clean

all: build

build:
	$(GO) build -o bin/fshealth ./cmd/fshealth

# The whole test suite: static checks, then every test. As root the
# privileged tests run on real loop devices; with CI=true a skipped
# privileged test is a failure. Packages run one at a time (-p 1): some
# tests change machine-wide kernel settings for an instant (the fanotify
# queue size, the page cache), which must not hit another package's test.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 ./...

demo:
	$(GO) run ./cmd/fshealth demo

# Debian packages the tests use (e2fsprogs is on every Debian system).
deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs xfsprogs btrfs-progs util-linux gcc python3 prometheus-alertmanager prometheus systemd strace exim4-daemon-light dmsetup mdadm

# Parser benchmarks (events/s, allocations per event).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./fanotify

# End-to-end latency: real errors on a scratch ext4 file system to the
# moment `fshealth watch --json` has written them.
bench-latency: build
	$(GO) run ./cmd/fshealth-bench latency --fshealth bin/fshealth -n 2000 --baseline

# Mount-follow latency: mount(2) of a scratch ext4 file system to the moment
# `fshealth watch --json` has logged that it watches it, with fanotify mount
# events and with the mountinfo fallback (target: 100 ms).
bench-mount: build
	$(GO) run ./cmd/fshealth-bench mount-latency --fshealth bin/fshealth -n 50

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./fanotify

clean:
	rm -rf bin

# Kernel matrix (root; see matrix/README.md): boots Debian's newest 6.1, 6.12,
# 6.18 and 7.x kernels under qemu, runs the kernel-facing tests inside each,
# prints the kernel × test table and writes it to matrix/kernel-matrix.md and
# into README.md.
# Downloads are cached in /var/cache/fshealth-matrix (FSHEALTH_MATRIX_CACHE).
.PHONY: kernel-matrix
kernel-matrix:
	$(GO) run ./matrix -markdown matrix/kernel-matrix.md -readme README.md $(MATRIXFLAGS)
