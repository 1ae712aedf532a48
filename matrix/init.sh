#!/bin/busybox sh
# /init of the kernel-matrix guests (see matrix/README.md). It loads the
# modules listed in /matrix/modules, runs each test binary of /matrix/plan
# between markers on the serial console, and powers off. The host reads the
# results from the console log: the exit status of qemu says nothing.
/bin/busybox --install -s /bin
echo
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777,size=75% tmpfs /tmp
ip link set lo up

mark() { echo "@@MATRIX $*"; }

mark KERNEL "$(uname -r)" "$(uname -v)"
while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/matrix/$mod.ko" || mark MODULE-FAILED "$mod"
done < /matrix/modules

. /matrix/env
export CI=true HOME=/root TMPDIR=/tmp FSHEALTH_BINARY=/matrix/bin/fshealth FSHEALTH_KERNEL_MATRIX=1
while read -r name bin run; do
	mark BEGIN "$name"
	start=$(date +%s)
	"/matrix/tests/$bin" -test.v -test.count=1 -test.timeout="$TEST_TIMEOUT" -test.run "$run" </dev/null 2>&1
	rc=$?
	mark END "$name" rc=$rc seconds=$(($(date +%s) - start))
done < /matrix/plan

mark DMESG
dmesg | tail -n 200
mark DONE
sync
poweroff -f
