"""Application logs emitted while serving the spans: API Activity (6003) access logs
and Application Error (6008) events.

Logs are sampled from the spans (failing and incident-hit spans log more, databases
and caches log little), so each log carries its request's user, session, source
address and trace id. A 6003 log names its service in `api.service.name` and comes
from the log shipper's product; a 6008 log names its service only as
`metadata.product.name`, so service resolution has to use both fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .ocsf import API_ACTIVITY, APPLICATION_ERROR, const, envelope, i32, product, struct, table
from .population import ATTACK_AGENTS, POOL_SIZE, USER_AGENTS, attacker_pools
from .spans import BENIGN, INCIDENT, NONE, TIMEOUT, UPSTREAM, Spans
from .strings import concat, decimal128, event_uids, hex_ids, ints, render
from .topology import API, CACHE, DB, EDGE, WORKER

if TYPE_CHECKING:
    from .plan import Shard, World

SOURCE_CODE = 1
TRACE_ID_SHARE = 0.6  # logs that carry their trace id (as a decimal string)
_INTERNAL_AGENTS = ("Go-http-client/1.1", "okhttp/4.12.0", "python-requests/2.31.0", "grpc-java/1.60.0")

# (templates, OCSF class, severity, other severity, probability of the first)
_GROUPS = {
    "info_edge": (("{method} {path} served in {ms}ms", "Rendered {path} for {user}",
                   "Session refreshed for {user}"), API_ACTIVITY, 1, 2, 0.9),
    "info_get": (("Returning {noun} {id}", "{Noun} {id} retrieved in {ms}ms"), API_ACTIVITY, 1, 2, 0.9),
    "info_list": (("Listed {n} {noun}s in {ms}ms", "Returning page {n} of {noun}s"), API_ACTIVITY, 1, 2, 0.9),
    "info_create": (("Created {noun} {id} for {user}", "{Noun} {id} saved"), API_ACTIVITY, 1, 2, 0.9),
    "info_update": (("Updated {noun} {id}", "{Noun} {id} modified by {user}"), API_ACTIVITY, 1, 2, 0.9),
    "info_login": (("User {user} signed in", "Issued token for {user}"), API_ACTIVITY, 1, 2, 0.9),
    "info_worker": (("Processed {noun} job {id} in {ms}ms", "Dequeued {n} {noun} messages",
                     "{Noun} job {id} completed"), API_ACTIVITY, 1, 2, 0.9),
    "info_db": (("Query on {noun}s returned {n} rows in {ms}ms", "Connection authorized for {dep}"),
                API_ACTIVITY, 1, 2, 0.9),
    "info_cache": (("Cache hit for {noun}:{id}", "Cache set {noun}:{id} ttl={n}s"), API_ACTIVITY, 1, 2, 0.9),
    "slow": (("Slow {noun} processing: {ms}ms", "Request {id} took {ms}ms"), API_ACTIVITY, 3, 2, 0.5),
    "failed": (("Request {method} {path} failed with status {code}",), API_ACTIVITY, 3, 2, 0.5),
    "warn": (("Validation failed for field {noun}_id", "Client closed request after {ms}ms",
              "Retrying {dep} request (attempt {n})", "Deprecated API version used by {user}",
              "Rate limit exceeded for {user}"), APPLICATION_ERROR, 3, 2, 0.7),
    "error": (("{Noun} {id} not found", "Conflict updating {noun} {id}",
               "Upstream {dep} returned {code} for request {id}"), APPLICATION_ERROR, 4, 3, 0.7),
    "notice": (("checkpoint complete: wrote {n} buffers", "autovacuum of table {noun}s: {n} pages removed"),
               APPLICATION_ERROR, 2, 1, 0.8),
    "timeout": (("Timeout calling {dep} after {ms}ms",), APPLICATION_ERROR, 4, 3, 0.6),
    "upstream": (("Upstream {dep} returned {code} for request {id}",), APPLICATION_ERROR, 4, 3, 0.6),
}
_INFO = {EDGE: "info_edge", API: "info_get", WORKER: "info_worker", DB: "info_db", CACHE: "info_cache"}
_TIER_WEIGHT = np.array([1.0, 1.0, 1.2, 0.12, 0.03])  # edge, api, worker, db, cache


def _group_table(world: World):
    """All template groups, the incidents' own last: names, templates, offsets, classes, severities."""
    groups = dict(_GROUPS)
    for i, inc in enumerate(world.incidents):
        groups[f"root{i}"] = (inc.kind.templates, APPLICATION_ERROR, 4, 3, 0.5)
        groups[f"caller{i}"] = (inc.kind.caller_templates, APPLICATION_ERROR, 4, 3, 0.5)
    names = list(groups)
    templates = [t for g in names for t in groups[g][0]]
    sizes = np.array([len(groups[g][0]) for g in names])
    meta = np.array([(groups[g][1].uid, groups[g][2], groups[g][3], groups[g][4]) for g in names])
    return {g: k for k, g in enumerate(names)}, templates, np.concatenate([[0], np.cumsum(sizes)]), meta


