"""Opentrons performance metrics, backed by the Rust ``perf-producer``.

A drop-in for the Python ``performance-metrics`` package: the same import name and API
(``RobotActivityTracker(storage_location, should_track)``, ``tracker.track(state)`` as a
decorator, ``tracker.store()``). Each tracked call becomes one record in this process's
ring in shared memory (``/dev/shm/performance_metrics``, or
``$OT_PERFORMANCE_METRICS_SHM_DIR``); the ``perf-drainer`` daemon appends it to
``robot_activity_data`` in its storage directory. No file I/O happens on the call path.
"""

from ._robot_activity_tracker import RobotActivityTracker
from ._types import RobotActivityState, RobotContextState, SupportsTracking

__all__ = [
    "RobotActivityTracker",
    "RobotActivityState",
    "RobotContextState",
    "SupportsTracking",
]
