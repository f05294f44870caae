"""Service dependency graph: who calls whom, mined from spans or declared in YAML.

Spans are joined to their parent spans with a Ray Data hash join on (trace id, span
id), so the graph comes from archives of any size; an edge caller → callee carries the
number of calls seen. Archives without spans (or without parent ids) can declare the
graph in a YAML file mapping each caller to its callees.
"""

from __future__ import annotations

import networkx as nx
import polars as pl
import pyarrow as pa
import yaml

from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.rca.signals import collect

SPAN_FIELDS = ("span_uid", "span_id")
PARENT_FIELDS = ("span_parent_uid", "span_parent_id", "parent_span_id", "parent_uid")
TRACE_FIELDS = ("trace_uid", "trace_id")


def _first(columns, names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


def _span_links(batch: pa.Table) -> pa.Table:
    """(trace, span, parent, service) of each span, whatever the producer calls them."""
    frame = pl.from_arrow(batch)
    span, parent, trace = (_first(frame.columns, names) for names in (SPAN_FIELDS, PARENT_FIELDS, TRACE_FIELDS))
    if span is None or parent is None:
        return pa.table({"trace": pa.array([], pa.large_string()), "span": pa.array([], pa.large_string()),
                         "parent": pa.array([], pa.large_string()), "service": pa.array([], pa.large_string())})
    return frame.select(
        (pl.col(trace).cast(pl.String) if trace else pl.lit("")).fill_null("").alias("trace"),
        pl.col(span).cast(pl.String).alias("span"), pl.col(parent).cast(pl.String).alias("parent"),
        pl.col("service").cast(pl.String),
    ).drop_nulls("span").to_arrow()


def trace_dependencies(archive: CanonicalArchive, families: list[str]) -> nx.DiGraph:
    """Caller → callee edges with call counts; calls inside one service are not edges."""
    from ray.data.aggregate import Count

    graph = nx.DiGraph()
    if not families:
        return graph
    datasets = [archive.dataset(f).map_batches(_span_links, batch_format="pyarrow") for f in families]
    spans = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    parents = spans.select_columns(["trace", "span", "service"]).rename_columns({"service": "caller"})
    children = spans.filter(lambda row: row["parent"] is not None).select_columns(
        ["trace", "parent", "service"]).rename_columns({"service": "callee"})
    partitions = max(1, min(16, sum(archive.families[f].rows for f in families) // 500_000))
    calls = children.join(parents, "inner", partitions, on=("trace", "parent"), right_on=("trace", "span"))
    counts = collect(calls.filter(lambda row: row["caller"] != row["callee"])
                     .groupby(["caller", "callee"]).aggregate(Count(alias_name="calls")))
    for row in counts.iter_rows(named=True):
        graph.add_edge(row["caller"], row["callee"], calls=int(row["calls"]))
    return graph


def declared_dependencies(path: str) -> nx.DiGraph:
    """A YAML mapping `caller: [callee, ...]` as a dependency graph."""
    with open(path) as handle:
        declared = yaml.safe_load(handle) or {}
    if not isinstance(declared, dict) or not all(isinstance(v, list) for v in declared.values()):
        raise ValueError(f"{path}: expected a mapping of caller to a list of callees")
    graph = nx.DiGraph()
    for caller, callees in declared.items():
        graph.add_node(str(caller))
        graph.add_edges_from((str(caller), str(callee), {"calls": 0}) for callee in callees)
    return graph
