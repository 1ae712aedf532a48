#!/usr/bin/env python3
"""Per-error breakdown of a profiled `fshealth-bench latency` run.

    FSHEALTH_BENCH_PROFILE=/tmp/prof go run ./cmd/fshealth-bench latency -n 2000 [--pin cross]
    go tool trace -d=parsed /tmp/prof/trace.out > /tmp/prof/parsed.txt
    python3 bench/trace-breakdown.py /tmp/prof

The bench writes bench-timeline.tsv (CLOCK_MONOTONIC ns just before each
write(2) to trigger_fs_error and just after it read the line); the profiled
fshealth writes an execution trace whose timestamps are CLOCK_MONOTONIC too.
For each measured error this lines up, for goroutine 1 (the one running
watch.Run): when the runtime made it runnable (fanotify fd readable), when it
started the write(2) of the NDJSON line, when that returned, and when the
bench had the line. `go tool trace -d=parsed` is a debugging format: if a Go
release changes it, adjust the regular expression below.
"""
import bisect
import re
import sys

TRANSITION = re.compile(
    r'^M=-?\d+ P=-?\d+ G=-?\d+ StateTransition Time=(\d+) GoID=1 (\S+) Reason="([^"]*)"')


def load_trace(path):
    """Returns [time, transition, reason, [stack functions]] for goroutine 1."""
    evs, cur, in_stack = [], None, False
    with open(path) as f:
        for line in f:
            if line.startswith('M='):
                m = TRANSITION.match(line)
                cur = [int(m.group(1)), m.group(2), m.group(3), []] if m else None
                if cur:
                    evs.append(cur)
                in_stack = False
            elif cur is None:
                continue
            elif line.startswith('TransitionStack='):
                in_stack = True
            elif line.startswith('Stack='):
                in_stack = False
            elif in_stack and line.startswith('\t') and not line.startswith('\t\t'):
                cur[3].append(line.strip().split(' @')[0])
    return evs


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] / 1000


def main(d):
    evs = load_trace(d + '/parsed.txt')
    times = [e[0] for e in evs]
    timeline = [tuple(map(int, l.split())) for l in open(d + '/bench-timeline.tsv') if not l.startswith('#')]
    rows = []
    for t0, t1 in timeline:
        i = bisect.bisect_left(times, t0)
        runnable = running = w0 = w1 = None
        sleeps = preads = 0
        while i < len(evs) and evs[i][0] <= t1:
            t, tr, reason, stack = evs[i]
            if tr == 'Waiting->Runnable' and runnable is None:
                runnable = t
            elif tr == 'Runnable->Running' and runnable is not None and running is None:
                running = t
            elif tr == 'Running->Waiting' and reason == 'sleep':
                sleeps += 1
            elif tr == 'Running->Syscall' and running is not None:
                s = ' '.join(stack)
                if 'Write' in s and w0 is None:
                    w0 = t
                elif 'Pread' in s:
                    preads += 1
            elif tr == 'Syscall->Running' and w0 is not None and w1 is None:
                w1 = t
            i += 1
        if None in (runnable, running, w0, w1):
            continue  # the event was read without parking first, or not traced
        rows.append((runnable - t0, running - runnable, w0 - running, w1 - w0, t1 - w1, t1 - t0, sleeps, preads))
    if not rows:
        sys.exit('no error could be lined up with the trace')
    print('%d of %d errors lined up; sysfs preads per error (p50): %d'
          % (len(rows), len(timeline), sorted(r[7] for r in rows)[len(rows) // 2]))
    names = ['write(2) to trigger_fs_error starts -> goroutine runnable',
             'runnable -> running',
             'running -> write(2) of the line starts (read, enrich, JSON)',
             'write(2) of the line',
             'write(2) done -> bench has read the line',
             'total']
    for label, keep in (('errors without an enrich sleep', lambda r: r[6] == 0),
                        ('errors with an enrich sleep (errors_count read too early)', lambda r: r[6] > 0)):
        rs = [r for r in rows if keep(r)]
        if not rs:
            continue
        print('-- %s: %d' % (label, len(rs)))
        for k, name in enumerate(names):
            v = [r[k] for r in rs]
            print('  %-62s p50 %7.1f  p90 %7.1f  p99 %7.1f µs' % (name, pct(v, 50), pct(v, 90), pct(v, 99)))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
