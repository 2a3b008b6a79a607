"""Structural types, as in the Python package this replaces."""

import typing
from pathlib import Path

_P = typing.ParamSpec("_P")
_R = typing.TypeVar("_R")

RobotActivityState = typing.Literal[
    "ANALYZING_PROTOCOL",
    "GETTING_CACHED_ANALYSIS",
    "RUNNING_PROTOCOL",
    "CALIBRATING",
    "ROBOT_STARTING_UP",
    "ROBOT_SHUTTING_DOWN",
]
"""The states a tracked call can be in; the CSV's ``state`` column shows the name."""

RobotContextState = RobotActivityState
"""The older name of :data:`RobotActivityState`."""


class SupportsTracking(typing.Protocol):
    """What a robot activity tracker offers (``opentrons.util.performance_helpers``)."""

    def __init__(self, storage_location: Path, should_track: bool) -> None:
        """Initialize the tracker."""
        ...

    def track(
        self, state: RobotActivityState
    ) -> typing.Callable[[typing.Callable[_P, _R]], typing.Callable[_P, _R]]:
        """Decorator that tracks the given state for the decorated function."""
        ...

    def store(self) -> None:
        """Store the tracked data."""
        ...
