"""Typed usage as in opentrons.util.performance_helpers; checked with `mypy --strict`
(python/ci.sh), not collected by pytest."""

import typing
from pathlib import Path

from performance_metrics import RobotActivityState, RobotActivityTracker, SupportsTracking

# The helper module stores the class as a Type[SupportsTracking].
tracker_class: typing.Type[SupportsTracking] = RobotActivityTracker
tracker: SupportsTracking = tracker_class(Path("/data/performance_metrics_data"), True)
state: RobotActivityState = "ANALYZING_PROTOCOL"


@tracker.track(state)
def analyze(path: Path, *, fast: bool = False) -> typing.List[str]:
    return [str(path)] if fast else []


@tracker.track("RUNNING_PROTOCOL")
async def run(run_id: str) -> int:
    return len(run_id)


typing.assert_type(analyze(Path("p"), fast=True), typing.List[str])


async def main() -> None:
    typing.assert_type(await run("x"), int)

tracker.store()

# A name outside the Literal is a type error (strict mode flags the ignore if it is not).
tracker.track("HOMING")  # type: ignore[arg-type]
