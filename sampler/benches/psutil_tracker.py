"""The Python tracker's sampling path, for the benchmark's baseline.

Mimics performance_metrics.system_resource_tracker: psutil.process_iter(attrs=["cmdline"]),
the command line stripped and joined by spaces, fnmatch against each filter, then for each
match (in process.oneshot()) cpu_times, cmdline, create_time and memory_percent, and a
QUOTE_ALL csv append to the data file. Prints one JSON line with the mean time per sample.

usage: python3 psutil_tracker.py FILTER[,FILTER...] ITERATIONS OUT_FILE
"""

import csv
import fnmatch
import json
import sys
import time

import psutil


def format_command(cmd_list):
    return " ".join([cmd.strip() for cmd in cmd_list]).strip()


def sample(filters, path):
    processes = []
    for process in psutil.process_iter(attrs=["cmdline"]):
        try:
            cmdline = process.info.get("cmdline")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if not cmdline:
            continue
        formatted = format_command(cmdline)
        if not formatted:
            continue
        if any(fnmatch.fnmatch(formatted, pattern) for pattern in filters):
            processes.append(process)
    rows = []
    for process in processes:
        with process.oneshot():
            cpu = process.cpu_times()
            rows.append(
                (
                    time.clock_gettime_ns(time.CLOCK_REALTIME),
                    format_command(process.cmdline()),
                    process.create_time(),
                    cpu.user,
                    cpu.system,
                    process.memory_percent(),
                )
            )
    with open(path, "a", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    return len(rows)


def main():
    filters = [f.strip() for f in sys.argv[1].split(",") if f.strip()]
    iterations = int(sys.argv[2])
    path = sys.argv[3]
    for _ in range(5):
        matched = sample(filters, path)
    start = time.perf_counter()
    for _ in range(iterations):
        matched = sample(filters, path)
    elapsed = time.perf_counter() - start
    print(json.dumps({"per_sample_us": elapsed / iterations * 1e6, "matched": matched}))


if __name__ == "__main__":
    main()
