"""Causal graph of one incident window and the random walk that ranks its causes.

Nodes are the window's anomalous (service, signal) pairs and the config changes just
before or inside it. An edge u → v says "u can explain v":

- along the service dependency graph in the direction faults propagate: trouble of a
  callee shows in its callers, so u's service must be called by v's service; except
  for a rise in volume, which travels down (retries, cache misses): a callee's extra
  load is explained by its callers;
- inside one service, between its own signals;
- from a config change to its own service's signals that start after it in the window
  (a bad deployment's errors may take a while to reach a quiet service's logs; the
  edge's weight decays with the delay, e-fold per `max_lag_minutes`);

and between signals u's onset is not after v's (within one smoothing span of jitter)
and v starts at most `max_lag_minutes` after u. Edges carry why they exist and the
strength of association of the two anomaly series in the window (|Pearson r|).

Ranking is personalised PageRank on the reversed graph: a walker starts at a symptom
and steps from effects to what can explain them, and a node nothing explains keeps the
walker (a self-loop), so probability gathers where explanations end: the root cause. Walks start at a symptom in proportion to the square
of its excess over the threshold (signals barely over it are where noise lives) and to
its earliness (e-fold per `max_lag_minutes` after the window's first onset), divided by
the number of services a common-cause signal moves for (`common_causes`).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import polars as pl

from ocsf_ray.rca.accuracy import with_ranks
from ocsf_ray.rca.options import RcaOptions
from ocsf_ray.rca.windows import Window

CHANGE_SIGNAL = "config.{}"
LOAD_SUFFIX = ".volume"  # load travels the other way: a caller's retries or cache misses raise its callee's volume
MIN_ASSOCIATION = 0.05
COMMON_SERVICES, COMMON_SHARE = 3, 0.5  # see `common_causes`


def window_nodes(signals: pl.DataFrame, window: Window, options: RcaOptions) -> pl.DataFrame:
    """Anomalous (service, signal) pairs in the window with onset and magnitude. The
    onset is the start of the sustained anomaly around the pair's peak (its anomalous
    buckets with gaps of at most `smooth` buckets), not an earlier blip in the window."""
    inside = signals.filter(pl.col("bucket").is_between(window.start, window.end, closed="left"))
    pair = ["service", "signal", "source"]
    hot = inside.filter(pl.col("z") >= options.threshold).sort(*pair, "bucket")
    gap = pl.col("bucket").diff().over(pair).fill_null(0) > options.smooth * options.bucket_ms
    hot = hot.with_columns(gap.cast(pl.Int32).cum_sum().over(pair).alias("run"))
    peak = hot.sort("z", descending=True).unique(pair, keep="first").select(*pair, "run")
    onsets = hot.join(peak, on=[*pair, "run"]).group_by(pair).agg(pl.col("bucket").min().alias("onset"))
    return (hot.group_by(pair)
            .agg(pl.col("z").max().alias("magnitude"), pl.len().alias("anomalous_buckets"))
            .join(onsets, on=pair)
            .filter(pl.col("anomalous_buckets") >= options.min_buckets)
            .select(*pair, "onset", "magnitude", "anomalous_buckets")
            .sort("onset", "magnitude", "service", "signal", descending=[False, True, False, False]))


def _series(signals: pl.DataFrame, nodes: pl.DataFrame, window: Window, options: RcaOptions) -> dict[tuple, np.ndarray]:
    buckets = np.arange(window.start, window.end, options.bucket_ms)
    inside = signals.join(nodes.select("service", "signal"), on=["service", "signal"]).filter(
        pl.col("bucket").is_between(window.start, window.end, closed="left"))
    series = {}
    for (service, signal), group in inside.group_by("service", "signal"):
        values = np.zeros(len(buckets))
        values[(group.get_column("bucket").to_numpy() - window.start) // options.bucket_ms] = group.get_column("z").to_numpy()
        series[(service, signal)] = values
    return series


def _association(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return MIN_ASSOCIATION
    return max(abs(float(np.corrcoef(a, b)[0, 1])), MIN_ASSOCIATION)


def build_causal_graph(signals: pl.DataFrame, window: Window, changes: pl.DataFrame,
                       dependencies: nx.DiGraph, options: RcaOptions) -> nx.DiGraph:
    """The window's causal graph (see the module docstring for its nodes and edges):
    node ids `<service>/<signal>` (attributes kind="signal", onset in epoch ms, magnitude
    in z units, anomalous_buckets) and `<service>/change/<event_uid>` (kind="change");
    edges carry `reason`, `lag_ms` and `weight` (|Pearson r| of the two anomaly series,
    at least MIN_ASSOCIATION; for a change, e-fold decay per max_lag_minutes).
    `dependencies`: caller → callee edges (`ocsf_ray.rca.dependencies`)."""
    nodes = window_nodes(signals, window, options)
    series = _series(signals, nodes, window, options)
    graph = nx.DiGraph(window=window.id, start=window.start, end=window.end)
    for row in nodes.iter_rows(named=True):
        graph.add_node(f"{row['service']}/{row['signal']}", kind="signal", **row)
    lookback = window.start - options.change_lookback_minutes * 60_000
    for change in changes.filter(pl.col("time").is_between(lookback, window.end)).iter_rows(named=True):
        graph.add_node(f"{change['service']}/change/{change['metadata_uid']}", kind="change",
                       service=change["service"], signal=CHANGE_SIGNAL.format(change["change"]), source="config",
                       onset=change["time"], magnitude=0.0, event_uid=change["metadata_uid"],
                       message=change["message"] or "")
    lag, jitter = options.max_lag_minutes * 60_000, options.smooth * options.bucket_ms
    symptoms = [(n, a) for n, a in graph.nodes(data=True) if a["kind"] == "signal"]
    for u, a in graph.nodes(data=True):
        for v, b in symptoms:
            if u == v:
                continue
            gap = b["onset"] - a["onset"]
            if a["kind"] == "change":
                if a["service"] == b["service"] and gap >= -options.bucket_ms:
                    graph.add_edge(u, v, reason="change precedes its service's anomaly", lag_ms=gap,
                                   weight=math.exp(-max(gap, 0) / lag))
                continue
            if not -jitter <= gap <= lag:
                continue
            if a["service"] == b["service"]:
                reason = "same service, earlier onset"
            elif b["signal"].endswith(LOAD_SUFFIX):
                if not dependencies.has_edge(a["service"], b["service"]):
                    continue
                reason = f"{a['service']} calls {b['service']} (load)"
            elif dependencies.has_edge(b["service"], a["service"]):
                reason = f"{b['service']} calls {a['service']}"
            else:
                continue
            graph.add_edge(u, v, reason=reason, lag_ms=gap,
                           weight=_association(series[(a["service"], a["signal"])], series[(b["service"], b["signal"])]))
    return graph


def rank_causes(graph: nx.DiGraph, options: RcaOptions) -> list[dict]:
    """Candidates best first: (service, signal, score, rank[, event_uid]) per node. Equal
    scores share a rank (`with_ranks`): listed by onset, then name, they stay a tie."""
    symptoms = {n: a for n, a in graph.nodes(data=True) if a["kind"] == "signal"}
    if not symptoms:
        return []
    first = min(a["onset"] for a in symptoms.values())
    scale = options.max_lag_minutes * 60_000
    shared = common_causes(symptoms.values())
    personal = {n: (a["magnitude"] - options.threshold + 1) ** 2 * math.exp(-(a["onset"] - first) / scale)
                / shared.get(a["signal"], 1) for n, a in symptoms.items()}
    walk = graph.reverse(copy=True)
    walk.add_edges_from(((n, n, {"weight": 1.0}) for n in graph.nodes if graph.in_degree(n) == 0))
    scores = nx.pagerank(walk, alpha=options.damping, personalization=personal, weight="weight")
    ranked = sorted(graph.nodes, key=lambda n: (-round(scores[n], 9), graph.nodes[n]["onset"], n))
    return with_ranks([candidate(graph.nodes[n], scores[n]) for n in ranked])


def common_causes(symptoms) -> dict[str, int]:
    """Signals anomalous for at least COMMON_SERVICES services and COMMON_SHARE of the
    window's anomalous services, with their number of services: a signal that moves for
    nearly every service at once (shared load, a global counter) says little about
    which one started it, so its walks start there 1/count as often."""
    services: dict[str, set] = {}
    for a in symptoms:
        services.setdefault(a["signal"], set()).add(a["service"])
    everyone = set().union(*services.values()) if services else set()
    return {signal: len(s) for signal, s in services.items()
            if len(s) >= COMMON_SERVICES and len(s) >= COMMON_SHARE * len(everyone)}


def candidate(node: dict, score: float) -> dict:
    """A ranked candidate as the window's JSON lists it: service, signal, score (the
    PageRank probability) and, for a config change, its event_uid."""
    found = {"service": node["service"], "signal": node["signal"], "score": round(float(score), 9)}
    if node.get("event_uid"):
        found["event_uid"] = node["event_uid"]
    return found
