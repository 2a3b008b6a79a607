"""A fresh Python process tracks calls the way robot-server does; `perf-drainer once` then
writes exactly those rows."""

import json
from pathlib import Path

from conftest import SERVICE_TOKEN, drain_once, read_rows, rings_in, run_python

SERVICE = f"""
import asyncio, json, time
from pathlib import Path
from performance_metrics import RobotActivityTracker, _native

tracker = RobotActivityTracker(Path("/data/performance_metrics_data"), should_track=True)
calls = []

def timed(state, sleep_ms, raises=False):
    @tracker.track(state)
    def work():
        time.sleep(sleep_ms / 1000)
        if raises:
            raise RuntimeError("boom")
    before = time.time_ns()
    try:
        work()
    except RuntimeError:
        pass
    finally:
        tracker.store()  # what performance_helpers does after every call
    calls.append((state, before, time.time_ns(), sleep_ms))

timed("ROBOT_STARTING_UP", 5)
timed("ANALYZING_PROTOCOL", 30)
timed("CALIBRATING", 10, raises=True)
timed("GETTING_CACHED_ANALYSIS", 1)

@tracker.track("RUNNING_PROTOCOL")
async def step(ms):
    await asyncio.sleep(ms / 1000)

async def gathered():
    before = time.time_ns()
    await asyncio.gather(step(15), step(25))
    return before, time.time_ns()

before, after = asyncio.run(gathered())
calls.append(("RUNNING_PROTOCOL", before, after, 15))
calls.append(("RUNNING_PROTOCOL", before, after, 25))
timed("ROBOT_SHUTTING_DOWN", 2)
print(json.dumps({{"calls": calls, "ring": str(_native.ring_path())}}))
"""


def test_tracked_calls_reach_the_csv_exactly_once(tmp_path: Path, drainer_bin: Path) -> None:
    shm, storage = tmp_path / "shm", tmp_path / "storage"
    out = run_python(
        SERVICE,
        env={
            "OT_PERFORMANCE_METRICS_SHM_DIR": str(shm),
            "OT_PERFORMANCE_METRICS_STORAGE_DIR": str(storage),
        },
    )
    report = json.loads(out)
    ring = Path(report["ring"])
    assert ring.parent == shm and ring.name.startswith(SERVICE_TOKEN + "-")
    assert ring.exists()  # the service exited; its records wait in the ring

    drain_once(drainer_bin, shm, storage)
    rows = read_rows(storage)
    calls = report["calls"]
    assert [r[0] for r in rows] == [c[0] for c in calls]
    for (state, start, duration), (_, before, after, sleep_ms) in zip(rows, calls):
        assert before <= start <= after, state
        assert sleep_ms * 1_000_000 <= duration <= after - before, state
    # The two gathered steps: each span is its own sleep, not the pair's.
    gathered = sorted(r[2] for r in rows if r[0] == "RUNNING_PROTOCOL")
    assert gathered[0] < 25_000_000 <= gathered[1]
    assert (storage / "robot_activity_data_headers").read_text() == "state,func_start,duration"

    # The dead producer's ring is gone, and draining again adds nothing.
    assert rings_in(shm) == []
    drain_once(drainer_bin, shm, storage)
    assert read_rows(storage) == rows


def test_tracking_off_writes_no_ring(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    run_python(
        "from pathlib import Path\n"
        "from performance_metrics import RobotActivityTracker\n"
        "t = RobotActivityTracker(Path('/x'), should_track=False)\n"
        "f = t.track('CALIBRATING')(lambda: 1)\n"
        "assert f() == 1\n"
        "t.store()\n",
        env={"OT_PERFORMANCE_METRICS_SHM_DIR": str(shm)},
    )
    assert not shm.exists()


def test_unusable_ring_directory_warns_once_and_calls_still_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc_out = run_python(
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "from pathlib import Path\n"
        "from performance_metrics import RobotActivityTracker, _native\n"
        "import os\n"
        "t = RobotActivityTracker(Path(os.environ['OT_PERFORMANCE_METRICS_STORAGE_DIR']), True)\n"
        "RobotActivityTracker(Path(os.environ['OT_PERFORMANCE_METRICS_STORAGE_DIR']), True)\n"
        "f = t.track('CALIBRATING')(lambda: 7)\n"
        "assert f() == 7\n"
        "assert _native.ring_path() is None\n",
        env={"OT_PERFORMANCE_METRICS_SHM_DIR": str(blocker / "shm")},
    )
    lines = [line for line in proc_out.splitlines() if line.startswith("WARNING")]
    assert len(lines) == 1, proc_out
    assert "will not be recorded" in lines[0] and str(blocker) in lines[0]
