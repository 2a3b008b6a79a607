"""RobotActivityTracker: decorators that record each tracked call into the Rust ring."""

import functools
import inspect
import logging
import os
import sys
import time
import typing
from pathlib import Path

from . import _native
from ._types import RobotActivityState, SupportsTracking

_P = typing.ParamSpec("_P")
_R = typing.TypeVar("_R")

_log = logging.getLogger(__name__)

STORAGE_DIR_ENV: typing.Final = "OT_PERFORMANCE_METRICS_STORAGE_DIR"
"""Where ``perf-drainer`` writes ``robot_activity_data`` (it reads the same variable)."""
DEFAULT_STORAGE_DIR: typing.Final = Path("/data/performance_metrics_data")
SERVICE_NAME_ENV: typing.Final = "OT_PERFORMANCE_METRICS_SERVICE_NAME"
"""Service name for this process's ring file, when the constructor is not given one."""

# Process state. A forked child inherits it together with the native tracker it describes;
# the native side makes the child its own ring on its first record.
_set_up = False
_warned_storage = False


def _default_service_name() -> str:
    """This process's service name: ``$OT_PERFORMANCE_METRICS_SERVICE_NAME``, else the
    script or ``-m`` package it runs (``python -m robot_server`` gives ``robot_server``),
    else the interpreter's name."""
    from_env = os.environ.get(SERVICE_NAME_ENV)
    if from_env:
        return from_env
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-") else ""
    if argv0:
        path = Path(argv0)
        if path.name == "__main__.py":
            return path.parent.name
        return path.stem if path.suffix == ".py" else path.name
    return Path(sys.executable or "python").name


def _set_up_native(service_name: typing.Optional[str]) -> None:
    """Turns the process's native tracker on (once); logs once if it could not make a ring."""
    global _set_up
    if _set_up:
        return
    recording, why_not = _native.setup(service_name or _default_service_name())
    _set_up = True
    if not recording:
        _log.warning(
            "performance metrics: tracked calls will not be recorded: %s", why_not
        )


def _drainer_storage_dir() -> Path:
    return Path(os.environ.get(STORAGE_DIR_ENV) or DEFAULT_STORAGE_DIR)


def _same_directory(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _check_storage_location(storage_location: Path) -> None:
    """Warns once per process when the caller expects the CSV somewhere the drainer does
    not write it."""
    global _warned_storage
    if _warned_storage:
        return
    drainer_dir = _drainer_storage_dir()
    if _same_directory(storage_location, drainer_dir):
        return
    _warned_storage = True
    _log.warning(
        "performance metrics: storage_location %s is not used: tracked calls go to a "
        "shared-memory ring and perf-drainer writes robot_activity_data to %s "
        "(its --storage-dir, or %s for it and for this check)",
        storage_location,
        drainer_dir,
        STORAGE_DIR_ENV,
    )


def _passthrough(func: typing.Callable[_P, _R]) -> typing.Callable[_P, _R]:
    return func


def _wrap(func: typing.Callable[_P, _R], index: int) -> typing.Callable[_P, _R]:
    """The tracked version of ``func``: one ``time.monotonic_ns()`` before the call and one
    native ``finish`` after it, whether it returns or raises."""
    # Locals, so the wrappers read them as closure cells rather than module globals.
    finish = _native.finish
    clock = time.monotonic_ns

    if inspect.iscoroutinefunction(func):
        async_func = typing.cast(
            typing.Callable[_P, typing.Awaitable[typing.Any]], func
        )

        @functools.wraps(func)
        async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> typing.Any:
            start = clock()
            try:
                return await async_func(*args, **kwargs)
            finally:
                finish(index, start)

        return typing.cast(typing.Callable[_P, _R], async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        start = clock()
        try:
            return func(*args, **kwargs)
        finally:
            finish(index, start)

    return wrapper


class RobotActivityTracker(SupportsTracking):
    """Tracks how long robot activities take.

    ``track(state)`` decorates plain and ``async def`` functions; each call becomes one
    ``robot_activity_data`` row (state, wall-clock start in ns, duration in ns), also when
    the function raises. Records go to this process's shared-memory ring without file I/O;
    the ``perf-drainer`` daemon writes the CSV.

    With ``should_track`` false, ``track`` returns the function itself.
    """

    METADATA_NAME: typing.Final[typing.Literal["robot_activity_data"]] = (
        "robot_activity_data"
    )

    def __init__(
        self,
        storage_location: Path,
        should_track: bool,
        *,
        service_name: typing.Optional[str] = None,
    ) -> None:
        """Sets tracking up for this process when ``should_track`` is true.

        Args:
            storage_location: where the caller expects ``robot_activity_data``. The CSV is
                written by ``perf-drainer`` into its own storage directory
                (``$OT_PERFORMANCE_METRICS_STORAGE_DIR``, default
                ``/data/performance_metrics_data``); a different location is logged once.
            should_track: whether decorated functions are tracked at all.
            service_name: names this process's ring file; by default
                ``$OT_PERFORMANCE_METRICS_SERVICE_NAME``, else the running script or
                ``-m`` package. The first tracker of a process decides it.
        """
        self._storage_location = Path(storage_location)
        self._should_track = bool(should_track)
        if self._should_track:
            _set_up_native(service_name)
            _check_storage_location(self._storage_location)

    def track(
        self, state: RobotActivityState
    ) -> typing.Callable[[typing.Callable[_P, _R]], typing.Callable[_P, _R]]:
        """Decorator that records each call of the decorated function under ``state``.

        Raises:
            ValueError: ``state`` is not a known state name (checked also when tracking
                is off, so a typo shows up everywhere).
        """
        index = _native.state_index(state)
        if not self._should_track:
            return _passthrough

        def decorator(func: typing.Callable[_P, _R]) -> typing.Callable[_P, _R]:
            return _wrap(func, index)

        return decorator

    def store(self) -> None:
        """Kept for callers of the Python package; does nothing.

        Each tracked call's record is already in the shared-memory ring when the call
        returns, and ``perf-drainer`` moves it to ``robot_activity_data``; there is nothing
        left to write here.
        """
