"""Root-cause analysis of an archive, end to end: signals → windows → ranked causes.

Signals are aggregated with Ray Data; each incident window is then analysed on its
own, as one Ray task, which builds the causal graph, ranks causes, ranks the baselines
on the same data and writes `<out>/rca/windows/<id>.{json,graphml,png}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import networkx as nx
import polars as pl

from ocsf_ray.index.scorer import SCORE_SCHEMA
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import filesystem_for, join_uri, write_bytes
from ocsf_ray.rca import baselines
from ocsf_ray.rca import signals as sig
from ocsf_ray.rca.accuracy import evaluate_rca
from ocsf_ray.rca.causal import build_causal_graph, rank_causes, window_nodes
from ocsf_ray.rca.dependencies import declared_dependencies, log_service_aliases, trace_dependencies
from ocsf_ray.rca.options import RcaOptions
from ocsf_ray.rca.render import graphml, picture
from ocsf_ray.rca.windows import Window, incident_windows

SOURCES = ("log", "trace", "metric", "config")
MISSING = {
    "log": "no log events in the input: no error, latency or volume signals from logs",
    "trace": "no trace events in the input: no span signals, and service dependencies only from --dependencies",
    "metric": "no metric events in the input: resource causes (memory, CPU, connections) show only through logs and spans",
    "config": "no config change events in the input: no change can be named as a cause",
}
TOP_EVENTS = 10


@dataclass
class RcaInputs:
    """Everything a window's analysis needs besides its slice of signals."""

    changes: pl.DataFrame
    dependencies: nx.DiGraph
    score_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RcaRun:
    """What `run_rca` found: windows by start, each one's rankings, notes on what the
    archive lacked, and AC@k against ground truth when incidents were given."""

    windows: list[Window]
    results: dict[str, dict]  # window id → rankings (method and baselines)
    notes: list[str]
    evaluation: dict | None = None


def missing_source_notes(present: set[str], dependencies: nx.DiGraph, declared: bool) -> list[str]:
    """One note per source kind the archive lacks, and one when no dependency is known."""
    notes = [MISSING[kind] for kind in SOURCES if kind not in present]
    if not declared and dependencies.number_of_edges() == 0:
        notes.append("no service dependencies (no spans with parent ids, no --dependencies file): "
                     "edges only link signals of the same service, so cross-service causes rest on onset alone")
    return notes


def source_kinds(archive: CanonicalArchive) -> set[str]:
    """The kinds of source (log, trace, metric, config) the archive holds events of."""
    return {kind for kind in SOURCES if sig.families_of(archive, (kind,))}


def _renamed(aggregates: pl.DataFrame, aliases: dict[str, str]) -> pl.DataFrame:
    """Aggregates of aliased services summed into the service they stand for."""
    if not aliases or aggregates.is_empty():
        return aggregates
    return (aggregates.with_columns(pl.col("service").replace(aliases))
            .group_by(sig.EVENT_KEYS).agg(pl.exclude(sig.EVENT_KEYS).sum()))


def gather_signals(archive: CanonicalArchive, score_files: list[str], options: RcaOptions,
                   dependencies_path: str | None = None) -> tuple[pl.DataFrame, RcaInputs]:
    """Every signal of the archive, and what windows need besides (changes, dependencies, notes)."""
    present = source_kinds(archive)
    logs, spans = sig.families_of(archive, ("log",)), sig.families_of(archive, ("trace",))
    dependencies = declared_dependencies(dependencies_path) if dependencies_path else trace_dependencies(archive, spans)
    notes = missing_source_notes(present, dependencies, bool(dependencies_path))
    aliases = log_service_aliases(archive, logs, spans, dependencies)
    if aliases:
        notes.append("log services matched to span services by trace id: "
                     + ", ".join(f"{log} → {span}" for log, span in sorted(aliases.items())))
    events = _renamed(sig.event_aggregates(archive, logs + spans, options), aliases)
    parts = [sig.event_signals(events, options),
             sig.metric_signals(archive, sig.families_of(archive, ("metric",)), options)]
    if score_files:
        parts.append(sig.score_signals(_renamed(sig.score_aggregates(score_files, options), aliases), options))
    else:
        notes.append("no anomaly scores given (--scores): signals come from errors, latency, volume and metrics")
    changes = sig.config_changes(archive, sig.families_of(archive, ("config",)))
    return pl.concat(parts), RcaInputs(changes, dependencies, score_files, notes)


def _top_events(score_files: list[str], services: list[str], window: Window) -> list[dict]:
    """The window's highest-scored events of the given services, read with a pushed-down
    filter; each metadata_uid once (its highest score), should producers repeat uids."""
    import pyarrow.dataset as ds

    if not score_files or not services:
        return []
    columns = ["metadata_uid", "service", "family", "anomaly_score", "time"]
    schema = pl.DataFrame(schema={c: SCORE_SCHEMA[c] for c in columns}).to_arrow().schema  # files may hold all-null columns
    filesystem = filesystem_for(score_files[0])[0]  # local or cluster storage (s3://...)
    paths = [filesystem_for(f)[1] for f in score_files]
    table = ds.dataset(paths, format="parquet", schema=schema, filesystem=filesystem).to_table(
        columns=columns,
        filter=(ds.field("time") >= window.start) & (ds.field("time") < window.end) & ds.field("service").isin(services))
    top = (pl.from_arrow(table).drop_nulls("anomaly_score").sort("anomaly_score", descending=True)
           .unique("metadata_uid", keep="first", maintain_order=True).head(TOP_EVENTS))
    return top.to_dicts()


