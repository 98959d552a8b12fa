#!/usr/bin/env python3
"""CPU per event of a running process, in total and per thread name (issue 6, figure 1).

On a machine shared with other work, wall-clock throughput says little; the CPU a
process spends per event does not depend on how much of the machine it got.
  cpu_per_event.py snapshot PID FILE      utime+stime of the process and of each thread
  cpu_per_event.py report PID FILE EVENTS CPU-µs per event since the snapshot
The total comes from /proc/PID/stat (it includes threads that have ended); the
stages from /proc/PID/task/*/stat, summed by thread name (`bf-packer`, `bf-piper`,
...; the packer's DuckDB workers are `bf-packer-duck`). A thread that ended between
snapshot and report is only in the total, which the "other" line makes visible.
"""
import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stat_ticks(path):
    """(comm, utime+stime in ticks) from a /proc stat file."""
    with open(path) as f:
        text = f.read()
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return comm, int(fields[11]) + int(fields[12])


def snapshot(pid):
    _, total = stat_ticks(f"/proc/{pid}/stat")
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            threads[tid] = stat_ticks(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return {"total": total, "threads": threads}


def report(pid, before, events):
    after = snapshot(pid)
    by_name = {}
    for tid, (comm, ticks) in after["threads"].items():
        start = before["threads"].get(tid, [comm, 0])[1]
        by_name[comm] = by_name.get(comm, 0) + ticks - start
    total = after["total"] - before["total"]
    named = sum(by_name.values())
    us = lambda ticks: ticks / TICK * 1e6 / events
    print(f"CPU of the process: {total / TICK:.1f} s for {events:,} events = {us(total):.2f} CPU-us/event"
          f" (target for 200k/s on 2 cores: <= 10)")
    rows = sorted(by_name.items(), key=lambda kv: -kv[1])
    if total - named > 0:
        rows.append(("(threads ended meanwhile)", total - named))
    print(f"  {'thread':<28} {'CPU s':>8} {'us/event':>9} {'share':>6}")
    for name, ticks in rows:
        if ticks <= 0:
            continue
        print(f"  {name:<28} {ticks / TICK:8.1f} {us(ticks):9.2f} {100 * ticks / max(total, 1):5.1f}%")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "snapshot":
        with open(sys.argv[3], "w") as f:
            json.dump(snapshot(sys.argv[2]), f)
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        with open(sys.argv[3]) as f:
            before = json.load(f)
        report(sys.argv[2], before, int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
