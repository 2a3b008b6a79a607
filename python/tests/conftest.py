"""Shared set-up: every ring and CSV of the suite lives in temporary directories.

The native tracker is process-wide and reads ``OT_PERFORMANCE_METRICS_SHM_DIR`` once, when
the first tracker turns it on, so the variables are set here, at import, before any test
module creates a tracker. Subprocesses inherit them unless a test passes its own.
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# A token in every ring file name the suite makes, to prove none landed in /dev/shm.
SERVICE_TOKEN = f"pm-pytest-{uuid.uuid4().hex[:12]}"
_ROOT = Path(tempfile.mkdtemp(prefix="pm-pytest-"))
SHM_DIR = _ROOT / "shm"
STORAGE_DIR = _ROOT / "storage"
STORAGE_DIR.mkdir()
os.environ["OT_PERFORMANCE_METRICS_SHM_DIR"] = str(SHM_DIR)
os.environ["OT_PERFORMANCE_METRICS_STORAGE_DIR"] = str(STORAGE_DIR)
os.environ["OT_PERFORMANCE_METRICS_SERVICE_NAME"] = SERVICE_TOKEN

Row = Tuple[str, int, int]


def _find_drainer() -> Path:
    from_env = os.environ.get("PERF_DRAINER_BIN")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise RuntimeError(f"PERF_DRAINER_BIN={from_env} is not a file")
        return path
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    candidate = target / "debug" / "perf-drainer"
    if candidate.is_file():
        return candidate
    # Build it and ask cargo where it put it.
    out = subprocess.run(
        ["cargo", "build", "-p", "perf-drainer", "--bin", "perf-drainer",
         "--message-format=json-render-diagnostics"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg["target"]["name"] == "perf-drainer":
            return Path(msg["executable"])
    raise RuntimeError("cargo built perf-drainer but named no executable")


@pytest.fixture(scope="session")
def drainer_bin() -> Path:
    return _find_drainer()


def read_rows(storage_dir: Path) -> List[Row]:
    """All rows of robot_activity_data in ``storage_dir`` (none if it does not exist)."""
    data = storage_dir / "robot_activity_data"
    if not data.exists():
        return []
    raw = data.read_bytes().decode()
    rows = []
    for fields in csv.reader(io.StringIO(raw, newline="")):
        state, start, duration = fields
        rows.append((state, int(start), int(duration)))
    return rows


# The drainer's lock in the ring directory (one consumer per directory); it stays there
# between runs, like the storage directory's, and is not a ring.
DRAINER_LOCK = ".perf-drainer.lock"


def rings_in(shm_dir: Path) -> List[str]:
    """The ring files in ``shm_dir``, sorted: everything but the drainer's lock."""
    return sorted(p.name for p in shm_dir.iterdir() if p.name != DRAINER_LOCK)


def drain_once(drainer: Path, shm_dir: Path, storage_dir: Path) -> str:
    """``perf-drainer once`` over the two directories; returns its output."""
    env = dict(os.environ)
    env.pop("OT_PERFORMANCE_METRICS_ALLOWED_UIDS", None)
    proc = subprocess.run(
        [str(drainer), "once", "--shm-dir", str(shm_dir), "--storage-dir", str(storage_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"perf-drainer once failed:\n{proc.stdout}"
    return proc.stdout


class Drain:
    """Drains the suite's shared ring directory and hands out the rows added since the
    last call."""

    def __init__(self, drainer: Path) -> None:
        self._drainer = drainer
        self._seen = 0

    def __call__(self) -> List[Row]:
        if SHM_DIR.exists():
            drain_once(self._drainer, SHM_DIR, STORAGE_DIR)
        rows = read_rows(STORAGE_DIR)
        new, self._seen = rows[self._seen:], len(rows)
        return new


@pytest.fixture(scope="session")
def _session_drain(drainer_bin: Path) -> Drain:
    return Drain(drainer_bin)


@pytest.fixture
def drain(_session_drain: Drain) -> Iterator[Drain]:
    """Rows tracked by this test: whatever was pending is drained away first."""
    _session_drain()
    yield _session_drain


def run_python(code: str, env: Optional[Dict[str, str]] = None, timeout: float = 60) -> str:
    """Runs ``code`` in a fresh interpreter; returns stdout, failing on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def _dev_shm_entries() -> List[str]:
    found = []
    for root, dirs, files in os.walk("/dev/shm", onerror=lambda e: None):
        found.extend(os.path.join(root, n) for n in dirs + files if SERVICE_TOKEN in n)
    return found


@pytest.fixture(scope="session", autouse=True)
def _clean_up_and_check_dev_shm() -> Iterator[None]:
    yield
    leaked = _dev_shm_entries()
    shutil.rmtree(_ROOT, ignore_errors=True)
    assert not leaked, f"the suite left ring files in /dev/shm: {leaked}"
