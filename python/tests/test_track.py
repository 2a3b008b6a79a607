"""The decorator's behaviour in this process, checked against the rows perf-drainer writes."""

import asyncio
import functools
import inspect
import logging
import os
import threading
import time
import typing
from pathlib import Path

import pytest

import performance_metrics
from performance_metrics import RobotActivityState, RobotActivityTracker, SupportsTracking
from performance_metrics import _native, _robot_activity_tracker

from conftest import STORAGE_DIR, Drain

TRACKER = RobotActivityTracker(STORAGE_DIR, should_track=True)
OFF = RobotActivityTracker(STORAGE_DIR, should_track=False)


class Boom(Exception):
    pass


def _wall_ns() -> int:
    return time.time_ns()


def test_exports_match_the_python_package() -> None:
    assert set(performance_metrics.__all__) >= {
        "RobotActivityTracker", "RobotActivityState", "SupportsTracking", "RobotContextState",
    }
    assert RobotActivityTracker.METADATA_NAME == "robot_activity_data"
    assert SupportsTracking in RobotActivityTracker.__mro__


def test_state_literal_is_exactly_the_producer_states() -> None:
    assert typing.get_args(RobotActivityState) == tuple(_native.state_names())
    assert typing.get_args(RobotActivityState) == (
        "ANALYZING_PROTOCOL", "GETTING_CACHED_ANALYSIS", "RUNNING_PROTOCOL",
        "CALIBRATING", "ROBOT_STARTING_UP", "ROBOT_SHUTTING_DOWN",
    )


def test_tracking_is_on_and_the_ring_is_in_the_test_directory() -> None:
    ring = _native.ring_path()
    assert ring is not None
    assert Path(ring).parent == Path(os.environ["OT_PERFORMANCE_METRICS_SHM_DIR"])


def test_sync_call_returns_its_value_and_records_one_row(drain: Drain) -> None:
    @TRACKER.track("CALIBRATING")
    def add(a: int, b: int = 0, *, c: int = 0) -> int:
        time.sleep(0.01)
        return a + b + c

    before = _wall_ns()
    assert add(1, 2, c=3) == 6
    after = _wall_ns()

    [(state, start, duration)] = drain()
    assert state == "CALIBRATING"
    assert before <= start <= after
    assert 10_000_000 <= duration <= after - before


def test_every_state_name_lands_in_the_csv(drain: Drain) -> None:
    for name in typing.get_args(RobotActivityState):
        TRACKER.track(name)(lambda: None)()
    assert [row[0] for row in drain()] == list(typing.get_args(RobotActivityState))


def test_async_call_is_awaited_inside_the_span(drain: Drain) -> None:
    @TRACKER.track("ANALYZING_PROTOCOL")
    async def analyze(x: int) -> int:
        await asyncio.sleep(0.02)
        return x * 2

    assert inspect.iscoroutinefunction(analyze)
    before = _wall_ns()
    assert asyncio.run(analyze(21)) == 42
    after = _wall_ns()

    [(state, start, duration)] = drain()
    assert state == "ANALYZING_PROTOCOL"
    assert before <= start <= after
    assert 20_000_000 <= duration <= after - before


def test_concurrent_async_calls_each_get_their_own_span(drain: Drain) -> None:
    @TRACKER.track("RUNNING_PROTOCOL")
    async def step(delay_ms: int) -> int:
        await asyncio.sleep(delay_ms / 1000)
        return delay_ms

    delays = [10, 40, 20, 30, 50]

    async def main() -> typing.List[int]:
        return list(await asyncio.gather(*(step(d) for d in delays)))

    assert asyncio.run(main()) == delays
    rows = drain()
    assert [r[0] for r in rows] == ["RUNNING_PROTOCOL"] * len(delays)
    # They ran at once, so they finish (and are recorded) shortest first; each span
    # covers its own sleep, not its neighbours'.
    durations = [r[2] for r in rows]
    for delay, duration in zip(sorted(delays), durations):
        assert delay * 1_000_000 <= duration < (delay + 200) * 1_000_000
    assert durations == sorted(durations)


def test_sync_exception_propagates_unchanged_and_is_recorded(drain: Drain) -> None:
    error = Boom("sync")

    @TRACKER.track("CALIBRATING")
    def fail() -> None:
        raise error

    with pytest.raises(Boom) as info:
        fail()
    assert info.value is error
    # The traceback still reaches the function that raised.
    assert info.traceback[-1].name == "fail"
    assert [r[0] for r in drain()] == ["CALIBRATING"]


def test_async_exception_propagates_unchanged_and_is_recorded(drain: Drain) -> None:
    error = Boom("async")

    @TRACKER.track("GETTING_CACHED_ANALYSIS")
    async def fail() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(Boom) as info:
        asyncio.run(fail())
    assert info.value is error
    assert [r[0] for r in drain()] == ["GETTING_CACHED_ANALYSIS"]


