"""The Rust extension (``perf-python``): set-up and recording through ``perf-producer``."""

from pathlib import Path
from typing import Literal, Optional, Tuple

def state_names() -> list[str]:
    """Every state name the producer knows, in index order."""

def state_index(name: str) -> int:
    """The index of state ``name``; ``ValueError`` for an unknown name."""

def service_name_from(raw: str) -> str:
    """``raw`` made a valid ring service name (``[A-Za-z0-9._-]``, at most 63 bytes)."""

def setup(service: str, capacity: Optional[int] = None) -> Tuple[bool, Optional[str]]:
    """Turns the process-wide tracker on for ``service`` (once); ``(recording, why_not)``.

    ``capacity``: ring size in records, a power of two (default 65536)."""

def finish(state: int, start_ns: int, /) -> None:
    """Records a span of state index ``state`` from monotonic ``start_ns`` to now."""

def record(state: int, start_ns: int, duration_ns: int) -> Literal["committed", "dropped", "disabled"]:
    """Writes one record with the given wall-clock start and duration."""

def ring_path() -> Optional[Path]:
    """This process's ring file, once set up (a forked child's own after its first record)."""

def counters() -> Optional[Tuple[int, int, int]]:
    """This process's ring counters ``(claimed, released, dropped)``."""

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in ns, as the producer reads it."""