def _choose_groups(world: World, spans: Spans, k: np.ndarray, rng: np.random.Generator, gid: dict) -> np.ndarray:
    topo = world.topology
    svc, failure, inc = spans.service[k], spans.failure[k], spans.incident[k]
    tier = topo.tier[svc]
    roots = np.array([i.root for i in world.incidents] + [-1])
    at_root = roots[inc] == svc
    incident_group = len(_GROUPS) + 2 * inc + np.where(at_root, 0, 1)  # see _group_table
    u = rng.random(len(k))
    info = np.array([gid[_INFO[t]] for t in range(5)])[tier]
    # an API's access log says what its endpoint did
    ep = topo.endpoints
    login = np.array([op == "Login" for op in ep.operation])[spans.endpoint[k]]
    activity, has_id = ep.activity_id[spans.endpoint[k]], ep.has_id[spans.endpoint[k]]
    info = np.select(
        [login, tier != API, activity == 1, activity == 3, has_id],
        [gid["info_login"], info, gid["info_create"], gid["info_update"], gid["info_get"]],
        default=gid["info_list"],
    )
    typical = np.zeros(topo.size)
    for s in np.unique(spans.service):  # a service's median duration in this shard
        typical[s] = np.median(spans.duration[spans.service == s])
    slow_tail = spans.duration[k] > 3 * typical[svc]
    store = (tier == DB) | (tier == CACHE)
    by_failure = np.select(
        [failure == INCIDENT, failure == TIMEOUT, failure == UPSTREAM, failure == BENIGN],
        [incident_group, gid["timeout"], gid["upstream"], gid["error"]],
    )
    return np.select(
        [
            (failure != NONE) & (store | (u < 0.6)),
            failure != NONE,
            (inc >= 0) & (u < 0.2),
            (inc >= 0) & (u < 0.4),
            store & (u < 0.3),
            ~store & (u < 0.04),
            slow_tail & (u < 0.5),
        ],
        [by_failure, gid["failed"], incident_group, gid["slow"],
         np.where(tier == DB, gid["notice"], info), gid["warn"], gid["slow"]],
        default=info,
    )


