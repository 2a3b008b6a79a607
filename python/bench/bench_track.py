"""Cost of one tracked call from Python, all figures from the same run.

    python python/bench/bench_track.py [--number N] [--repeat R]

Measures, per call of a one-argument function that returns its argument:
- untracked: the plain function;
- tracking off: what `RobotActivityTracker(..., should_track=False).track(...)` returns;
- tracking on: the decorated function (one record into the ring per call);
- tracking on, async: `await` of a decorated coroutine function, against the same
  coroutine undecorated;
- the old package's way: its decorator (wall-clock and perf_counter reads, a dataclass
  record appended to a list) plus the `store()` robot-server calls after every tracked call
  (open the CSV in append mode, write the row with csv.writer, close).

Each figure is the best of R repeats of N calls (timeit), in ns per call. The ring and the
old package's CSV live in a temporary directory that is removed at the end. The ring is
made large enough that no record is dropped (checked).
"""

import argparse
import asyncio
import csv
import dataclasses
import logging
import os
import shutil
import tempfile
import time
import timeit
import typing
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="perf-python-bench-"))
os.environ["OT_PERFORMANCE_METRICS_SHM_DIR"] = str(_tmp / "shm")
os.environ["OT_PERFORMANCE_METRICS_STORAGE_DIR"] = str(_tmp)

from performance_metrics import RobotActivityTracker, _native  # noqa: E402

_log = logging.getLogger("bench.old_package")


@dataclasses.dataclass(frozen=True)
class _RawActivityData:
    state: str
    func_start: int
    duration: int

    def csv_row(self) -> typing.Tuple[str, int, int]:
        return (self.state, self.func_start, self.duration)


class _OldTracker:
    """The Python package's RobotActivityTracker and MetricsStore, reduced to the work done
    per call: decorator bookkeeping plus one file append per store()."""

    def __init__(self, storage_dir: Path) -> None:
        self._data: typing.List[_RawActivityData] = []
        self._file = storage_dir / "robot_activity_data"
        self._file.touch()

    def track(self, state: str) -> typing.Callable[[typing.Callable[..., typing.Any]], typing.Callable[..., typing.Any]]:
        def decorator(func: typing.Callable[..., typing.Any]) -> typing.Callable[..., typing.Any]:
            def wrapper(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
                func_start = time.clock_gettime_ns(time.CLOCK_REALTIME)
                t0 = time.perf_counter_ns()
                try:
                    result = func(*args, **kwargs)
                finally:
                    self._data.append(_RawActivityData(state, func_start, time.perf_counter_ns() - t0))
                return result

            return wrapper

        return decorator

    def store(self) -> None:
        stored = self._data.copy()
        self._data.clear()
        rows = [d.csv_row() for d in stored]
        with open(self._file, "a") as f:
            _log.debug(f"Writing {len(rows)} rows to {self._file}")
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    number, repeat = args.number, args.repeat

    # Room for every record of the "on" figures, so none is dropped for a full ring.
    needed = 2 * number * repeat + 16
    capacity = 1 << max(needed - 1, 1).bit_length()
    recording, why_not = _native.setup("bench", capacity)
    if not recording:
        raise SystemExit(f"tracking could not be set up: {why_not}")

    on = RobotActivityTracker(_tmp, should_track=True)
    off = RobotActivityTracker(_tmp, should_track=False)
    old = _OldTracker(_tmp)

    def plain(x: int) -> int:
        return x

    async def coro(x: int) -> int:
        return x

    tracked_on = on.track("CALIBRATING")(plain)
    tracked_off = off.track("CALIBRATING")(plain)
    tracked_old = old.track("CALIBRATING")(plain)
    async_on = on.track("RUNNING_PROTOCOL")(coro)

    def old_way(x: int) -> int:
        try:
            return typing.cast(int, tracked_old(x))
        finally:
            old.store()

    def best(stmt: typing.Callable[[], object], n: int = number) -> float:
        return min(timeit.repeat(stmt, number=n, repeat=repeat)) / n * 1e9

    def best_async(func: typing.Callable[[int], typing.Awaitable[int]]) -> float:
        async def loop(n: int) -> float:
            t0 = time.perf_counter_ns()
            for i in range(n):
                await func(i)
            return (time.perf_counter_ns() - t0) / n

        return min(asyncio.run(loop(number)) for _ in range(repeat))

    results = [
        ("untracked call", best(lambda: plain(1))),
        ("tracking off (function returned as is)", best(lambda: tracked_off(1))),
        ("tracking on (record into the ring)", best(lambda: tracked_on(1))),
        ("untracked await", best_async(coro)),
        ("tracking on, async def", best_async(async_on)),
        ("old package: decorator + store() per call", best(lambda: old_way(1), max(number // 20, 1000))),
        ("time.monotonic_ns() alone", best(time.monotonic_ns)),
    ]
    counters = _native.counters()
    assert counters is not None
    claimed, _, dropped = counters
    for label, ns in results:
        print(f"{label:45s} {ns:9.1f} ns/call")
    base = results[0][1]
    print(f"{'tracking on minus untracked':45s} {results[2][1] - base:9.1f} ns/call")
    print(f"old package / tracking on: {results[5][1] / results[2][1]:.0f}x")
    print(f"records committed {claimed}, dropped {dropped}")
    if dropped:
        raise SystemExit("records were dropped: the ring was too small for the run")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(_tmp, ignore_errors=True)
