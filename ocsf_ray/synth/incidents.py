"""Incident catalogue, schedule and the intensity model every source reads.

An incident starts at one root service and reaches its callers hop by hop, each hop
`lag_ms` later and weaker (`CALLER_DECAY`). Its strength over its window follows a
per-kind profile (a step for a bad deployment, a slow ramp for a memory leak,
bursts for an attack). Each source turns that strength into moderate changes of
many fields (latency, status, templates, rates, users, IPs) rather than one field
changed massively, so no single column separates anomalies from normal events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .topology import API, CACHE, DB, WORKER, Topology

CALLER_DECAY = 0.6
MAX_HOPS = 3


@dataclass(frozen=True)
class IncidentKind:
    name: str
    root_cause_kind: str
    root_tiers: tuple[int, ...]
    profile: tuple[tuple[float, float], ...]  # (fraction of the window, strength) knots
    power: float  # request-level effects follow strength**power: > 1 means "later"
    request_share: float  # share of the root's requests hit at full strength
    caller_share: float  # same for callers one hop up
    latency_gain: float  # hit requests' own time grows by up to this factor
    failure_share: float  # share of hit requests that fail at full strength
    http_code: int
    templates: tuple[str, ...]  # messages at the root
    caller_templates: tuple[str, ...]  # messages at callers
    metric_gains: dict[str, float]  # root metrics, relative change at full strength
    caller_metric_gains: dict[str, float]
    host_scoped: bool = False  # only one host of the root is hit
    root_change: str | None = None  # config change that starts it
    effect: str | None = None  # "retry", "cache_bypass" or "attack": extra request effects
    fails_fast: bool = False  # a hit request fails early, before calling anything: shorter, not longer


_CALLER = ("Timeout calling {dep} after {ms}ms", "Upstream {dep} returned {code} for request {id}")

KINDS: tuple[IncidentKind, ...] = (
    IncidentKind(
        "bad_deployment", "deployment", (API, WORKER),
        ((0, 0), (0.04, 1), (0.9, 1), (1, 0)), 1.0, 0.4, 0.25, 0.5, 0.5, 500,
        ("Unhandled NullPointerException in {Noun}Validator.validate (line {n})",
         "KeyError: '{noun}_discount' while handling request {id}",
         "Schema mismatch: column {noun}_v2 not found",
         "Request {id} failed after {ms}ms: internal error"),
        _CALLER + ("Retrying {dep} request (attempt {n})",),
        {"error_rate": 0.15, "latency_p95_ms": 0.5, "cpu_usage_percent": 0.2},
        {"error_rate": 0.04, "latency_p95_ms": 0.25},
        root_change="deployment", fails_fast=True,
    ),
    IncidentKind(
        "memory_leak", "resource", (API, WORKER),
        ((0, 0), (0.92, 1), (0.95, 0.15), (1, 0)), 2.5, 0.6, 0.3, 1.8, 0.3, 503,
        ("GC pause {ms}ms, heap {pct}% used",
         "Allocation failure: heap at {pct}% of {mb}MB",
         "OOMKilled: container on {host} restarted",
         "Request {id} timed out after {ms}ms"),
        _CALLER,
        {"memory_usage_bytes": 1.6, "latency_p95_ms": 1.0, "cpu_usage_percent": 0.3, "error_rate": 0.05},
        {"latency_p95_ms": 0.4, "error_rate": 0.02},
    ),
    IncidentKind(
        "cpu_saturation", "resource", (API, WORKER, DB),
        ((0, 0), (0.1, 0.8), (0.2, 1), (0.85, 1), (1, 0)), 1.0, 0.55, 0.25, 1.2, 0.12, 503,
        ("Request queue depth {n} exceeds limit on {host}",
         "Worker pool saturated ({n} busy) on {host}",
         "Handler for {noun} {id} took {ms}ms (CPU throttled)"),
        _CALLER,
        {"cpu_usage_percent": 1.6, "latency_p95_ms": 1.0, "error_rate": 0.05},
        {"latency_p95_ms": 0.35, "error_rate": 0.02},
        host_scoped=True,
    ),
    IncidentKind(
        "dependency_slowdown", "dependency", (DB,),
        ((0, 0), (0.15, 1), (0.85, 1), (1, 0)), 1.0, 0.6, 0.35, 4.0, 0.04, 504,
        ("Slow query on {noun}s: {ms}ms",
         "Lock wait timeout on {noun}s after {ms}ms",
         "Replication lag {n}s on {host}"),
        ("Connection pool exhausted ({n} waiting) for {dep}",) + _CALLER,
        {"latency_p95_ms": 3.0, "db_connections_active": 1.5, "cpu_usage_percent": 0.3},
        {"latency_p95_ms": 0.6, "error_rate": 0.03},
    ),
    IncidentKind(
        "network_loss", "network", (API, DB, CACHE),
        ((0, 0), (0.05, 1), (0.3, 0.5), (0.4, 1), (0.7, 0.4), (0.8, 1), (1, 0)),
        1.0, 0.35, 0.25, 0.8, 0.6, 502,
        ("TCP retransmission timeout to {ip}", "Health check from {ip} failed", "Dropped connection from {ip}"),
        ("Connection reset by peer calling {dep} ({ip})", "Retrying {dep} request (attempt {n})"),
        {"error_rate": 0.12, "latency_p95_ms": 0.5},
        {"error_rate": 0.04, "request_rate": 0.15},
        host_scoped=True, effect="retry", fails_fast=True,
    ),
    IncidentKind(
        "cache_invalidation_storm", "configuration", (CACHE,),
        ((0, 0), (0.02, 1), (0.5, 0.6), (1, 0)), 1.0, 0.7, 0.3, 0.6, 0.02, 503,
        ("Cache miss storm detected: {n} misses/s", "Evicted {n} keys after config reload",
         "Cache miss for {noun}:{id}"),
        ("Cache miss for {noun} {id}, loading from database", "Slow {noun} lookup: {ms}ms"),
        {"cache_hit_ratio": -0.8, "cpu_usage_percent": 0.5, "request_rate": 0.3},
        {"latency_p95_ms": 0.4, "request_rate": 0.1},
        root_change="config_update", effect="cache_bypass",
    ),
    IncidentKind(
        "credential_stuffing", "security", (API,),
        ((0, 0), (0.05, 1), (0.25, 1), (0.3, 0.2), (0.45, 0.2), (0.5, 1), (0.75, 1), (0.8, 0.3), (1, 0)),
        1.0, 0.3, 0.15, 0.3, 0.9, 401,
        ("Failed login for {user} from {ip}: invalid credentials",
         "Too many failed logins from {ip}", "Account {user} locked after {n} failed attempts"),
        ("Login rate limit hit for {ip}", "Upstream {dep} returned {code} for request {id}"),
        {"request_rate": 1.0, "cpu_usage_percent": 0.6, "error_rate": 0.3},
        {"request_rate": 0.3, "error_rate": 0.05},
        effect="attack", fails_fast=True,
    ),
)


@dataclass(frozen=True)
class Incident:
    id: str
    kind: IncidentKind
    root: int
    root_host: int  # -1 when every host of the root is hit
    start: int  # epoch ms, at the root
    end: int
    lag_ms: int  # extra delay per hop up the call graph
    hops: np.ndarray = field(repr=False)  # per service: hops up to the root, -1 if untouched
    root_event_uid: str | None = None

    @property
    def last_end(self) -> int:
        return self.end + int(self.hops.max()) * self.lag_ms

    def strength(self, service: np.ndarray, host: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Profile strength (0..1) at each (service, host, time) and the hop it arrives by."""
        hop = self.hops[service]
        shifted = (t - self.start - np.maximum(hop, 0) * self.lag_ms) / (self.end - self.start)
        xs, ys = zip(*self.kind.profile)
        level = np.interp(shifted, xs, ys, left=0.0, right=0.0)
        hit = hop >= 0
        if self.kind.host_scoped:
            hit &= (hop > 0) | (host == self.root_host)
        return np.where(hit, level, 0.0), hop

    def request_probability(self, service: np.ndarray, host: np.ndarray, t: np.ndarray) -> np.ndarray:
        level, hop = self.strength(service, host, t)
        share = np.where(hop == 0, self.kind.request_share,
                         self.kind.caller_share * CALLER_DECAY ** np.maximum(hop - 1, 0))
        return share * level**self.kind.power

    def to_json(self, topology: Topology) -> dict:
        return {
            "id": self.id,
            "type": self.kind.name,
            "root_service": topology.names[self.root],
            "root_host": topology.host_names[self.root_host] if self.root_host >= 0 else None,
            "root_cause_kind": self.kind.root_cause_kind,
            "start": self.start,
            "end": self.last_end,
            "root_end": self.end,
            "root_event_uid": self.root_event_uid,
            "affected_services": [
                {"service": topology.names[s], "hop": int(h),
                 "start": self.start + int(h) * self.lag_ms, "end": self.end + int(h) * self.lag_ms}
                for s, h in sorted(enumerate(self.hops), key=lambda p: (p[1], p[0])) if h >= 0
            ],
        }