def _http_code(world: World, spans: Spans, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    failure, inc = spans.failure[k], spans.incident[k]
    codes = np.array([i.kind.http_code for i in world.incidents] + [500])
    created = world.topology.endpoints.activity_id[spans.endpoint[k]] == 1
    return np.select(
        [failure == INCIDENT, failure == TIMEOUT, failure == UPSTREAM, failure == BENIGN],
        [codes[inc], 504, 502, np.array([400, 404, 409, 500])[rng.integers(0, 4, len(k))]],
        default=np.where(created, 201, 200),
    )


def _sessions(world: World, user: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> pa.StringArray:
    """A user's session id is the same all day (one of two per day), a stable hash."""
    day = (t // 86_400_000).astype(np.uint64)
    x = user.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + day * np.uint64(0xBF58476D1CE4E5B9)
    x ^= np.uint64(world.run_tag) + rng.integers(0, 2, len(user)).astype(np.uint64)
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0x94D049BB133111EB)
    return hex_ids(x ^ (x >> np.uint64(29)), 12, prefix="sess-")


def log_events(world: World, shard: Shard, spans: Spans, rng: np.random.Generator):
    """Sample `shard.logs` log events from the spans; the OCSF table and labels."""
    topo, pop = world.topology, world.population
    weight = _TIER_WEIGHT[topo.tier[spans.service]] * (1 + (spans.failure != NONE))
    k = np.sort(rng.choice(len(spans), size=shard.logs, p=weight / weight.sum()))
    n = len(k)
    gid, templates, offsets, meta = _group_table(world)
    group = _choose_groups(world, spans, k, rng, gid)
    template = offsets[group] + (rng.random(n) * np.diff(offsets)[group]).astype(np.int64)
    class_uid, sev_a, sev_b, p_a = meta[group].T
    is_error_class = class_uid == APPLICATION_ERROR.uid
    severity = np.where(rng.random(n) < p_a, sev_a, sev_b).astype(np.int64)
    # an incident's messages on requests that still succeed are warnings, not errors
    severity = np.where((group >= len(_GROUPS)) & (spans.failure[k] == NONE), severity - 1, severity)

    svc, host, ep, req = spans.service[k], spans.host[k], spans.endpoint[k], spans.request[k]
    parent = spans.parent[k]
    is_root = parent < 0
    tier = topo.tier[svc]
    http = np.array([p is not None for p in topo.endpoints.path])[ep] & ~is_error_class
    time = np.floor(spans.start[k] + spans.duration[k]).astype(np.int64) + rng.integers(0, 4, n)
    duration = np.round(spans.duration[k]).astype(np.int64)
    code = _http_code(world, spans, k, rng)

    # who: the request's user, or the attacker behind a credential-stuffing request
    attacker = spans.attacker[req]
    attacked = attacker >= 0
    user = spans.user[req]
    tried = pc.if_else(pa.array(rng.random(n) < 0.5), pop.names.take(pa.array(rng.integers(0, pop.size, n))),
                       concat("user", ints(rng.integers(100, 99_999, n))))
    user_name = pc.if_else(pa.array(attacked), tried, pop.names.take(pa.array(user)))
    user_uid = pop.uids.take(pa.array(user, mask=attacked))
    parent_host = spans.host[np.maximum(parent, 0)]
    src_ip = pc.if_else(
        pa.array(is_root),
        pc.if_else(pa.array(attacked),
                   attacker_pools(world.config.seed, len(world.incidents)).take(
                       pa.array(POOL_SIZE * np.maximum(attacker, 0) + rng.integers(0, POOL_SIZE, n))),
                   pop.ips.take(pa.array(user))),
        pa.array(topo.host_ips).take(pa.array(parent_host)),
    )
    agent = np.where(attacked, np.array(ATTACK_AGENTS)[rng.integers(0, len(ATTACK_AGENTS), n)],
                     np.array(USER_AGENTS)[pop.agents[user]])
    agent = np.where(is_root, agent, np.array(_INTERNAL_AGENTS)[spans.service[np.maximum(parent, 0)] % 4])

    path_id = np.where(np.array([noun == "user" for noun in topo.noun])[svc], 1000 + user % 50_000,
                       rng.integers(1, 60_000, n))
    has_id = topo.endpoints.has_id[ep]
    path = pa.array(topo.endpoints.path, pa.string()).take(pa.array(ep))
    path = pc.if_else(pa.array(has_id), concat(path, ints(path_id)), path)
    noun = pa.array(topo.noun).take(pa.array(svc))
    roots = np.array([i.root for i in world.incidents] + [0])
    callee = topo.edge_dst[np.minimum(topo.edge_offsets[svc], len(topo.edge_dst) - 1)]
    has_callee = np.diff(topo.edge_offsets)[svc] > 0
    dep = np.where(spans.incident[k] >= 0, roots[spans.incident[k]],
                   np.where(has_callee, callee, spans.service[np.maximum(parent, 0)]))
    names = pa.array(topo.names)
    message = render(templates, template, {
        "noun": noun, "Noun": pc.utf8_capitalize(noun), "id": path_id, "ms": duration,
        "n": rng.integers(2, 64, n), "user": user_name, "ip": src_ip, "code": code,
        "host": pa.array(topo.host_names).take(pa.array(host)), "dep": names.take(pa.array(dep)),
        "pct": 80 + rng.integers(0, 10, n) + 9 * (spans.incident[k] >= 0), "mb": 512 * 2 ** (host % 3),
        "method": pa.array(topo.endpoints.method).take(pa.array(ep)), "path": path,
    })

    order = np.argsort(time, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    service = names.take(pa.array(svc))
    product_name = pc.if_else(pa.array(is_error_class), service, const("fluent-bit", n))
    product_version = pc.if_else(pa.array(is_error_class), world.changes.version_at(svc, time), const("3.1.9", n))
    failed = code >= 400
    hostname = pc.if_else(pa.array(is_root & (tier == EDGE)), "shop.example.com",
                          concat(service, ".svc.cluster.local"))
    with_trace = rng.random(n) < TRACE_ID_SHARE
    trace_uid = decimal128(spans.trace_hi, spans.trace_lo).take(pa.array(req, mask=~with_trace))
    with_resource = ~is_error_class & has_id & (rng.random(n) < 0.5)
    resource = struct(type=noun.filter(pa.array(with_resource)),
                      uid=concat(noun, "-", ints(path_id)).filter(pa.array(with_resource)))
    resources = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(with_resource)]).astype(np.int32)), resource,
        mask=pa.array(~with_resource),
    )
    columns = envelope(
        (API_ACTIVITY, APPLICATION_ERROR), is_error_class.astype(np.int64),
        uid=event_uids(world.run_tag, SOURCE_CODE, shard.hour, shard.part, rank),
        product=product(product_name, "Shop", product_version),
        time=time,
        activity_id=np.where(is_error_class, 1, topo.endpoints.activity_id[ep]),
        severity_id=severity,
        status_id=np.where(failed | (is_error_class & (severity >= 4)), 2, 1),
        message=message,
    )
    columns |= {
        "api": struct(
            is_error_class,
            operation=pa.array(topo.endpoints.operation).take(pa.array(ep)),
            service=struct(name=service),
            response=struct(code=i32(code)),
        ),
        "http_request": struct(
            ~http,
            http_method=pa.array(topo.endpoints.method).take(pa.array(ep)),
            url=struct(path=path, hostname=hostname),
            user_agent=pa.array(agent),
        ),
        "http_response": struct(~http, code=i32(code), latency=i32(duration)),
        "duration": pa.array(duration, mask=is_error_class),
        "actor": struct(
            (tier == DB) | (tier == CACHE),
            user=struct(uid=user_uid, name=user_name),
            session=struct(uid=_sessions(world, user, time, rng)),
        ),
        "src_endpoint": struct(ip=src_ip, port=i32(rng.integers(32_768, 61_000, n))),
        "device": struct(hostname=pa.array(topo.host_names).take(pa.array(host))),
        "trace": struct(~with_trace, uid=trace_uid),
        "resources": resources,
    }
    return table(columns, order), spans.incident[k][order]
