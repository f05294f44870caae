"""Requests as trees of spans: who calls whom, how long each call takes, what fails.

A request enters at an edge service and fans out along the call DAG one level at a
time (vectorised over all spans of a level). Incidents hit spans where they are
created; their effects then travel up each tree: a slow callee makes its caller
slower, a callee past its timeout or failing makes its caller fail. A caller span
is labelled with the incident when that inherited effect is material. Both logs and
traces are derived from these spans, so their trace ids and labels agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .topology import DB, EDGE

if TYPE_CHECKING:
    from .plan import Shard, World

NONE, BENIGN, INCIDENT, TIMEOUT, UPSTREAM = range(5)  # why a span failed
_U64 = np.iinfo(np.uint64).max


@dataclass(frozen=True)
class Spans:
    # per request
    user: np.ndarray
    attacker: np.ndarray  # the credential-stuffing incident behind a request, -1 if none
    trace_hi: np.ndarray
    trace_lo: np.ndarray
    # per span, ordered by request then depth
    request: np.ndarray
    parent: np.ndarray  # index of the parent span, -1 at the root
    service: np.ndarray
    host: np.ndarray
    endpoint: np.ndarray
    span_id: np.ndarray
    start: np.ndarray  # epoch ms, float
    duration: np.ndarray  # ms, float
    failure: np.ndarray  # NONE, BENIGN, INCIDENT, TIMEOUT or UPSTREAM
    incident: np.ndarray  # index into world.incidents, -1 when normal

    def __len__(self) -> int:
        return len(self.request)


def _pick(offsets: np.ndarray, owner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform member of each owner's block in a flattened table."""
    lo = offsets[owner]
    return lo + (rng.random(len(owner)) * (offsets[owner + 1] - lo)).astype(np.int64)


def _last_of(offsets: np.ndarray, owner: np.ndarray) -> np.ndarray:
    return offsets[owner + 1] - 1  # login is every edge's and identity's last endpoint


def _primary_db(world: World) -> np.ndarray:
    topo = world.topology
    first = np.full(topo.size, -1)
    for src, dst in zip(topo.edge_src[::-1], topo.edge_dst[::-1]):
        if topo.tier[dst] == DB:
            first[src] = dst
    return first


class _Levels:
    """Span arrays of a request batch, grown one level of the call tree at a time."""

    FIELDS = ("request", "parent", "level", "service", "host", "endpoint", "incident", "hop",
              "strength", "failure", "extra", "retry_of", "leaf")

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {f: [] for f in self.FIELDS}
        self.size = 0

    def add(self, **cols: np.ndarray) -> np.ndarray:
        n = len(cols["service"])
        defaults = {"incident": -1, "hop": -1, "strength": 0.0, "failure": NONE,
                    "extra": False, "retry_of": -1, "leaf": False}
        for f in self.FIELDS:
            value = cols.get(f, defaults.get(f))
            self.parts[f].append(np.broadcast_to(value, n).copy() if np.ndim(value) == 0 else value)
        index = np.arange(self.size, self.size + n)
        self.size += n
        return index

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: np.concatenate(v) for f, v in self.parts.items()}


def _hit(world: World, cols: dict, t: np.ndarray, rng: np.random.Generator) -> None:
    """Mark spans an active incident hits, with the hop and strength it arrives with."""
    n = len(cols["service"])
    cols |= {"incident": np.full(n, -1), "hop": np.full(n, -1), "strength": np.zeros(n),
             "failure": np.where(rng.random(n) < world.topology.base_failure[cols["service"]], BENIGN, NONE)}
    lo, hi = t.min(initial=0), t.max(initial=0)
    for i, inc in enumerate(world.incidents):
        if inc.start > hi or inc.last_end < lo:
            continue
        p = inc.request_probability(cols["service"], cols["host"], t)
        hit = (cols["incident"] < 0) & (rng.random(n) < p)
        level, hop = inc.strength(cols["service"], cols["host"], t)
        cols["incident"][hit], cols["hop"][hit], cols["strength"][hit] = i, hop[hit], level[hit]
        share = np.where(hop == 0, inc.kind.failure_share, inc.kind.failure_share / 2)
        fails = hit & (rng.random(n) < share * level)
        cols["failure"][fails] = INCIDENT


