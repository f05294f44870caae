"""Metric samples per service and host as OCSF-style events (class 99 "Metric").

Values follow load (diurnal curve, benign peaks) and the incidents' strength, so a
memory leak shows as a slow memory climb, a CPU saturation as one hot host, a cache
storm as a falling hit ratio. `requests_total` is a cumulative counter that resets
when a deployment restarts the service, like a real Prometheus counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .incidents import CALLER_DECAY
from .ocsf import METRIC, const, envelope, product, struct, table
from .strings import concat, event_uids
from .topology import CACHE, DB, Topology

if TYPE_CHECKING:
    from .plan import Shard, World

SOURCE_CODE = 3
NOMINAL_RPS = 120.0  # requests per second entering the system at the daily top

# name, unit, type; the last two only exist on databases and caches
METRICS = (
    ("cpu_usage_percent", "%", "gauge"),
    ("memory_usage_bytes", "bytes", "gauge"),
    ("request_rate", "req/s", "gauge"),
    ("error_rate", "ratio", "gauge"),
    ("latency_p95_ms", "ms", "gauge"),
    ("requests_total", "1", "counter"),
    ("db_connections_active", "connections", "gauge"),
    ("cache_hit_ratio", "ratio", "gauge"),
)
CPU, MEMORY, RATE, ERRORS, LATENCY, TOTAL, CONNECTIONS, HIT_RATIO = range(len(METRICS))
_ABSOLUTE = {ERRORS}  # incident gains add to these instead of scaling them
_THRESHOLD = {ERRORS: 0.02}  # smallest change labelled anomalous; 10 % elsewhere


@dataclass(frozen=True)
class MetricSeries:
    host: np.ndarray
    service: np.ndarray
    metric: np.ndarray
    base: np.ndarray  # value at daily-top load without incidents


def metric_series(topology: Topology, rng: np.random.Generator) -> MetricSeries:
    hosts = np.arange(len(topology.host_names))
    service = topology.host_service
    extra = np.select([topology.tier[service] == DB, topology.tier[service] == CACHE], [CONNECTIONS, HIT_RATIO], -1)
    host = np.concatenate([np.repeat(hosts, 6), hosts[extra >= 0]])
    metric = np.concatenate([np.tile(np.arange(6), len(hosts)), extra[extra >= 0]])
    order = np.lexsort((metric, host))
    host, metric = host[order], metric[order]
    svc = topology.host_service[host]
    n_hosts = np.diff(topology.host_offsets)[svc]
    spread = rng.uniform(0.85, 1.15, len(host))
    base = np.select(
        [metric == m for m in range(len(METRICS))],
        [
            rng.uniform(15, 45, len(host)),
            np.where(topology.tier[svc] == DB, 4e9, 6e8) * spread * rng.uniform(1, 3, len(host)),
            NOMINAL_RPS * topology.visits[svc] / n_hosts * spread,
            topology.base_failure[svc] * spread,
            topology.self_ms[svc] * np.exp(1.645 * topology.self_sigma[svc]) * 3 * spread,
            NOMINAL_RPS * topology.visits[svc] / n_hosts * spread,
            rng.uniform(10, 40, len(host)),
            rng.uniform(0.9, 0.97, len(host)),
        ],
    )
    return MetricSeries(host=host, service=svc, metric=metric, base=base)


def _incident_gains(world: World, service, host, metric, t: np.ndarray):
    """Relative (absolute for error rate) change per sample from all incidents, and the
    incident with the largest change where that change is big enough to be labelled.

    A counter moves with its rate, so requests_total takes request_rate's gains.
    """
    metric = np.where(metric == TOTAL, RATE, metric)
    service, host = np.broadcast_to(service, t.shape), np.broadcast_to(host, t.shape)
    gain, biggest = np.zeros(t.shape), np.zeros(t.shape)
    label = np.full(t.shape, -1, dtype=np.int64)
    threshold = np.where(metric == ERRORS, _THRESHOLD[ERRORS], 0.1)
    for i, inc in enumerate(world.incidents):
        level, hop = inc.strength(service, host, t)
        root = np.array([inc.kind.metric_gains.get(name, 0.0) for name, _, _ in METRICS])
        caller = np.array([inc.kind.caller_metric_gains.get(name, 0.0) for name, _, _ in METRICS])
        g = np.where(hop == 0, root[metric], caller[metric] * CALLER_DECAY ** np.maximum(hop - 1, 0))
        g = g * np.where(metric == MEMORY, level, level**inc.kind.power)  # memory climbs first
        gain += g
        stronger = (np.abs(g) >= threshold) & (np.abs(g) > biggest)
        label[stronger], biggest[stronger] = i, np.abs(g)[stronger]
    return gain, label


def _values(world: World, rows: np.ndarray, t: np.ndarray, rng: np.random.Generator):
    series = world.series
    metric, base = series.metric[rows][:, None], series.base[rows][:, None]
    host = series.host[rows][:, None]
    load = world.load.at(t)
    gain, label = _incident_gains(world, series.service[rows][:, None], host, metric, t)
    scale = np.where(np.isin(metric, list(_ABSOLUTE)), 1.0, 1.0 + gain)
    noise = rng.standard_normal(t.shape)
    gc_wave = np.sin(2 * np.pi * t / (600_000 + 37_000 * (host % 7)))
    value = np.select(
        [metric == CPU, metric == MEMORY, metric == RATE, metric == ERRORS, metric == LATENCY,
         metric == CONNECTIONS, metric == HIT_RATIO],
        [
            np.clip(base * (0.5 + 0.5 * load) * scale + 2 * noise, 0.5, 100),
            base * (1 + 0.04 * gc_wave) * scale * (1 + 0.01 * noise),
            base * load * scale * (1 + 0.05 * noise),
            np.clip(base * (1 + 0.3 * noise) + gain, 0, 1),
            base * (1 + 0.15 * np.maximum(load - 1, 0)) * scale * np.exp(0.08 * noise),
            np.maximum(0, np.round(base * load * scale + 1.5 * noise)),
            np.clip(base * scale + 0.01 * noise, 0, 1),
        ],
        default=np.nan,  # counters are filled in by _counters
    )
    return value, label


def _counters(world: World, rows: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """requests_total at `ticks`: the expected requests since the service last restarted.

    Integrating from the archive start (rather than drawing noise) lets each hour's
    task compute the same counter without the others.
    """
    series, step = world.series, world.metric_interval_ms
    history = np.arange(world.config.start_ms, ticks[-1] + 1, step)
    t = np.broadcast_to(history, (len(rows), len(history)))
    gain, _ = _incident_gains(world, series.service[rows][:, None], series.host[rows][:, None],
                              series.metric[rows][:, None], t)
    per_tick = series.base[rows][:, None] * world.load.at(history) * (1 + gain) * step / 1000
    out = np.empty((len(rows), len(ticks)))
    for k, r in enumerate(rows):
        restarts, _ = world.changes.deploys[series.service[r]]
        epoch = np.searchsorted(restarts, history, side="right")
        first = np.searchsorted(epoch, epoch)  # first tick since the last restart
        cum = np.cumsum(per_tick[k])
        since = cum - cum[first] + per_tick[k][first]
        out[k] = np.floor(since[-len(ticks):])
    return out


def metric_events(world: World, shard: Shard, rng: np.random.Generator):
    """One hour of samples for a range of series: the OCSF table and per-row incident labels."""
    series, topology = world.series, world.topology
    rows = np.arange(*shard.series)
    step = world.metric_interval_ms
    hour_start = shard.hour * 3_600_000
    ticks = world.config.start_ms + np.arange(-(-hour_start // step) * step, hour_start + 3_600_000, step)
    t = np.broadcast_to(ticks, (len(rows), len(ticks)))
    value, label = _values(world, rows, t, rng)
    counters = series.metric[rows] == TOTAL
    if counters.any():
        value[counters] = _counters(world, rows[counters], ticks)
    jitter = (series.host[rows] * 137) % 1000  # each host is scraped at its own offset
    time = (t + jitter[:, None]).ravel()
    n = time.size
    order = np.argsort(time, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    flat = np.repeat(rows, len(ticks))
    metric = series.metric[flat]
    names = pa.array([m[0] for m in METRICS]).take(pa.array(metric))
    value = value.ravel()
    columns = envelope(
        (METRIC,), np.zeros(n, dtype=np.int64),
        uid=event_uids(world.run_tag, SOURCE_CODE, shard.hour, shard.part, rank),
        product=product(const("prometheus", n), "Prometheus", const("2.53.1", n)),
        time=time, activity_id=np.zeros(n, dtype=np.int64), severity_id=np.ones(n, dtype=np.int64),
        status_id=np.ones(n, dtype=np.int64),
        message=concat(names, "=", pc.cast(pc.round(pa.array(value), 3), pa.string())),
    )
    columns |= {
        "metric": struct(
            name=names, value=pa.array(value),
            unit=pa.array([m[1] for m in METRICS]).take(pa.array(metric)),
            type=pa.array([m[2] for m in METRICS]).take(pa.array(metric)),
        ),
        "service": struct(name=pa.array(topology.names).take(pa.array(series.service[flat]))),
        "device": struct(hostname=pa.array(topology.host_names).take(pa.array(series.host[flat]))),
    }
    return table(columns, order), label.ravel()[order]
