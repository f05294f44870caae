"""The simulated system: services in tiers, their hosts, endpoints and call DAG.

Incidents travel from a root service to its callers along this graph, so the graph
is also ground truth (written to `ground_truth/topology.json`). Calls only go from a
lower tier (or an earlier API service) to a later one, which keeps it acyclic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIERS = ("edge", "api", "worker", "db", "cache")
EDGE, API, WORKER, DB, CACHE = range(5)

# name -> resource noun used in paths, operations and messages
_POOLS: dict[int, dict[str, str]] = {
    EDGE: {"frontend": "page", "api-gateway": "route", "mobile-bff": "screen"},
    API: {
        "identity": "user", "checkout": "order", "cart": "cart", "catalog": "product",
        "payments": "payment", "search": "query", "inventory": "item", "shipping": "shipment",
        "pricing": "price", "reviews": "review", "recommendations": "suggestion",
        "notifications": "notification", "promotions": "coupon", "loyalty": "reward",
        "accounts": "account", "orders": "order",
    },
    WORKER: {
        "email-worker": "email", "billing-worker": "invoice", "search-indexer": "document",
        "report-worker": "report", "image-resizer": "image", "fraud-scorer": "transaction",
    },
    DB: {
        "users-db": "user", "orders-db": "order", "catalog-db": "product",
        "payments-db": "payment", "inventory-db": "item", "analytics-db": "event",
    },
    CACHE: {"session-cache": "session", "catalog-cache": "product", "cart-cache": "cart",
            "rate-limit-cache": "bucket"},
}

# per tier: median self time (ms) range, log-normal sigma, base failure rate, hosts range
_TIER_PROFILE = {
    EDGE: ((3.0, 8.0), 0.5, 0.002, (2, 4)),
    API: ((8.0, 45.0), 0.6, 0.004, (2, 4)),
    WORKER: ((40.0, 250.0), 0.7, 0.006, (2, 3)),
    DB: ((0.8, 6.0), 0.8, 0.001, (1, 2)),
    CACHE: ((0.15, 0.8), 0.5, 0.0005, (1, 3)),
}
_TIMEOUT_MS = {API: 3000, WORKER: 10_000, DB: 1500, CACHE: 250}


@dataclass(frozen=True)
class Endpoints:
    """All services' endpoints flattened; a service's block is `offsets[s]:offsets[s+1]`."""

    offsets: np.ndarray
    method: tuple[str, ...]
    path: tuple[str | None, ...]  # URL path, followed by an id where has_id; None if not HTTP
    has_id: np.ndarray
    operation: tuple[str, ...]
    activity_id: np.ndarray  # OCSF API Activity: 1 create, 2 read, 3 update, 4 delete


@dataclass(frozen=True)
class Topology:
    names: tuple[str, ...]
    tier: np.ndarray
    noun: tuple[str, ...]
    host_names: tuple[str, ...]
    host_ips: tuple[str, ...]
    host_service: np.ndarray
    host_offsets: np.ndarray  # hosts of service s are host_offsets[s]:host_offsets[s+1]
    self_ms: np.ndarray  # median self time per service
    self_sigma: np.ndarray
    base_failure: np.ndarray
    entry_weight: np.ndarray  # probability a request enters at this service
    # call DAG, edges sorted by caller: edges of s are edge_offsets[s]:edge_offsets[s+1]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_offsets: np.ndarray
    edge_prob: np.ndarray
    edge_calls: np.ndarray  # each request makes Binomial(edge_calls, edge_prob) calls
    edge_timeout_ms: np.ndarray
    edge_async: np.ndarray  # queue publish: the caller does not wait for the callee
    endpoints: Endpoints
    visits: np.ndarray  # expected spans of each service per request

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def spans_per_request(self) -> float:
        return float(self.visits.sum())

    def index(self, name: str) -> int:
        return self.names.index(name)

    def caller_hops(self, root: int, max_hops: int = 3) -> np.ndarray:
        """Hop distance from every service down the call graph to `root` (-1 if none)."""
        hops = np.full(self.size, -1, dtype=np.int64)
        hops[root] = 0
        frontier = [root]
        for hop in range(1, max_hops + 1):
            callers = np.unique(self.edge_src[np.isin(self.edge_dst, frontier)])
            callers = [int(c) for c in callers if hops[c] < 0]
            hops[callers] = hop
            frontier = callers
        return hops

    def to_json(self) -> dict:
        return {
            "services": [
                {
                    "name": name,
                    "tier": TIERS[self.tier[s]],
                    "hosts": list(self.host_names[self.host_offsets[s] : self.host_offsets[s + 1]]),
                }
                for s, name in enumerate(self.names)
            ],
            "calls": [
                {"caller": self.names[a], "callee": self.names[b], "async": bool(asy)}
                for a, b, asy in zip(self.edge_src, self.edge_dst, self.edge_async)
            ],
        }


def _tier_counts(n: int) -> list[int]:
    edge = 1 + (n >= 16)
    db = max(1, round(n * 0.18))
    cache = 0 if n < 4 else max(1, round(n * 0.1))
    worker = 0 if n < 6 else max(1, round(n * 0.12))
    return [edge, n - edge - db - cache - worker, worker, db, cache]


def _names(tier: int, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    pool = list(_POOLS[tier].items())
    # identity serves logins, so it always exists; the first DB and cache back it
    head = [pool[0]] if tier in (API, DB, CACHE) else []
    rest = [pool[i] for i in rng.permutation(len(pool) - len(head)) + len(head)]
    ordered = head + rest
    return [
        (name if k < len(ordered) else f"{name}-{k // len(ordered) + 1}", noun)
        for k in range(count)
        for name, noun in [ordered[k % len(ordered)]]
    ]


def _resource_endpoints(base: str, noun: str) -> list[tuple[str, str | None, bool, str, int]]:
    title = noun.title().replace("-", "")
    return [
        ("GET", f"{base}/", True, f"Get{title}", 2),
        ("GET", base, False, f"List{title}s", 2),
        ("POST", base, False, f"Create{title}", 1),
        ("PUT", f"{base}/", True, f"Update{title}", 3),
    ]


def _endpoints(tier: int, name: str, noun: str, entry_nouns: list[str]) -> list[tuple]:
    """(method, path, has id, operation, activity id) per endpoint of one service.

    Edge services expose the resources of the APIs they front, so their paths read
    like a shop's (`/products/327`), not like the internal API's (`/api/products/327`).
    """
    if tier == EDGE:
        rows = [row for n in entry_nouns for row in _resource_endpoints(f"/{n}s", n)[:3:2]]
        return rows + [("GET", "/", False, "Home", 2), ("POST", "/login", False, "Login", 1)]
    if tier == API:
        rows = _resource_endpoints(f"/api/{noun}s", noun)
        return rows + ([("POST", "/api/login", False, "Login", 1)] if name == "identity" else [])
    if tier == WORKER:
        return [("POST", None, False, f"process {noun}.created", 1),
                ("POST", None, False, f"process {noun}.updated", 3)]
    if tier == DB:
        return [(verb, None, False, f"{verb} {noun}s", act)
                for verb, act in (("SELECT", 2), ("SELECT", 2), ("INSERT", 1), ("UPDATE", 3))]
    return [("GET", None, False, f"GET {noun}:*", 2), ("SET", None, False, f"SET {noun}:*", 3)]


def _expected_visits(n: int, entry: np.ndarray, src, dst, prob, calls) -> np.ndarray:
    visits = entry.astype(float).copy()
    for s in range(n):  # services are numbered in call order, so one pass suffices
        out = src == s
        np.add.at(visits, dst[out], visits[s] * prob[out] * calls[out])
    return visits


def build_topology(n_services: int, rng: np.random.Generator) -> Topology:
    counts = _tier_counts(n_services)
    tier = np.repeat(np.arange(5), counts)
    named = [pair for t, c in enumerate(counts) for pair in _names(t, c, rng)]
    names = tuple(name for name, _ in named)
    nouns = tuple(noun for _, noun in named)
    of = {t: np.flatnonzero(tier == t) for t in range(5)}

    edges: dict[tuple[int, int], tuple[float, int]] = {}

    def link(a: int, b: int, p: float, calls: int = 1) -> None:
        edges.setdefault((int(a), int(b)), (p, calls))

    apis, entries = of[API], of[API][: 3 + n_services // 8]
    for e in of[EDGE]:
        for a in entries:
            link(e, a, 0.3 if names[a] == "identity" else rng.uniform(0.35, 0.7))
    for k, a in enumerate(apis[len(entries):], start=len(entries)):
        for c in rng.choice(apis[:k], size=min(k, rng.integers(1, 3)), replace=False):
            link(c, a, rng.uniform(0.2, 0.45))
    for k, a in enumerate(apis):
        if len(of[DB]):
            link(a, of[DB][k % len(of[DB])], rng.uniform(0.6, 0.9), int(rng.integers(1, 4)))
        if len(of[CACHE]) and rng.random() < 0.75:
            link(a, rng.choice(of[CACHE]), rng.uniform(0.6, 0.9))
        if len(of[WORKER]) and rng.random() < 0.4:
            link(a, rng.choice(of[WORKER]), rng.uniform(0.08, 0.25))
    for w in of[WORKER]:
        link(w, rng.choice(of[DB]), 0.9, 2)
        if not any(b == w for _, b in edges):
            link(rng.choice(apis), w, 0.15)
    for x in np.concatenate([of[DB], of[CACHE]]):
        if not any(b == x for _, b in edges):
            link(rng.choice(apis), x, 0.5)

    keys = sorted(edges)
    src = np.array([a for a, _ in keys])
    dst = np.array([b for _, b in keys])
    prob = np.array([edges[k][0] for k in keys])
    calls = np.array([edges[k][1] for k in keys])
    entry = np.zeros(n_services)
    entry[of[EDGE]] = 1.0 / len(of[EDGE])
    visits = _expected_visits(n_services, entry, src, dst, prob, calls)
    while visits.sum() > 14:  # keep requests a plausible size on big graphs
        prob = np.where(tier[src] == EDGE, prob, prob * 0.85)
        visits = _expected_visits(n_services, entry, src, dst, prob, calls)

    profiles = [_TIER_PROFILE[t] for t in tier]
    n_hosts = np.array([rng.integers(p[3][0], p[3][1] + 1) for p in profiles])
    host_service = np.repeat(np.arange(n_services), n_hosts)
    pod = rng.integers(0, 16**9, size=n_services)
    host_names = tuple(
        f"{names[s]}-{pod[s]:09x}-{k}" for s in range(n_services) for k in range(n_hosts[s])
    )
    host_ips = tuple(f"10.{20 + s % 200}.{k // 250}.{10 + k % 250}" for s, k in
                     ((s, k) for s in range(n_services) for k in range(n_hosts[s])))

    entry_nouns = [nouns[a] for a in entries if names[a] != "identity"]
    eps = [_endpoints(t, name, noun, entry_nouns) for t, (name, noun) in zip(tier, named)]
    flat = [row for rows in eps for row in rows]
    endpoints = Endpoints(
        offsets=np.concatenate([[0], np.cumsum([len(r) for r in eps])]),
        method=tuple(r[0] for r in flat),
        path=tuple(r[1] for r in flat),
        has_id=np.array([r[2] for r in flat]),
        operation=tuple(r[3] for r in flat),
        activity_id=np.array([r[4] for r in flat]),
    )
    return Topology(
        names=names,
        tier=tier,
        noun=nouns,
        host_names=host_names,
        host_ips=host_ips,
        host_service=host_service,
        host_offsets=np.concatenate([[0], np.cumsum(n_hosts)]),
        self_ms=np.array([rng.uniform(*p[0]) for p in profiles]),
        self_sigma=np.array([p[1] for p in profiles]),
        base_failure=np.array([p[2] for p in profiles]) * rng.uniform(0.5, 2.0, n_services),
        entry_weight=entry,
        edge_src=src,
        edge_dst=dst,
        edge_offsets=np.searchsorted(src, np.arange(n_services + 1)),
        edge_prob=prob,
        edge_calls=calls,
        edge_timeout_ms=np.array([_TIMEOUT_MS[tier[b]] for b in dst]),
        edge_async=tier[dst] == WORKER,
        endpoints=endpoints,
        visits=visits,
    )