def _grow(world: World, shard: Shard, rng: np.random.Generator):
    """Build request trees level by level, with the extra spans incidents cause."""
    topo = world.topology
    n_req = int(shard.events / topo.spans_per_request * 1.25) + 8
    root_time = world.load.sample_times(rng, shard.hour, n_req)
    entry = np.searchsorted(np.cumsum(topo.entry_weight), rng.random(n_req) * topo.entry_weight.sum())
    attacker = np.full(n_req, -1)
    primary_db = _primary_db(world)
    effects = np.array([inc.kind.effect or "" for inc in world.incidents] + [""])
    fast = np.array([inc.kind.fails_fast for inc in world.incidents] + [False])
    levels = _Levels()
    cols = {"request": np.arange(n_req), "parent": np.full(n_req, -1), "service": entry}
    depth = 0
    while len(cols["service"]):
        svc = cols["service"]
        cols["host"] = _pick(topo.host_offsets, svc, rng)
        cols["endpoint"] = _pick(topo.endpoints.offsets, svc, rng)
        cols["level"] = np.full(len(svc), depth)
        _hit(world, cols, root_time[cols["request"]], rng)
        effect = effects[cols["incident"]]  # -1 picks ""
        root_hit = cols["hop"] == 0
        # an early failure (exception, reset connection, rejected login) calls nothing
        cols["leaf"] = root_hit & fast[cols["incident"]] & (cols["failure"] == INCIDENT)
        # network loss: the caller retries the dropped call once
        dropped = cols["leaf"] & (effect == "retry")
        # credential stuffing: the hit identity call is a login by an attacker
        stuffed = root_hit & (effect == "attack")
        cols["endpoint"] = np.where(stuffed, _last_of(topo.endpoints.offsets, svc), cols["endpoint"])
        attacker[cols["request"][stuffed]] = cols["incident"][stuffed]
        index = levels.add(**cols)
        live = [index[~cols["leaf"]]]

        if dropped.any():
            retry_svc = svc[dropped]
            live.append(levels.add(request=cols["request"][dropped], parent=cols["parent"][dropped], level=depth,
                       service=retry_svc, host=_pick(topo.host_offsets, retry_svc, rng),
                       endpoint=cols["endpoint"][dropped], incident=cols["incident"][dropped],
                       hop=0, extra=True, retry_of=index[dropped]))
        # cache storm: each miss sends the caller to its database instead
        missed = root_hit & (effect == "cache_bypass") & (cols["parent"] >= 0)
        if missed.any():
            parents = cols["parent"][missed]
            parent_svc = np.concatenate(levels.parts["service"])[parents]
            db = primary_db[parent_svc]
            ok = db >= 0
            levels.add(request=cols["request"][missed][ok], parent=parents[ok], level=depth,
                       service=db[ok], host=_pick(topo.host_offsets, db[ok], rng),
                       endpoint=_pick(topo.endpoints.offsets, db[ok], rng),
                       incident=cols["incident"][missed][ok], hop=0, extra=True)

        # children: each call edge of a span's service fires Binomial(calls, p) times
        live = np.concatenate(live)
        owner = np.concatenate(levels.parts["service"])[live]
        degree = np.diff(topo.edge_offsets)[owner]
        rep = np.repeat(np.arange(len(live)), degree)
        edge = topo.edge_offsets[owner][rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(degree) - degree, degree))
        fired = rng.binomial(topo.edge_calls[edge], topo.edge_prob[edge])
        parent = np.repeat(live[rep], fired)
        all_request = np.concatenate(levels.parts["request"])
        cols = {"request": all_request[parent], "parent": parent, "service": np.repeat(topo.edge_dst[edge], fired)}
        depth += 1

    spans = levels.arrays()
    # the root of an attacked request is the edge's login page
    is_root = spans["parent"] < 0
    fix = is_root & (attacker[spans["request"]] >= 0) & (topo.tier[spans["service"]] == EDGE)
    spans["endpoint"][fix] = _last_of(topo.endpoints.offsets, spans["service"][fix])
    return spans, root_time, attacker


def _truncate(spans: dict, budget: int) -> dict:
    """Keep the first `budget` spans in (request, depth) order: whole requests, then
    the top of the last one, so every kept span still has its parent."""
    order = np.lexsort((spans["level"], spans["request"]))[:budget]
    new = np.full(len(spans["request"]), -1)
    new[order] = np.arange(len(order))
    out = {k: v[order] for k, v in spans.items()}
    for k in ("parent", "retry_of"):
        out[k] = np.where(out[k] >= 0, new[np.maximum(out[k], 0)], -1)
    return out


