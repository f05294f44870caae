"""The whole archive decided up front: the world (system, users, load, incidents,
changes) and the list of shards, each with an exact event budget.

Planning is cheap and runs on the driver; every shard is then generated on its own
from the world and a seed derived from (seed, source, hour, part), which is what
makes the archive identical byte for byte whatever the order tasks run in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .changes import ChangeLog, plan_changes
from .config import AUTH_SHARE, METRIC_SHARE, TRACE_SHARE, SynthConfig
from .incidents import Incident, schedule_incidents
from .load import Load, build_load
from .metrics import MetricSeries, metric_series
from .population import Population, build_population
from .topology import Topology, build_topology

ATTACK_RATE = 6.0  # login attempts per minute at full strength, relative to normal logins


@dataclass(frozen=True)
class Shard:
    """One unit of work: a source kind, an hour of the archive and a part of that hour.

    `kind` is "requests" (writes traces and the logs they emit), "metrics", "auth" or
    "config". `events` is the span budget for requests and the event count otherwise.
    """

    kind: str
    hour: int
    part: int
    events: int
    logs: int = 0  # requests: log events emitted by these spans
    attacks: int = 0  # auth: attack login attempts on top of `events`
    series: tuple[int, int] = (0, 0)  # metrics: the range of series in this part


@dataclass(frozen=True)
class World:
    config: SynthConfig
    run_tag: int
    topology: Topology
    population: Population
    load: Load
    incidents: tuple[Incident, ...]
    changes: ChangeLog
    series: MetricSeries
    metric_interval_ms: int
    shards: tuple[Shard, ...]

    def task_rng(self, source: int, hour: int, part: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.config.seed, source, hour, part]))

    def hour_start(self, hour: int) -> int:
        return self.config.start_ms + hour * 3_600_000


def split_exact(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to `weights` that sum to exactly `total` (largest remainder)."""
    raw = total * np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw, kind="stable")[: total - counts.sum()]] += 1
    return counts


def _attack_minutes(incidents: tuple[Incident, ...], load: Load) -> np.ndarray:
    """Attack strength per minute of the archive, summed over credential-stuffing incidents."""
    t = load.start_ms + np.arange(len(load.minutes)) * 60_000 + 30_000
    total = np.zeros(len(t))
    for inc in incidents:
        if inc.kind.effect == "attack":
            total += inc.strength(np.full(len(t), inc.root), np.full(len(t), -1), t)[0]
    return total


def _parts(rows_per_part: int, *totals: int) -> list[np.ndarray]:
    """Each total split over as many equal parts as their sum needs."""
    n = max(1, -(-int(sum(totals)) // rows_per_part))
    return [split_exact(int(t), np.ones(n)) for t in totals]


def plan_world(config: SynthConfig) -> World:
    rng_topo, rng_users, rng_load, rng_inc, rng_changes, rng_series = (
        np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, 0]).spawn(6)
    )
    hours = config.hours
    topology = build_topology(config.services, rng_topo)
    population = build_population(int(np.clip(config.events / 200, 200, 50_000)), rng_users)
    load = build_load(config.start_ms, hours, rng_load)
    series = metric_series(topology, rng_series)
    n_series = len(series.host)
    # scrape often enough to use the metric share of the budget: every 10 s to every hour
    interval_s = int(np.clip(round(hours * 3600 * n_series / (config.events * METRIC_SHARE)), 10, 3600))
    incidents = schedule_incidents(config.incidents, config.start_ms, hours, interval_s * 1000, topology, rng_inc)
    run_tag = int(np.random.SeedSequence(config.seed).generate_state(1)[0])
    changes, incidents = plan_changes(topology, incidents, load, run_tag, rng_changes)

    ticks = np.bincount(np.arange(0, hours * 3600, interval_s) // 3600, minlength=hours)
    hour_weight = load.hour_weights()
    spans = split_exact(round(config.events * TRACE_SHARE), hour_weight)
    attack = _attack_minutes(incidents, load).reshape(hours, 60)
    normal_rate = round(config.events * AUTH_SHARE) / len(load.minutes)
    attacks = np.round(ATTACK_RATE * normal_rate * attack.sum(axis=1)).astype(np.int64)
    logins = split_exact(max(0, round(config.events * AUTH_SHARE) - int(attacks.sum())), hour_weight)
    n_logs = config.events - spans.sum() - ticks.sum() * n_series - logins.sum() - attacks.sum() - len(changes.time)
    logs = split_exact(max(0, int(n_logs)), hour_weight)

    shards: list[Shard] = []
    per_part = config.rows_per_part
    for h in range(hours):
        for p, (s, lg) in enumerate(zip(*_parts(per_part, spans[h], logs[h]))):
            if s:
                shards.append(Shard("requests", h, p, int(s), logs=int(lg)))
    for h in range(hours):
        if ticks[h]:
            n_parts = len(_parts(per_part, ticks[h] * n_series)[0])
            bounds = np.concatenate([[0], np.cumsum(split_exact(n_series, np.ones(n_parts)))])
            shards += [Shard("metrics", h, p, int(ticks[h] * (b - a)), series=(int(a), int(b)))
                       for p, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
        shards += [Shard("auth", h, p, int(n), attacks=int(a))
                   for p, (n, a) in enumerate(zip(*_parts(per_part, logins[h], attacks[h]))) if n + a]
    change_hours = np.unique((changes.time - config.start_ms) // 3_600_000)
    shards += [Shard("config", int(h), 0, int(np.sum((changes.time - config.start_ms) // 3_600_000 == h)))
               for h in change_hours]
    return World(config, run_tag, topology, population, load, incidents, changes, series,
                 interval_s * 1000, tuple(shards))