def test_cancelled_coroutine_is_recorded_up_to_the_cancellation(drain: Drain) -> None:
    @TRACKER.track("RUNNING_PROTOCOL")
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(forever())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    [(state, _, duration)] = drain()
    assert state == "RUNNING_PROTOCOL"
    assert 10_000_000 <= duration < 3_000_000_000


def test_threads_record_every_call(drain: Drain) -> None:
    @TRACKER.track("ROBOT_STARTING_UP")
    def work() -> None:
        pass

    def loop() -> None:
        for _ in range(500):
            work()

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in drain()] == ["ROBOT_STARTING_UP"] * 2000


def test_disabled_tracker_returns_the_function_itself(drain: Drain) -> None:
    def plain() -> int:
        return 1

    async def coro() -> int:
        return 2

    assert OFF.track("CALIBRATING")(plain) is plain
    assert OFF.track("RUNNING_PROTOCOL")(coro) is coro
    assert plain() == 1 and asyncio.run(coro()) == 2
    OFF.store()
    assert drain() == []


def test_wrapper_keeps_the_function_metadata() -> None:
    def documented(a: int, b: str = "x") -> str:
        """The docstring."""
        return b * a

    documented.custom = "kept"  # type: ignore[attr-defined]

    async def documented_async(a: int) -> int:
        """Async docstring."""
        return a

    for func in (documented, documented_async):
        wrapped = TRACKER.track("CALIBRATING")(func)
        assert wrapped is not func
        assert wrapped.__wrapped__ is func  # type: ignore[attr-defined]
        for attr in functools.WRAPPER_ASSIGNMENTS:
            assert getattr(wrapped, attr) == getattr(func, attr), attr
        assert inspect.signature(wrapped) == inspect.signature(func)
    assert TRACKER.track("CALIBRATING")(documented).custom == "kept"  # type: ignore[attr-defined]


def test_methods_bind_like_plain_functions(drain: Drain) -> None:
    class Analyzer:
        def __init__(self) -> None:
            self.factor = 3

        @TRACKER.track("ANALYZING_PROTOCOL")
        def run(self, x: int) -> int:
            return self.factor * x

        @TRACKER.track("ANALYZING_PROTOCOL")
        async def run_async(self, x: int) -> int:
            return self.factor * x

    a = Analyzer()
    assert a.run(2) == 6
    assert asyncio.run(a.run_async(3)) == 9
    assert [r[0] for r in drain()] == ["ANALYZING_PROTOCOL"] * 2


@pytest.mark.parametrize("tracker", [TRACKER, OFF], ids=["on", "off"])
@pytest.mark.parametrize("name", ["calibrating", "HOMING", "", "CALIBRATING "])
def test_unknown_state_is_a_value_error_at_decoration(
    tracker: RobotActivityTracker, name: str
) -> None:
    with pytest.raises(ValueError, match="unknown robot activity state") as info:
        tracker.track(name)  # type: ignore[arg-type]
    assert "CALIBRATING" in str(info.value)


def test_store_is_a_no_op_that_writes_nothing(tmp_path: Path, drain: Drain) -> None:
    tracker = RobotActivityTracker(tmp_path, should_track=True)

    @tracker.track("CALIBRATING")
    def work() -> None:
        pass

    work()
    assert tracker.store() is None
    assert list(tmp_path.iterdir()) == []
    # The record went to the ring all the same.
    assert [r[0] for r in drain()] == ["CALIBRATING"]


def test_storage_location_elsewhere_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_robot_activity_tracker, "_warned_storage", False)
    caplog.set_level(logging.WARNING, logger="performance_metrics")

    RobotActivityTracker(STORAGE_DIR, should_track=True)
    RobotActivityTracker(tmp_path / "nope", should_track=False)
    assert caplog.records == []

    RobotActivityTracker(tmp_path, should_track=True)
    RobotActivityTracker(tmp_path / "other", should_track=True)
    [record] = caplog.records
    message = record.getMessage()
    assert str(tmp_path) in message
    assert str(STORAGE_DIR) in message
    assert "OT_PERFORMANCE_METRICS_STORAGE_DIR" in message


def test_finish_rejects_bad_arguments_and_ignores_bad_indices(drain: Drain) -> None:
    with pytest.raises(TypeError):
        _native.finish(0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _native.finish("CALIBRATING", 0)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        _native.finish(-1, 0)
    _native.finish(len(_native.state_names()), time.monotonic_ns())
    _native.finish(2**40, time.monotonic_ns())
    assert drain() == []


def test_raw_records_reach_the_csv_verbatim(drain: Drain) -> None:
    index = _native.state_index("ROBOT_SHUTTING_DOWN")
    assert _native.record(index, 1722450100000000000, 42) == "committed"
    assert drain() == [("ROBOT_SHUTTING_DOWN", 1722450100000000000, 42)]
    with pytest.raises(ValueError):
        _native.record(99, 0, 0)