def _roots(kind: IncidentKind, topology: Topology) -> np.ndarray:
    if kind.effect == "attack":
        return np.array([topology.index("identity")])
    return np.flatnonzero(np.isin(topology.tier, kind.root_tiers))


def schedule_incidents(
    count: int, start_ms: int, hours: int, metric_interval_ms: int,
    topology: Topology, rng: np.random.Generator,
) -> tuple[Incident, ...]:
    """`count` incidents in disjoint segments of the archive, after a quiet first 45 min.

    Kinds cycle through a seeded order so that six incidents are six kinds. The hop
    lag is one metric interval (1 to 15 minutes), so that metrics can show the propagation.
    """
    order = [KINDS[i] for i in rng.permutation(len(KINDS))]
    usable_start, usable_end = start_ms + 45 * 60_000, start_ms + hours * 3_600_000 - 15 * 60_000
    segment = (usable_end - usable_start) // max(count, 1)
    incidents = []
    for k in range(count):
        kind = next(kd for j in range(len(order)) for kd in [order[(k + j) % len(order)]]
                    if len(_roots(kd, topology)))
        candidates = _roots(kind, topology)
        fresh = np.setdiff1d(candidates, [inc.root for inc in incidents])
        root = int(rng.choice(fresh if len(fresh) else candidates))  # spread roots out
        hosts = np.arange(topology.host_offsets[root], topology.host_offsets[root + 1])
        duration = int(min(rng.uniform(20, 45) * 60_000, 0.45 * segment))
        lag = int(np.clip(metric_interval_ms, 60_000, 900_000) + rng.uniform(0, 30_000))
        lo = usable_start + k * segment
        slack = max(0, segment - duration - MAX_HOPS * lag)
        start = int(lo + rng.uniform(0, slack)) // 1000 * 1000
        incidents.append(Incident(
            id=f"INC-{k + 1:03d}", kind=kind, root=root,
            root_host=int(rng.choice(hosts)) if kind.host_scoped else -1,
            start=start, end=start + duration, lag_ms=lag,
            hops=topology.caller_hops(root, MAX_HOPS),
        ))
    return tuple(incidents)