def _paths(graph: nx.DiGraph, root: str) -> dict[str, list[str]]:
    """From the top candidate to each symptom it reaches, along 'can explain' edges."""
    return {target: path for target, path in nx.single_source_shortest_path(graph, root).items() if target != root}


def service_candidates(graph: nx.DiGraph, candidates: list[dict]) -> list[dict]:
    """The ranking as services, each with the evidence an operator acts on: its first
    anomalous signal and when, the config changes on it in the window's graph (by
    event_uid), and the other services' signals it can explain (reachable along the
    graph's 'can explain' edges)."""
    found = []
    for c in candidates:
        if any(f["service"] == c["service"] for f in found):
            continue
        own = [n for n, a in graph.nodes(data=True) if a["service"] == c["service"]]
        signals = sorted((graph.nodes[n]["onset"], graph.nodes[n]["signal"]) for n in own
                         if graph.nodes[n]["kind"] == "signal")
        reached = set().union(*(nx.descendants(graph, n) for n in own)) - set(own)
        found.append({"service": c["service"], "rank": c["rank"], "score": c["score"],
                      "first_signal": signals[0][1] if signals else None,
                      "first_onset": signals[0][0] if signals else None,
                      "change_event_uids": [graph.nodes[n]["event_uid"] for n in own if graph.nodes[n]["kind"] == "change"],
                      "explains": sorted(reached)})
    return found


def analyse_window(signals: pl.DataFrame, window: Window, inputs: RcaInputs, options: RcaOptions, out: str) -> dict:
    """Rank one window's causes, write its JSON, GraphML and PNG, return its rankings."""
    graph = build_causal_graph(signals, window, inputs.changes, inputs.dependencies, options)
    candidates = rank_causes(graph, options)
    nodes = {n: a for n, a in graph.nodes(data=True)}
    top = next((n for n in graph.nodes if candidates and nodes[n]["service"] == candidates[0]["service"]
                and nodes[n]["signal"] == candidates[0]["signal"]
                and nodes[n].get("event_uid") == candidates[0].get("event_uid")), None)
    symptoms = graph.subgraph([n for n, a in nodes.items() if a["kind"] == "signal"])
    table = window_nodes(signals, window, options)
    rankings = {
        "method": candidates,
        "robust_deviation": baselines.robust_deviation(signals, window, options),
        "earliest_onset": baselines.earliest_onset(table),
        "random": baselines.random_orders(table, seed=window.start % 2**32),
    }
    report = {
        "id": window.id, "start": window.start, "end": window.end, "reason": window.reason,
        "candidates": candidates,
        "services": service_candidates(graph, candidates),
        "evidence": {
            "onsets": {n: a["onset"] for n, a in nodes.items()},
            "magnitudes": {n: round(float(a["magnitude"]), 3) for n, a in symptoms.nodes(data=True)},
            "paths": _paths(graph, top) if top else {},
            "edges": [{"from": u, "to": v, "reason": d["reason"], "weight": round(d["weight"], 4), "lag_ms": int(d["lag_ms"])}
                      for u, v, d in graph.edges(data=True)],
            "top_events": _top_events(inputs.score_files, [c["service"] for c in candidates[:3]], window),
            "baselines": {name: rankings[name][:5] for name in ("robust_deviation", "earliest_onset")},
            "notes": inputs.notes,
        },
    }
    root = join_uri(out, "rca", "windows")
    write_bytes(json.dumps(report, indent=2, default=str).encode(), join_uri(root, f"{window.id}.json"))
    write_bytes(graphml(graph), join_uri(root, f"{window.id}.graphml"))
    title = f"{window.id}: top candidate {candidates[0]['service']} / {candidates[0]['signal']}" if candidates else window.id
    write_bytes(picture(graph, top, title), join_uri(root, f"{window.id}.png"))
    return rankings


def run_rca(archive: CanonicalArchive, out: str, score_files: list[str] | None = None,
            dependencies_path: str | None = None, incidents: list[dict] | None = None,
            options: RcaOptions = RcaOptions(), on_progress=None) -> RcaRun:
    """Windows analysed in parallel as Ray tasks; evaluated when `incidents` are given."""
    import ray

    signals, inputs = gather_signals(archive, score_files or [], options, dependencies_path)
    windows = incident_windows(signals, options)
    analyse = ray.remote(num_cpus=1)(analyse_window)
    inputs_ref = ray.put(inputs)
    margin = options.baseline_minutes * 60_000
    pending = {analyse.remote(signals.filter(pl.col("bucket").is_between(w.start - margin, w.end)), w, inputs_ref, options, out): w
               for w in windows}
    results: dict[str, dict] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        window = pending.pop(done[0])
        results[window.id] = ray.get(done[0])
        if on_progress:
            on_progress(len(results), len(windows))
    run = RcaRun(sorted(windows, key=lambda w: w.start), results, inputs.notes)
    if incidents is not None:
        run.evaluation = evaluate_rca(results, run.windows, incidents)
        write_bytes(json.dumps(run.evaluation, indent=2).encode(), join_uri(out, "rca", "evaluation.json"))
    return run