def simulate_spans(world: World, shard: Shard, rng: np.random.Generator) -> Spans:
    topo = world.topology
    spans, root_time, attacker = _grow(world, shard, rng)
    s = _truncate(spans, shard.events)
    n, svc, parent, level = len(s["service"]), s["service"], s["parent"], s["level"]
    t0 = root_time[s["request"]]

    # own work per span; incidents stretch it, load peaks a little
    base_self = np.exp(np.log(topo.self_ms[svc]) + topo.self_sigma[svc] * rng.standard_normal(n))
    base_self *= 1 + 0.15 * np.maximum(world.load.at(t0) - 1, 0)
    gains = np.array([inc.kind.latency_gain for inc in world.incidents] + [0.0])
    gain = np.where(s["hop"] > 0, 0.5, 1.0) * gains[s["incident"]]  # -1 picks the 0.0
    own = base_self * (1 + gain * s["strength"] * np.exp(0.3 * rng.standard_normal(n)))
    own = np.where(s["leaf"], base_self * rng.uniform(0.1, 0.5, n), own)  # failed early
    frac = rng.uniform(0.05, 0.5, n)  # where in its parent's own work a call starts
    has_parent = parent >= 0
    p = np.maximum(parent, 0)
    offset = np.where(has_parent, frac * own[p], 0.0)
    base_offset = np.where(has_parent, frac * base_self[p], 0.0)

    # call edge of each span, for its timeout and whether the caller waits
    edge = _edge_index(topo, svc[p], svc)
    timeout = np.where(has_parent, topo.edge_timeout_ms[edge], np.inf)
    asynchronous = has_parent & topo.edge_async[edge]

    duration, base_duration = np.zeros(n), np.zeros(n)
    wait, base_wait = np.zeros(n), np.zeros(n)
    failure, incident = s["failure"].copy(), s["incident"].copy()
    retried = np.zeros(n, dtype=bool)
    retried[s["retry_of"][s["retry_of"] >= 0]] = True
    for depth in range(level.max(initial=0), -1, -1):
        child = np.flatnonzero(level == depth + 1)
        if len(child):
            retry = child[s["retry_of"][child] >= 0]
            first = s["retry_of"][retry]
            offset[retry] = offset[first] + duration[first] + rng.uniform(50, 200, len(retry))
            seen = np.where(asynchronous[child], 1.0, np.minimum(duration[child], timeout[child]))
            np.maximum.at(wait, parent[child], offset[child] + seen)
            normal = ~s["extra"][child]
            base_seen = np.where(asynchronous[child], 1.0, base_duration[child])[normal]
            np.maximum.at(base_wait, parent[child][normal], base_offset[child][normal] + base_seen)
            timed_out = ~asynchronous[child] & (duration[child] > timeout[child])
            failed = (failure[child] != NONE) & ~asynchronous[child] & ~retried[child]
            spreads = timed_out | (failed & (rng.random(len(child)) < 0.8))
            upstream, any_timeout = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            np.logical_or.at(upstream, parent[child], spreads)
            np.logical_or.at(any_timeout, parent[child], timed_out)
            by_failure, by_delay = np.full(n, -1), np.full(n, -1)
            np.maximum.at(by_failure, parent[child], np.where(spreads, incident[child], -1))
            np.maximum.at(by_delay, parent[child], incident[child])
        here = np.flatnonzero(level == depth)
        duration[here] = own[here] + wait[here]
        base_duration[here] = base_self[here] + base_wait[here]
        if len(child):
            up = here[(failure[here] == NONE) & upstream[here]]
            failure[up] = np.where(any_timeout[up], TIMEOUT, UPSTREAM)
            clean = here[incident[here] < 0]
            inherit = np.where(by_failure[clean] >= 0, by_failure[clean],
                               np.where(duration[clean] > 1.2 * base_duration[clean], by_delay[clean], -1))
            incident[clean] = inherit

    start = t0.astype(float)
    for depth in range(1, level.max(initial=0) + 1):
        child = np.flatnonzero(level == depth)
        start[child] = start[parent[child]] + offset[child]

    n_req = len(root_time)
    hi, lo = (rng.integers(0, _U64, n_req, dtype=np.uint64, endpoint=True) for _ in range(2))
    return Spans(
        user=world.population.sample(rng, n_req), attacker=attacker, trace_hi=hi, trace_lo=lo,
        request=s["request"], parent=parent, service=svc, host=s["host"], endpoint=s["endpoint"],
        span_id=rng.integers(1, _U64, n, dtype=np.uint64, endpoint=True),
        start=start, duration=duration, failure=failure, incident=incident,
    )


def _edge_index(topo, caller: np.ndarray, callee: np.ndarray) -> np.ndarray:
    """Index of the call edge caller -> callee (0 where there is none, e.g. at roots)."""
    key = topo.edge_src * topo.size + topo.edge_dst
    pos = np.searchsorted(key, caller * topo.size + callee)
    return np.minimum(pos, len(key) - 1)
