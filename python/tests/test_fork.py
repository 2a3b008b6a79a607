"""Forked children (os.fork, multiprocessing's fork start method) record into their own
ring, never into the parent's."""

import multiprocessing
import os
import re
from pathlib import Path
from typing import List

from performance_metrics import RobotActivityTracker, _native

from conftest import STORAGE_DIR, Drain, rings_in

TRACKER = RobotActivityTracker(STORAGE_DIR, should_track=True)


@TRACKER.track("RUNNING_PROTOCOL")
def in_child(x: int) -> int:
    return x * x


@TRACKER.track("CALIBRATING")
def in_parent() -> None:
    pass


def _ring_pid(path: Path) -> int:
    match = re.fullmatch(r".*-(\d+)-[0-9a-f]{16}\.ring", path.name)
    assert match, path
    return int(match.group(1))


def test_os_fork_child_gets_its_own_ring(drain: Drain) -> None:
    in_parent()  # the parent's ring exists and is in use before the fork
    parent_ring = _native.ring_path()
    assert parent_ring is not None and _ring_pid(parent_ring) == os.getpid()

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: track, report the ring it used, leave without cleanup
        code = 1
        try:
            os.close(read_end)
            for i in range(3):
                in_child(i)
            os.write(write_end, str(_native.ring_path()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ring = Path(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert child_ring != parent_ring
    assert _ring_pid(child_ring) == pid
    assert _native.ring_path() == parent_ring
    in_parent()

    rows = drain()
    assert sorted(r[0] for r in rows) == ["CALIBRATING"] * 2 + ["RUNNING_PROTOCOL"] * 3
    # The child is gone and its ring drained: the drainer removed it.
    assert not child_ring.exists()
    assert parent_ring.exists()


def test_multiprocessing_fork_pool_records_every_call(drain: Drain) -> None:
    in_parent()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results: List[int] = pool.map(in_child, range(20))
        pool.close()
        pool.join()
    assert results == [i * i for i in range(20)]

    rows = drain()
    assert sorted(r[0] for r in rows) == ["CALIBRATING"] + ["RUNNING_PROTOCOL"] * 20
    rings = rings_in(Path(os.environ["OT_PERFORMANCE_METRICS_SHM_DIR"]))
    # Only this process's ring is left: the workers' were drained and removed.
    assert rings == [_native.ring_path().name]  # type: ignore[union-attr]


def test_multiprocessing_fork_process_that_never_tracks_leaves_no_ring(drain: Drain) -> None:
    in_parent()
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=os.getpid)
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    assert [r[0] for r in drain()] == ["CALIBRATING"]
    shm = Path(os.environ["OT_PERFORMANCE_METRICS_SHM_DIR"])
    assert rings_in(shm) == [_native.ring_path().name]  # type: ignore[union-attr]
