"""The Python tracker's sampling path, for the benchmarks' baseline.

Mimics performance_metrics.system_resource_tracker: psutil.process_iter(attrs=["cmdline"]),
the command line stripped and joined by spaces, fnmatch against each filter, then for each
match (in process.oneshot()) cpu_times, cmdline, create_time and memory_percent, and a
QUOTE_ALL csv append to the data file.

usage:
  python3 psutil_tracker.py serve FILTER[,FILTER...] OUT_FILE
      reads a count N per line on stdin, takes N samples, answers "NANOSECONDS ROWS"
      (time for the N samples, rows of the last one)
  python3 psutil_tracker.py every SECONDS FILTER[,FILTER...] OUT_FILE
      samples at a fixed rate until killed, as the tracker daemon does
"""

import csv
import fnmatch
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
        try:
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
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    with open(path, "a", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    return len(rows)


def parse_filters(text):
    return [f.strip() for f in text.split(",") if f.strip()]


def serve(filters, path):
    for line in sys.stdin:
        n = int(line)
        rows = 0
        start = time.perf_counter_ns()
        for _ in range(n):
            rows = sample(filters, path)
        elapsed = time.perf_counter_ns() - start
        print(elapsed, rows, flush=True)


def every(interval, filters, path):
    start = time.monotonic()
    k = 0
    while True:
        sample(filters, path)
        k += 1
        time.sleep(max(0.0, start + k * interval - time.monotonic()))


def main():
    if sys.argv[1] == "serve":
        serve(parse_filters(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "every":
        every(float(sys.argv[2]), parse_filters(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
