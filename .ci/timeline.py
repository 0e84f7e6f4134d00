#!/usr/bin/env python3
"""The timeline of a CI run: when each phase started and ended, and how idle the CPU was meanwhile.

Phases are marked by appending lines to a file (CI_TIMELINE), from .ci/run (bash) and from the
test suites (tests/conftest.py), in one format:

    <unix time> <idle CPU ticks> <total CPU ticks> start|end <phase name...>

    python3 .ci/timeline.py mark FILE start|end PHASE...   append a mark
    python3 .ci/timeline.py report FILE                    print the table

The table lists the phases in the order they started: minutes from the run's first mark, their
duration, and the share of both cores left idle while they ran (from /proc/stat). A phase that
never ended (the run stopped) is shown as such.
"""

import sys
import time


def cpu_ticks():
    """(idle, total) jiffies of all CPUs since boot; iowait counts as idle."""
    with open("/proc/stat") as stat:
        fields = [int(n) for n in stat.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)


def mark_line(event, phase):
    idle, total = cpu_ticks()
    return f"{time.time():.1f} {idle} {total} {event} {phase}\n"


def mark(path, event, phase):
    with open(path, "a") as handle:
        handle.write(mark_line(event, phase))


def read(path):
    marks = []
    with open(path) as handle:
        for line in handle:
            fields = line.split(maxsplit=4)
            if len(fields) == 5 and fields[3] in ("start", "end"):
                marks.append((float(fields[0]), int(fields[1]), int(fields[2]), fields[3], fields[4].strip()))
    return marks


def report(path):
    marks = read(path)
    if not marks:
        return "(no timeline marks)"
    first = marks[0][0]
    phases, order = {}, []
    for when, idle, total, event, name in marks:
        if event == "start":
            phases[name] = {"start": (when, idle, total)}
            order.append(name)
        elif name in phases:
            phases[name]["end"] = (when, idle, total)
    last = max(m[0] for m in marks)
    rows = [("phase", "start", "end", "minutes", "CPU idle")]
    for name in order:
        start = phases[name]["start"]
        end = phases[name].get("end")
        if end is None:
            rows.append((name, f"{(start[0] - first) / 60:.1f}", "-", f">{(last - start[0]) / 60:.1f}", "never ended"))
            continue
        ticks = end[2] - start[2]
        idle = f"{100 * (end[1] - start[1]) / ticks:.0f} %" if ticks > 0 else "-"
        minutes = [f"{(t - first) / 60:.1f}" for t in (start[0], end[0])]
        rows.append((name, *minutes, f"{(end[0] - start[0]) / 60:.1f}", idle))
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>7}  {r[4]:>11}" for r in rows]
    lines.append(f"{'whole run':<{width}}  {0:>6.1f}  {(last - first) / 60:>6.1f}  {(last - first) / 60:>7.1f}")
    return "\n".join(lines)


def main(argv):
    if len(argv) >= 4 and argv[1] == "mark" and argv[3] in ("start", "end"):
        mark(argv[2], argv[3], " ".join(argv[4:]))
        return 0
    if len(argv) == 3 and argv[1] == "report":
        print(report(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
