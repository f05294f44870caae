"""What archive to make: one frozen dataclass, every default in one place.

The CLI maps `ocsf-ray synth --out --events --services --incidents --days --seed
--format` one to one onto these fields; the defaults make a demo archive in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("logs", "traces", "metrics", "config", "auth")
FORMATS = ("parquet", "ndjson")
OCSF_VERSION = "1.3.0"

# Share of the event budget each request-independent source gets; logs take the rest.
# Config changes are few and planned one by one, so they get no share.
TRACE_SHARE = 0.32
METRIC_SHARE = 0.16
AUTH_SHARE = 0.06


@dataclass(frozen=True)
class SynthConfig:
    """Size, shape and randomness of one synthetic archive.

    `events` is a budget: the archive holds that many events, give or take the
    few config changes and the last partial trace of a shard. `days` may be a
    fraction (tests use a few hours). `start_ms` is fixed, not "now", so that the
    same seed gives the same bytes on any day.
    """

    out: Path = Path("synth-archive")
    events: int = 200_000
    services: int = 8
    incidents: int = 6
    days: float = 1.0
    seed: int = 0
    format: str = "parquet"
    start_ms: int = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
    rows_per_part: int = 200_000
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.events < 1_000:
            raise ValueError(f"events must be at least 1000, got {self.events}")
        if not 3 <= self.services <= 200:
            raise ValueError(f"services must be between 3 and 200, got {self.services}")
        if self.incidents < 0:
            raise ValueError(f"incidents must be >= 0, got {self.incidents}")
        if not 2 / 24 <= self.days <= 366:
            raise ValueError(f"days must be between 2/24 and 366, got {self.days}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.rows_per_part < 1_000:
            raise ValueError(f"rows_per_part must be at least 1000, got {self.rows_per_part}")
        if self.incidents and self.hours * 60 < 40 * self.incidents + 60:
            raise ValueError(
                f"{self.incidents} incidents need more than {self.days} days; "
                "allow about 40 minutes per incident plus one hour"
            )

    @property
    def hours(self) -> int:
        return math.ceil(self.days * 24)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.hours * 3_600_000
