"""Traffic over time: a diurnal curve, quieter weekends and a few benign load peaks.

Load is tabulated per minute over the whole archive. It sets how many events each
hour gets, where in the hour they fall, request rates in metrics, and a mild latency
and CPU rise at peaks, which is normal behaviour a detector must not flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadPeak:
    start: int  # epoch ms
    end: int
    height: float  # extra load at the top, relative to the diurnal level


@dataclass(frozen=True)
class Load:
    start_ms: int
    minutes: np.ndarray  # load multiplier per minute, about 1 at the daily top
    peaks: tuple[LoadPeak, ...]

    def at(self, t_ms: np.ndarray) -> np.ndarray:
        i = np.clip((np.asarray(t_ms) - self.start_ms) // 60_000, 0, len(self.minutes) - 1)
        return self.minutes[i.astype(np.int64)]

    def hour_weights(self) -> np.ndarray:
        return self.minutes.reshape(-1, 60).sum(axis=1)

    def sample_times(self, rng: np.random.Generator, hour: int, n: int) -> np.ndarray:
        """Epoch-ms times in `hour`, denser where load is higher."""
        w = self.minutes[hour * 60 : (hour + 1) * 60]
        minute = np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n))
        ms = (hour * 60 + np.minimum(minute, 59)) * 60_000 + rng.integers(0, 60_000, n)
        return self.start_ms + ms


def build_load(start_ms: int, hours: int, rng: np.random.Generator) -> Load:
    minute = np.arange(hours * 60)
    t = start_ms + minute * 60_000
    hour_of_day = (t // 60_000 % 1440) / 60
    weekday = (t // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
    diurnal = 0.3 + 0.7 * (1 - np.cos(2 * np.pi * (hour_of_day - 4) / 24)) / 2
    load = diurnal * np.where(weekday >= 5, 0.7, 1.0)
    peaks = []
    for _ in range(max(1, round(hours / 12))):
        length = int(rng.integers(15, 41))
        first = int(rng.integers(0, max(1, hours * 60 - length)))
        height = float(rng.uniform(0.5, 1.0))
        shape = np.sin(np.linspace(0, np.pi, length)) ** 2
        load[first : first + length] *= 1 + height * shape[: len(load) - first]
        peaks.append(LoadPeak(int(t[first]), int(t[first]) + length * 60_000, round(height, 3)))
    load *= 1 + 0.04 * rng.standard_normal(len(load))
    return Load(start_ms=start_ms, minutes=np.clip(load, 0.05, None), peaks=tuple(peaks))
